import ComfyCore
import Foundation
import HTTPServer
import InputFiles

extension Simulator {
    /// Runs queued prompts one at a time, in queue order, until the simulator stops.
    func workerLoop() {
        while true {
            work.wait()
            while let (item, generation) = takeNext() { run(item, generation: generation) }
            if state.withLock({ $0.stopped }) { return }
        }
    }

    private func takeNext() -> (SimulatorState.Queued, Int)? {
        state.withLock { state in
            guard !state.stopped, state.running == nil, !state.queue.isEmpty else { return nil }
            var item = state.queue.removeFirst()
            if state.mutedPrompts > 0 {
                // `/sim/mute`: it runs, but nothing of it reaches a socket.
                state.mutedPrompts -= 1
                item.muted = true
            }
            state.running = (item.promptID, item.clientID, nil)
            state.runningEntry = item
            state.interruptRequested = false  // an interrupt never carries over to the next prompt
            return (item, state.generation)
        }
    }

    /// What ended a prompt early.
    private enum Stop: Error {
        case interrupted(node: String, classType: String)
        case failed(node: String, classType: String, type: String, message: String)
        case abandoned  // a restart or shutdown: nothing more is sent
    }

    private func run(_ item: SimulatorState.Queued, generation: Int) {
        let id = item.promptID
        let prompt = item.prompt
        let start = now
        func send(_ type: String, _ data: JSONValue) throws(Stop) {
            try waitWhileStalled(generation)
            let target = state.withLock { state in item.target(in: state) }
            target?.sendText(message(type, data))
        }
        func timestamp() -> JSONValue { .int(Int(Date().timeIntervalSince1970 * 1000)) }

        let signatures = PromptValidator.signatures(prompt.workflow)
        let cachePolicy = options.effectiveCache
        let (cachedIDs, cachedUI) = state.withLock { state -> ([String], [String: JSONValue]) in
            let ids: [String]
            switch cachePolicy {
            case .classic, .ramPressure: ids = prompt.order.filter { state.cache[$0] != nil && state.cache[$0] == signatures[$0] }
            case .lru: ids = prompt.order.filter { signatures[$0].map { state.lru[$0] != nil } ?? false }
            }
            return (ids, state.cachedUI)
        }
        let cached = Set(cachedIDs)
        // The growing progress_state map, kept serialized entry by entry (it is resent whole on
        // every change, as ComfyUI does).
        var touched: [(id: String, json: String)] = []
        func touch(_ node: String, _ value: JSONValue) {
            let text = value.serialized()
            if let index = touched.firstIndex(where: { $0.id == node }) { touched[index].json = text } else { touched.append((node, text)) }
        }
        var executed: [String] = []
        var outputs = JSONObject()
        var messages: [JSONValue] = []

        func entry(_ node: String, _ value: Double, _ max: Double, _ running: Bool) -> JSONValue {
            [
                "value": .double(value), "max": .double(max), "state": .string(running ? "running" : "finished"),
                "node_id": .string(node), "prompt_id": .string(id), "display_node_id": .string(node),
                "parent_node_id": nil, "real_node_id": .string(node),
            ]
        }
        let promptIDJSON = JSONValue.string(id).serialized()
        func progressState() throws(Stop) {
            var text = "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":" + promptIDJSON + ",\"nodes\":{"
            for (offset, entry) in touched.enumerated() {
                if offset > 0 { text += "," }
                text += JSONValue.string(entry.id).serialized() + ":" + entry.json
            }
            text += "}}}"
            try sendRaw(text)
        }
        func sendRaw(_ text: String) throws(Stop) {
            try waitWhileStalled(generation)
            let target = state.withLock { state in item.target(in: state) }
            target?.sendText(text)
        }

        do throws(Stop) {
            if !item.muted { broadcastStatus(state.withLock { $0.queueRemaining }) }
            let started: JSONValue = ["prompt_id": .string(id), "timestamp": timestamp()]
            try send("execution_start", started)
            let cachedMessage: JSONValue = ["nodes": .array(cachedIDs.map { .string($0) }), "prompt_id": .string(id), "timestamp": timestamp()]
            try send("execution_cached", cachedMessage)
            messages += [["execution_start", started], ["execution_cached", cachedMessage]]

            for nodeID in prompt.order {
                guard let node = prompt.workflow[nodeID], let nodeClass = NodeCatalog.classes[node.classType] else { continue }
                if cached.contains(nodeID) {
                    if nodeClass.isOutput {
                        let ui = cachedUI[nodeID] ?? .null
                        try send("executed", ["node": .string(nodeID), "display_node": .string(nodeID), "output": ui, "prompt_id": .string(id)])
                        touch(nodeID, entry(nodeID, 1, 1, false))
                        try progressState()
                        outputs[nodeID] = ui
                    }
                    continue
                }
                try checkInterrupt(nodeID, node.classType, generation)
                touch(nodeID, entry(nodeID, 0, 1, true))
                try progressState()
                state.withLock { state in state.running?.node = nodeID }
                try send("executing", ["node": .string(nodeID), "display_node": .string(nodeID), "prompt_id": .string(id)])
                var finalMax = 1.0
                switch nodeClass.behaviour {
                case .loader:
                    // A loader that runs loads (ComfyUI reads the file again): not cached, not free.
                    state.withLock { state in
                        if state.lastLoadingPrompt != id {
                            state.loads += 1
                            state.lastLoadingPrompt = id
                        }
                    }
                    try pause(options.classTimes[node.classType] ?? options.loadTime, generation)
                    try checkFailure(nodeID, node.classType, step: 0)
                case .sampler, .fakeSampler:
                    let steps = Self.steps(of: node)
                    finalMax = Double(steps)
                    try pause(options.warmUpTime, generation)
                    let isFake = nodeClass.behaviour == .fakeSampler
                    for step in 1...steps {
                        try checkInterrupt(nodeID, node.classType, generation)
                        if isFake, let failAt = node.inputs["fail_at_step"]?.numberValue?.int, failAt == step {
                            throw Stop.failed(
                                node: nodeID, classType: node.classType, type: "RuntimeError",
                                message: "FakeSampler failed on purpose at step \(step)\n")
                        }
                        if isFake, node.inputs["send_text"]?.boolValue == true {
                            let text = Array("fake step \(step)/\(steps)".utf8)
                            let idBytes = Array(nodeID.utf8)
                            let frame = Self.be32(3) + Self.be32(UInt32(idBytes.count)) + idBytes + text
                            try waitWhileStalled(generation)
                            // TEXT frames are broadcast, as ComfyUI's send_progress_text does.
                            for client in state.withLock({ Array($0.clients.values) }) { client.sendBinary(frame) }
                        }
                        try checkFailure(nodeID, node.classType, step: step)
                        if step == 1, let seed = node.inputs["seed"]?.numberValue.flatMap({ UInt64($0.literal) }), options.crashOnSeeds.contains(seed),
                            let crash = options.crash
                        {
                            crash("simulated crash: seed \(seed) (--crash-on-seed) in node \(nodeID) (\(node.classType))")
                        }
                        touch(nodeID, entry(nodeID, Double(step), Double(steps), true))
                        try progressState()
                        try send("progress", ["value": .int(step), "max": .int(steps), "prompt_id": .string(id), "node": .string(nodeID)])
                        if options.previews && !isFake {
                            // A latent preview after each step, as with --preview-method: event 4 with
                            // its node and prompt for a client that asked (feature_flags), else event 1.
                            let (target, metadata) = state.withLock { state in
                                (item.target(in: state), item.clientID.map { state.previewMetadata.contains($0) } ?? false)
                            }
                            if metadata {
                                let json: JSONValue = [
                                    "node_id": .string(nodeID), "prompt_id": .string(id), "display_node_id": .string(nodeID),
                                    "parent_node_id": .null, "real_node_id": .string(nodeID), "image_type": "image/jpeg",
                                ]
                                let head = Array(json.serialized().utf8)
                                target?.sendBinary(Self.be32(4) + Self.be32(UInt32(head.count)) + head + Self.previewJPEG)
                            } else {
                                target?.sendBinary(Self.be32(1) + Self.be32(1) + Self.previewJPEG)
                            }
                        }
                        try holdIfAsked(after: step, generation)
                        try pause(options.classTimes[node.classType] ?? options.stepTime, generation)
                    }
                case .output(let save):
                    try pause(options.classTimes[node.classType] ?? options.nodeTime, generation)
                    try checkFailure(nodeID, node.classType, step: 0)
                    let images = try writeImages(nodeID, for: node, in: prompt.workflow, save: save)
                    let ui: JSONValue = ["images": .array(images)]
                    try send("executed", ["node": .string(nodeID), "display_node": .string(nodeID), "output": ui, "prompt_id": .string(id)])
                    outputs[nodeID] = ui
                case .decoder, .plain:
                    try pause(options.classTimes[node.classType] ?? options.nodeTime, generation)
                    try checkFailure(nodeID, node.classType, step: 0)
                }
                touch(nodeID, entry(nodeID, finalMax, finalMax, false))
                try progressState()
                executed.append(nodeID)
            }
            let success: JSONValue = ["prompt_id": .string(id), "timestamp": timestamp()]
            try send("execution_success", success)
            messages.append(["execution_success", success])
            finish(item, generation: generation, status: "success", completed: true, messages: messages, outputs: outputs,
                   keepCache: prompt.order, signatures: signatures, start: start)
        } catch {
            conclude(error)
        }

        func conclude(_ stop: Stop) {
            switch stop {
            case .abandoned: return
            case .interrupted(let node, let classType): interrupted(node, classType)
            case .failed(let node, let classType, let type, let text): failed(node, classType, type, text)
            }
        }

        func interrupted(_ node: String, _ classType: String) {
            let data: JSONValue = [
                "prompt_id": .string(id), "node_id": .string(node), "node_type": .string(classType),
                "executed": .array(executed.map { .string($0) }), "timestamp": timestamp(),
            ]
            guard (try? send("execution_interrupted", data)) != nil else { return }
            messages.append(["execution_interrupted", data])
            finish(item, generation: generation, status: "error", completed: false, messages: messages, outputs: outputs,
                   keepCache: executed + cachedIDs, signatures: signatures, start: start)
        }

        func failed(_ node: String, _ classType: String, _ type: String, _ text: String) {
            let data: JSONValue = [
                "prompt_id": .string(id), "node_id": .string(node), "node_type": .string(classType),
                "executed": .array(executed.map { .string($0) }), "exception_message": .string(text), "exception_type": .string(type),
                "traceback": ["  File \"comfyq simulator\", in execute\n"], "current_inputs": [:],
                "current_outputs": .array((executed + cachedIDs).map { .string($0) }), "timestamp": timestamp(),
            ]
            guard (try? send("execution_error", data)) != nil else { return }
            messages.append(["execution_error", data])
            finish(item, generation: generation, status: "error", completed: false, messages: messages, outputs: outputs,
                   keepCache: executed + cachedIDs, signatures: signatures, start: start)
        }
    }

    /// Writes history, updates the cache, then `status` and `executing` with node null, in
    /// ComfyUI's order (history exists before the client hears the end).
    private func finish(
        _ item: SimulatorState.Queued, generation: Int, status: String, completed: Bool, messages: [JSONValue], outputs: JSONObject,
        keepCache: [String], signatures: [String: String], start: Double
    ) {
        let id = item.promptID
        var meta = JSONObject()
        for node in outputs.keys {
            meta[node] = ["node_id": .string(node), "display_node": .string(node), "parent_node": nil, "real_node_id": .string(node)]
        }
        let entry: JSONValue = [
            "prompt": [.number(JSONNumber(item.number)), .string(id), item.promptJSON, item.extraData, .array(item.prompt.outputs.map { .string($0) })],
            "outputs": .object(outputs),
            "status": ["status_str": .string(status), "completed": .bool(completed), "messages": .array(messages)],
            "meta": .object(meta),
        ]
        let elapsed = now - start
        let (remaining, current) = state.withLock { state -> (Int, Bool) in
            guard state.generation == generation else { return (0, false) }
            state.history[id] = entry
            state.historyOrder.append(id)
            if state.historyOrder.count > 10_000 { state.history[state.historyOrder.removeFirst()] = nil }
            switch options.effectiveCache {
            case .classic, .ramPressure:
                var cache: [String: String] = [:]
                for node in keepCache { cache[node] = signatures[node] }
                state.cache = cache
            case .lru(let size):
                state.lruClock += 1
                for node in keepCache { if let signature = signatures[node] { state.lru[signature] = state.lruClock } }
                if state.lru.count > size {
                    let oldest = state.lru.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(state.lru.count - size)
                    for (signature, _) in oldest { state.lru[signature] = nil }
                }
            }
            for (node, ui) in outputs { state.cachedUI[node] = ui }
            state.busySeconds += elapsed
            if state.firstStartedAt == nil { state.firstStartedAt = start }
            state.lastFinishedAt = now
            if completed { state.completed += 1 } else { state.failed += 1 }
            state.running = nil
            state.runningEntry = nil
            return (state.queueRemaining, true)
        }
        guard current, !item.muted else { return }
        broadcastStatus(remaining)
        let target = state.withLock { state in item.target(in: state) }
        target?.sendText(message("executing", ["node": nil, "prompt_id": .string(id)]))
    }

    // MARK: Helpers

    private func checkInterrupt(_ node: String, _ classType: String, _ generation: Int) throws(Stop) {
        let (interrupt, gone) = state.withLock { ($0.interruptRequested, $0.generation != generation || $0.stopped) }
        if gone { throw .abandoned }
        if interrupt { throw .interrupted(node: node, classType: classType) }
    }

    private func checkFailure(_ node: String, _ classType: String, step: Int) throws(Stop) {
        let failure = state.withLock { state -> SimulatorState.NodeFailure? in
            guard var armed = state.nodeFailure, armed.remaining > 0,
                armed.nodeID == node || armed.classType == classType || (armed.nodeID == nil && armed.classType == nil),
                step == 0 || armed.atStep == step
            else { return nil }
            armed.remaining -= 1
            state.nodeFailure = armed.remaining > 0 ? armed : nil
            return armed
        }
        if let failure { throw .failed(node: node, classType: classType, type: failure.exceptionType, message: failure.message) }
    }

    /// Sleeps, as a node's work would take.
    private func pause(_ seconds: Double, _ generation: Int) throws(Stop) {
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
        if state.withLock({ $0.generation != generation || $0.stopped }) { throw .abandoned }
    }

    /// After the step a `/sim/hold` names, waits (once) for an interrupt, a restart or the hold's
    /// time limit, so a test can interrupt at an exact step however slowly its request arrives.
    private func holdIfAsked(after step: Int, _ generation: Int) throws(Stop) {
        let seconds = state.withLock { state -> Double? in
            guard let hold = state.hold, hold.atStep == step else { return nil }
            state.hold = nil
            return hold.seconds
        }
        guard let seconds else { return }
        let until = now + seconds
        while now < until {
            let (interrupt, gone, released) = state.withLock { state in
                defer { state.releaseHold = false }
                return (state.interruptRequested, state.generation != generation || state.stopped, state.releaseHold)
            }
            if gone { throw .abandoned }
            if interrupt || released { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Holds everything back while a `/sim/stall` lasts.
    private func waitWhileStalled(_ generation: Int) throws(Stop) {
        while true {
            let (until, gone) = state.withLock { ($0.hung ? .infinity : $0.stallUntil, $0.generation != generation || $0.stopped) }
            if gone { throw .abandoned }
            let remaining = until - now
            if remaining <= 0 { return }
            Thread.sleep(forTimeInterval: min(remaining, 0.05))
        }
    }

    static func steps(of node: WorkflowNode) -> Int {
        let steps = node.inputs["steps"]?.numberValue?.int ?? 20
        if node.classType == "KSamplerAdvanced" {
            let start = node.inputs["start_at_step"]?.numberValue?.int ?? 0
            let end = min(steps, node.inputs["end_at_step"]?.numberValue?.int ?? steps)
            return max(1, end - start)
        }
        return max(1, steps)
    }

    /// A small stand-in preview: JPEG start/end markers around a JFIF header.
    static let previewJPEG: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9]

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// Writes the images an output node saves: `SimulatedImage`s of the latent's size, labelled
    /// with what made them. A file that cannot be written fails the node, as ComfyUI's save does
    /// (never a history entry naming a file that is not there).
    private func writeImages(_ nodeID: String, for node: WorkflowNode, in workflow: Workflow, save: Bool) throws(Stop) -> [JSONValue] {
        let (width, height, batch, seed) = Self.imageShape(from: node, in: workflow, inputDirectory: options.inputDirectory)
        var prefix = save ? (node.inputs["filename_prefix"]?.stringValue ?? "ComfyUI") : "ComfyUI_temp"
        prefix = prefix.replacingOccurrences(of: "..", with: "_")
        var subfolder = ""
        if let slash = prefix.lastIndex(of: "/") {
            subfolder = String(prefix[..<slash]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            prefix = String(prefix[prefix.index(after: slash)...])
        }
        let type = save ? "output" : "temp"
        let labels = SimulatedImage.lines(for: node, in: workflow, width: width, height: height)
        var directory = URL(fileURLWithPath: options.outputDirectory)
        if !save { directory.appendPathComponent("temp") }
        if !subfolder.isEmpty { directory.appendPathComponent(subfolder) }
        func failed(_ error: any Error, _ path: String) -> Stop {
            .failed(node: nodeID, classType: node.classType, type: "OSError", message: "cannot write \(path): \(error.localizedDescription)\n")
        }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw failed(error, directory.path)
        }
        var images: [JSONValue] = []
        for index in 0..<batch {
            let counter = state.withLock { state -> Int in
                let key = "\(type)/\(subfolder)/\(prefix)"
                // As ComfyUI's get_save_image_path: after the highest counter already in the
                // folder, so a restarted server does not write over earlier images.
                let start = state.fileCounters[key] ?? Self.highestCounter(in: directory, prefix: prefix)
                state.fileCounters[key] = start + 1
                return start + 1
            }
            let name = "\(prefix)_\(String(repeating: "0", count: max(0, 5 - String(counter).count)))\(counter)_.png"
            // As ComfyUI's SaveImage: the prompt in a tEXt chunk, so an output names its inputs.
            let image = SimulatedImage.render(width: width, height: height, seed: seed &+ UInt64(index), lines: labels)
            let png = image.encoded(level: 1, text: ["prompt": workflow.json.serialized()])
            // A plain write, as PIL's: no temporary file, no fsync.
            let file = directory.appendingPathComponent(name)
            do { try LocalFiles.write(png, to: file.path, atomically: false) } catch { throw failed(error, file.path) }
            var entry: JSONObject = ["filename": .string(name), "subfolder": .string(subfolder), "type": .string(type)]
            // 0.38's enrich_output_with_media_metadata.
            if options.profile == .v0_38 { entry["metadata"] = ["kind": "image", "width": .int(width), "height": .int(height)] }
            images.append(.object(entry))
        }
        return images
    }

    /// The highest `NNNNN` among `PREFIX_NNNNN_.png` files in `directory` (0 when none).
    static func highestCounter(in directory: URL, prefix: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var highest = 0
        for name in names where name.hasPrefix(prefix + "_") && name.hasSuffix("_.png") {
            let digits = name.dropFirst(prefix.count + 1).dropLast(5)
            if let number = Int(digits) { highest = max(highest, number) }
        }
        return highest
    }

    /// Walks up from an output node to the latent that sized it, and the sampler seed behind it.
    /// An image loaded from the input folder (img2img, upscaling) sizes it when no latent did,
    /// and its content goes into the noise, so different inputs make different outputs.
    static func imageShape(from node: WorkflowNode, in workflow: Workflow, inputDirectory: String? = nil) -> (Int, Int, Int, UInt64) {
        var width = 64
        var height = 64
        var batch = 1
        var seed: UInt64?
        var sized = false
        var inputMix: UInt64 = 0
        var scaleBy = 1.0
        var current: WorkflowNode? = node
        var visited = 0
        while let this = current, visited < 100 {
            visited += 1
            if seed == nil, let value = this.inputs["seed"] ?? this.inputs["noise_seed"], let literal = value.numberValue {
                seed = UInt64(literal.literal) ?? UInt64(max(0, literal.double))
            }
            if (this.classType == "EmptyLatentImage" || this.classType == "LatentUpscale") && !sized {
                // The latent nearest the output sizes the image (a hires fix upscales it).
                width = this.inputs["width"]?.numberValue?.int ?? width
                height = this.inputs["height"]?.numberValue?.int ?? height
                sized = true
            }
            if this.classType == "EmptyLatentImage" {
                batch = this.inputs["batch_size"]?.numberValue?.int ?? batch
                break
            }
            if this.classType == "LoadImage", let inputDirectory, let name = this.inputs["image"]?.stringValue,
                !name.hasPrefix("/"), !name.split(separator: "/").contains(".."),
                let data = FileManager.default.contents(atPath: inputDirectory + "/" + name)
            {
                let bytes = [UInt8](data)
                if !sized, let size = PNGImage.size(of: bytes) {
                    width = size.width
                    height = size.height
                    sized = true
                }
                inputMix = inputMix &* 0x100_0000_01B3 ^ UInt64(PNG.crc32(bytes))
                break
            }
            if this.classType == "ImageScaleBy", !sized, let scale = this.inputs["scale_by"]?.numberValue?.double {
                scaleBy *= scale
            }
            current = upstream(of: this, in: workflow)
        }
        width = Int((Double(width) * scaleBy).rounded())
        height = Int((Double(height) * scaleBy).rounded())
        return (min(max(width, 8), 4096), min(max(height, 8), 4096), min(max(batch, 1), 16), (seed ?? 0) ^ inputMix)
    }

    /// The node an output's image or latent comes from (its `images`, `samples`, `latent_image`,
    /// `pixels` or `image` input), walking up from an output node.
    static func upstream(of node: WorkflowNode, in workflow: Workflow) -> WorkflowNode? {
        ["images", "samples", "latent_image", "pixels", "image"].lazy.compactMap { node.inputs[$0].flatMap(Workflow.link(in:)) }.first.flatMap { workflow[$0.node] }
    }
}
