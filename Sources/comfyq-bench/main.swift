// comfyq-bench: the figures quoted in README.md. Build and run in release:
//
//     swift run -c release comfyq-bench [engine|decode|graph300|memory|codec|loopback|http|simulator|queue|runner|hooks|all]
//
// Each benchmark runs several rounds and reports the median, so one noisy round on a shared
// 2-core machine does not decide the figure.

import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Median of `rounds` timings of `body`, in seconds.
func measure(rounds: Int = 7, _ body: () -> Void) -> Double {
    var samples: [Double] = []
    body()  // warm-up
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        samples.append(elapsed.seconds)
    }
    return samples.sorted()[samples.count / 2]
}

func format(_ value: Double, _ decimals: Int = 2) -> String { String(format: "%.\(decimals)f", value) }

// MARK: Workloads

/// txt2img's graph (the traces'), with `steps` sampler steps.
func txt2img(steps: Int) -> Workflow {
    Workflow([
        WorkflowNode(id: "4", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "m.safetensors"]),
        WorkflowNode(id: "5", classType: "EmptyLatentImage", inputs: ["width": 64, "height": 64, "batch_size": 1]),
        WorkflowNode(id: "6", classType: "CLIPTextEncode", inputs: ["text": "a", "clip": ["4", 1]]),
        WorkflowNode(id: "7", classType: "CLIPTextEncode", inputs: ["text": "b", "clip": ["4", 1]]),
        WorkflowNode(
            id: "3", classType: "KSampler",
            inputs: [
                "seed": 1, "steps": .int(steps), "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
            ]),
        WorkflowNode(id: "8", classType: "VAEDecode", inputs: ["samples": ["3", 0], "vae": ["4", 2]]),
        WorkflowNode(id: "9", classType: "SaveImage", inputs: ["filename_prefix": "bench", "images": ["8", 0]]),
    ])
}

/// A graph of `count` nodes: a loader, a chain of setup nodes, one sampler, a decode, a save.
func chainGraph(count: Int, steps: Int) -> Workflow {
    var nodes = [WorkflowNode(id: "1", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "m"])]
    for index in 2...(count - 3) {
        nodes.append(
            WorkflowNode(id: "\(index)", classType: "CLIPTextEncode", inputs: ["text": "t", "clip": [.string("\(index - 1)"), 0]]))
    }
    let sampler = count - 2
    nodes.append(
        WorkflowNode(
            id: "\(sampler)", classType: "KSampler",
            inputs: ["steps": .int(steps), "positive": [.string("\(sampler - 1)"), 0], "latent_image": ["1", 0]]))
    nodes.append(WorkflowNode(id: "\(count - 1)", classType: "VAEDecode", inputs: ["samples": [.string("\(sampler)"), 0]]))
    nodes.append(WorkflowNode(id: "\(count)", classType: "SaveImage", inputs: ["images": [.string("\(count - 1)"), 0]]))
    return Workflow(nodes)
}

/// The WebSocket text messages ComfyUI sends for one run of `workflow` (nodes in document order),
/// with the whole growing `progress_state` map on every node change, exactly as the server does.
func messages(for workflow: Workflow, promptID id: String) -> [String] {
    func entry(_ node: String, _ value: Double, _ max: Double, _ state: String) -> String {
        #""\#(node)":{"value":\#(value),"max":\#(max),"state":"\#(state)","node_id":"\#(node)","prompt_id":"\#(id)","display_node_id":"\#(node)","parent_node_id":null,"real_node_id":"\#(node)"}"#
    }
    func progressState(_ entries: [String]) -> String {
        #"{"type":"progress_state","data":{"prompt_id":"\#(id)","nodes":{"# + entries.joined(separator: ",") + "}}}"
    }
    var out = [
        #"{"type":"execution_start","data":{"prompt_id":"\#(id)","timestamp":1}}"#,
        #"{"type":"execution_cached","data":{"nodes":[],"prompt_id":"\#(id)","timestamp":1}}"#,
    ]
    var finished: [String] = []
    for node in workflow.orderedNodes {
        out.append(progressState(finished + [entry(node.id, 0, 1, "running")]))
        out.append(#"{"type":"executing","data":{"node":"\#(node.id)","display_node":"\#(node.id)","prompt_id":"\#(id)"}}"#)
        var maximum = 1.0
        if node.classType == "KSampler", let steps = node.inputs["steps"]?.numberValue?.int {
            maximum = Double(steps)
            for step in 1...steps {
                out.append(progressState(finished + [entry(node.id, Double(step), maximum, "running")]))
                out.append(
                    #"{"type":"progress","data":{"value":\#(step),"max":\#(steps),"prompt_id":"\#(id)","node":"\#(node.id)"}}"#)
            }
        }
        finished.append(entry(node.id, maximum, maximum, "finished"))
        out.append(progressState(finished))
    }
    out.append(#"{"type":"execution_success","data":{"prompt_id":"\#(id)","timestamp":2}}"#)
    out.append(#"{"type":"executing","data":{"node":null,"prompt_id":"\#(id)"}}"#)
    return out
}

// MARK: Benchmarks

func benchmarkEngine() {
    let prompts = 2_000
    let plan = PromptPlan(txt2img(steps: 20))
    // Typed events for every prompt, decoded up front by a stream decoder as the runner does
    // (so progress_state events carry the entries that changed): this measures the engine alone.
    var events: [[ServerEvent]] = []
    var decoder = EventStreamDecoder()
    for index in 0..<prompts {
        let id = "9348a74d-67da-4ac1-ba44-\(String(index).leftPad(12, "0"))"
        events.append(messages(for: txt2img(steps: 20), promptID: id).map { try! decoder.decode($0) })
    }
    let count = events.reduce(0) { $0 + $1.count }
    let ids = events.map { $0.first?.promptID ?? "" }
    var sink = 0
    let seconds = measure {
        var engine = ProgressEngine()
        var time = 0.0
        for (index, stream) in events.enumerated() {
            engine.track(ids[index], plan: plan, at: time)
            for event in stream {
                time += 0.001
                if engine.receive(event, at: time) != nil { sink &+= 1 }
            }
        }
        precondition(engine.trackedCount == 0)
    }
    let perEvent = seconds / Double(count) * 1e9
    print("engine: \(count) events (\(prompts) prompts of txt2img, 20 steps, UUID prompt ids): \(format(perEvent, 0)) ns/event, \(format(Double(count) / seconds / 1e6, 2)) M events/s  [target ≤ 500 ns]")
    _ = sink
}

func tracesMessages() -> [(name: String, graph: Workflow?, messages: [String])] {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/traces")
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
        $0.hasSuffix(".jsonl")
    }.sorted()
    return names.map { name in
        let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
        var graph: Workflow?
        var list: [String] = []
        for line in text.split(separator: "\n") {
            guard let value = try? JSONValue(parsing: String(line)) else { continue }
            if let message = value["ws"] { list.append(message.serialized()) }
            if graph == nil, let prompt = value["http"]?["request"]?["prompt"] { graph = try? Workflow(json: prompt) }
        }
        return (name, graph, list)
    }
}

/// Decode + engine over every message of a run, against Foundation's JSONSerialization doing
/// only the decoding of the same bytes.
func decodeAndTrack(_ messages: [String], plan: PromptPlan, promptID: String) -> Double {
    let bytes = messages.map { Array($0.utf8) }
    return measure(rounds: 9) {
        var engine = ProgressEngine()
        var decoder = EventStreamDecoder()
        engine.track(promptID, plan: plan, at: 0)
        for message in bytes {
            if let event = try? decoder.decode(message) { _ = engine.receive(event, at: 1) }
        }
    }
}

func foundationDecode(_ messages: [String]) -> Double {
    if ProcessInfo.processInfo.environment["COMFYQ_BENCH_OURS_ONLY"] != nil { return .nan }
    let data = messages.map { Data($0.utf8) }
    return measure(rounds: 5) {
        for message in data { _ = try? JSONSerialization.jsonObject(with: message) }
    }
}

func benchmarkDecode() {
    print("decode + engine on the recorded traces (CPU per prompt; Foundation JSONSerialization decoding the same messages for comparison):")
    for trace in tracesMessages() {
        guard let graph = trace.graph, !trace.messages.isEmpty else { continue }
        let ids = Set(trace.messages.compactMap { try? ServerEventDecoder.decode($0).promptID })
        let ours = decodeAndTrack(trace.messages, plan: PromptPlan(graph), promptID: ids.first ?? "")
        let foundation = foundationDecode(trace.messages)
        let bytes = trace.messages.reduce(0) { $0 + $1.utf8.count }
        print("  \(trace.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(trace.messages.count).leftPad(4)) msgs \(String(bytes / 1024).leftPad(4)) KB: \(format(ours * 1e6, 1).leftPad(7)) µs  (Foundation decode alone \(format(foundation * 1e6, 1)) µs, \(format(foundation / ours, 1))× ours)")
    }
}

func benchmarkGraph300() {
    let workflow = chainGraph(count: 300, steps: 20)
    let stream = messages(for: workflow, promptID: "9348a74d-67da-4ac1-ba44-41a92de8f6ed")
    let bytes = stream.reduce(0) { $0 + $1.utf8.count }
    let ours = decodeAndTrack(stream, plan: PromptPlan(workflow), promptID: "9348a74d-67da-4ac1-ba44-41a92de8f6ed")
    let foundation = foundationDecode(stream)
    let data = stream.map { Array($0.utf8) }
    let stateless = measure(rounds: 5) { for message in data { _ = try? ServerEventDecoder.decode(message) } }
    print("graph300: stateless decoding of every entry (no engine): \(format(stateless * 1e3, 1)) ms per prompt")
    print("graph300: \(stream.count) messages, \(format(Double(bytes) / 1e6, 1)) MB of JSON per prompt: decode + engine \(format(ours * 1e3, 1)) ms per prompt (\(format(Double(bytes) / ours / 1e6, 0)) MB/s)  [target ≤ 50 ms]; Foundation's JSONSerialization alone: \(format(foundation * 1e3, 1)) ms (\(format(foundation / ours, 1))× ours)")
}

func benchmarkMemory() {
    let count = 100_000
    let plan = PromptPlan(chainGraph(count: 300, steps: 20))
    let ids = (0..<count).map { "9348a74d-67da-4ac1-ba44-\(String($0).leftPad(12, "0"))" }
    var engine = ProgressEngine()
    let before = residentBytes()
    for (index, id) in ids.enumerated() {
        engine.track(id, plan: plan, at: Double(index))
        _ = engine.receive(.executionStart(promptID: id), at: Double(index))
        _ = engine.receive(.progress(promptID: id, node: "298", value: 3, max: 20), at: Double(index))
    }
    let after = residentBytes()
    let perPrompt = Double(after - before) / Double(count)
    print("memory: \(count) prompts in sampling on a shared 300-node plan: \(format(perPrompt, 0)) bytes of resident memory per tracked prompt (state, bitset, dictionary slot; ids allocated beforehand)  [target ≤ 1 KB]")
    precondition(engine.trackedCount == count)
}

/// Resident set size from /proc/self/statm (Linux).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

// MARK: WebSocket and HTTP

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Starts one of the tests' Python peers and returns it with its port.
nonisolated(unsafe) var pythonLifelines: [Pipe] = []

func startPython(_ script: String, _ arguments: [String] = []) -> (Process, Int)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [repositoryRoot.appendingPathComponent(script).path] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    // The helper exits at EOF on its stdin: the pipe lives (unclosed) as long as this process.
    let lifeline = Pipe()
    pythonLifelines.append(lifeline)
    process.standardInput = lifeline
    guard (try? process.run()) != nil else { return nil }
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = pipe.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line.append(chunk)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else { return nil }
    return (process, port)
}

func stopPython(_ process: Process) {
    kill(process.processIdentifier, SIGKILL)
    var status: Int32 = 0
    waitpid(process.processIdentifier, &status, 0)
}

/// Frames through our parser and message layer, from our own encoder (no network).
func benchmarkCodec() {
    let small = FrameEncoder.encode(
        Frame(opcode: .text, payload: Array(#"{"type":"progress","data":{"value":3,"max":20,"prompt_id":"9348a74d-67da-4ac1-ba44-41a92de8f6ed","node":"3"}}"#.utf8)),
        maskKey: nil)
    let smallCount = 200_000
    let stream = Array([[UInt8]](repeating: small, count: smallCount).joined())
    let smallSeconds = measure(rounds: 5) {
        var parser = FrameParser(role: .client)
        var machine = WebSocketStateMachine()
        var offset = 0
        var delivered = 0
        while offset < stream.count {
            let end = min(stream.count, offset + 64 * 1024)
            parser.append(stream[offset..<end])
            offset = end
            while let frame = try? parser.nextFrame() { delivered += machine.received(frame).count }
        }
        precondition(delivered == smallCount)
    }
    let big = FrameEncoder.encode(Frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 1 << 20)), maskKey: nil)
    let bigCount = 200
    let bigSeconds = measure(rounds: 5) {
        var parser = FrameParser(role: .client)
        var machine = WebSocketStateMachine()
        for _ in 0..<bigCount {
            var offset = 0
            while offset < big.count {
                let end = min(big.count, offset + 64 * 1024)
                parser.append(big[offset..<end])
                offset = end
                while let frame = try? parser.nextFrame() { _ = machine.received(frame) }
            }
        }
    }
    print("websocket codec (our encoder → our parser + message layer, 64 KiB reads): \(format(Double(smallCount) / smallSeconds / 1e6, 2)) M small text frames/s (\(small.count) B each); 1 MiB binary frames: \(format(Double(bigCount) / bigSeconds, 0)) MiB/s")
}

/// Our client receiving from Python's `websockets` over loopback.
func benchmarkLoopback() async {
    guard let (process, port) = startPython("Tests/WebSocketTests/Support/ws_server.py") else {
        print("websocket loopback: skipped (needs /usr/bin/python3 with python3-websockets)")
        return
    }
    defer { stopPython(process) }
    func flood(_ command: String, count: Int) async -> Double? {
        guard let url = try? WebSocketURL("ws://127.0.0.1:\(port)/ws"),
            let client = try? await WebSocketClient.connect(to: url)
        else { return nil }
        defer { client.close() }
        let start = ContinuousClock.now
        try? client.send(.text(command))
        var received = 0
        var iterator = client.messages.makeAsyncIterator()
        while let message = try? await iterator.next(), message != .text("flood-done") { received += 1 }
        let elapsed = ContinuousClock.now - start
        guard received == count else { return nil }
        return elapsed.seconds
    }
    let smallCount = 50_000
    let bigCount = 200
    guard let small = await flood("flood:\(smallCount),120", count: smallCount),
        let big = await flood("floodbin:\(bigCount),1048576", count: bigCount)
    else {
        print("websocket loopback: failed")
        return
    }
    print("websocket loopback from Python websockets 10.4: \(format(Double(smallCount) / small / 1000, 1)) k small text frames/s, \(format(Double(bigCount) / big, 0)) MiB/s of 1 MiB binary frames (the Python sender is the limit; compare the codec line)")
}

/// Median and p99 of 1,000 small HTTP requests (GET /prompt) through URLSession.
func benchmarkHTTP() async {
    guard let (process, port) = startPython("Tests/ComfyClientTests/Support/fake_comfyui.py") else {
        print("http: skipped (needs /usr/bin/python3)")
        return
    }
    defer { stopPython(process) }
    let api = ComfyAPI(baseURL: URL(string: "http://127.0.0.1:\(port)")!)
    var samples: [Double] = []
    for index in 0..<1_050 {
        let start = ContinuousClock.now
        guard (try? await api.queueRemaining()) != nil else {
            print("http: request failed")
            return
        }
        let elapsed = ContinuousClock.now - start
        if index >= 50 { samples.append(Double(elapsed.components.attoseconds) * 1e-15 + Double(elapsed.components.seconds) * 1e3) }
    }
    samples.sort()
    print("http: GET /prompt through URLSession to a local server: median \(format(samples[samples.count / 2], 2)) ms, p99 \(format(samples[samples.count * 99 / 100], 2)) ms (1,000 requests, reused connection)")
}

/// Prompts per second through the simulator with zero simulated time: HTTP submits from one
/// client, every message over its WebSocket, until the last prompt's end.
func benchmarkSimulator() async {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-sim-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: output) }
    var options = SimulatorOptions(outputDirectory: output)
    options.port = 0
    options.instant()
    guard let simulator = try? Simulator(options: options) else {
        print("simulator: cannot start")
        return
    }
    defer { simulator.stop() }
    let api = ComfyAPI(baseURL: URL(string: simulator.url)!)
    let count = 2_000
    let workflow = txt2img(steps: 4)
    guard let socket = try? await WebSocketClient.connect(to: api.webSocketURL(clientID: "bench")) else {
        print("simulator: no WebSocket")
        return
    }
    let start = ContinuousClock.now
    let finished = Task {
        var ends = 0
        var messages = 0
        var iterator = socket.messages.makeAsyncIterator()
        while ends < count, let message = try? await iterator.next() {
            messages += 1
            if case .text(let text) = message, case .executing(_, nil, _)? = try? ServerEventDecoder.decode(text) { ends += 1 }
        }
        return messages
    }
    // Four submitters, as a runner keeps several prompts in flight.
    let failed = await withTaskGroup(of: Bool.self) { group in
        for lane in 0..<4 {
            group.addTask {
                var graph = workflow
                for index in stride(from: lane, to: count, by: 4) {
                    graph.set(node: "3", input: "seed", to: .int(index))  // a new seed: the sampler really runs
                    do {
                        _ = try await api.submit(graph, promptID: "bench-\(index)", clientID: "bench")
                    } catch {
                        print("simulator: submit failed: \(error)")
                        return true
                    }
                }
                return false
            }
        }
        return await group.contains(true)
    }
    guard !failed else { return }
    let messages = await finished.value
    let elapsed = ContinuousClock.now - start
    let seconds = elapsed.seconds
    socket.close()
    print("simulator: \(count) prompts (7 nodes, 4 steps, 64×64 PNG each) submitted by 4 concurrent clients over HTTP, every message over the WebSocket, zero simulated time: \(format(Double(count) / seconds, 0)) prompts/s, \(format(Double(messages) / seconds / 1000, 1)) k messages/s  [target ≥ 1,000 prompts/s]")
}

/// `add` of a 10,000-item job into an empty queue and into one holding 100,000 items, and
/// `status` (job summaries plus running and failed items) with 100,000 items.
func benchmarkQueue() {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-queue-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let workflowText = txt2img(steps: 20).json.serialized()
    let loader = JobLoader(readFile: { _ in workflowText }, fileExists: { _ in true })
    func spec(_ count: Int) -> JobSpec {
        try! loader.load(
            text: #"{workflow: "w.json", matrix: {"6.text": ["a", "b"]}, seeds: {start: 1, count: \#(count / 2)}}"#, path: "bench.json")
    }
    let job = spec(10_000)
    let items = job.expand(random: { 0 })
    func timeAdd(into queue: Queue) -> Double {
        let start = ContinuousClock.now
        try! queue.add(job, items: items, now: 0)
        let elapsed = ContinuousClock.now - start
        return elapsed.seconds
    }
    var empty: [Double] = []
    for round in 0..<3 {
        let queue = try! Queue(path: directory.appendingPathComponent("empty-\(round).db").path)
        empty.append(timeAdd(into: queue))
    }
    let full = try! Queue(path: directory.appendingPathComponent("full.db").path)
    let big = spec(100_000)
    try! full.add(big, items: big.expand(random: { 0 }), now: 0)
    // Some running and failed items, as a real night has.
    try! full.database.execute("UPDATE items SET state = 'running', phase = 'sampling', started_at = 1 WHERE id % 5000 = 1")
    try! full.database.execute("UPDATE items SET state = 'failed', error = 'node 3 (KSampler): RuntimeError' WHERE id % 7000 = 2")
    try! full.database.execute("UPDATE items SET state = 'done', started_at = 0, finished_at = 3 WHERE id < 30000")
    var loaded: [Double] = []
    for _ in 0..<3 { loaded.append(timeAdd(into: full)) }
    let status = measure(rounds: 7) {
        _ = try! full.jobs()
        _ = try! full.items(states: [.submitting, .running], limit: 200)
        _ = try! full.items(states: [.failed], limit: 20)
    }
    let total = try! full.jobs().reduce(0) { $0 + $1.total }
    let emptyMedian = empty.sorted()[1]
    let loadedMedian = loaded.sorted()[1]
    print("queue: add of a 10,000-item job: \(format(emptyMedian * 1000, 0)) ms into an empty queue, \(format(loadedMedian * 1000, 0)) ms into one with 100,000+ items (\(format(loadedMedian / emptyMedian, 2))×)  [target < 1 s, not growing]")
    print("queue: status (job summaries, running and failed items) with \(total) items: \(format(status * 1000, 1)) ms  [target < 200 ms]")
    // What the runner pays per prompt: claim an item, mark it running, finish it.
    let rounds = 1_000
    let start = ContinuousClock.now
    for index in 0..<rounds {
        let promptID = "bench-\(index)"
        guard let claimed = try! full.claimNext(server: "s", promptID: promptID, now: 1) else { break }
        try! full.markRunning(claimed.item.id, promptID: promptID, now: 2)
        try! full.finish(claimed.item.id, promptID: promptID, state: .done, now: 3)
    }
    let elapsed = ContinuousClock.now - start
    let perItem = (elapsed.seconds) / Double(rounds)
    print("queue: claim + running + finish with \(total) items queued: \(format(perItem * 1e6, 0)) µs per item (\(format(1 / perItem, 0)) items/s)")
}

// MARK: The runner

/// A simulator with ComfyUI-on-an-H100 timings: 35 ms per step, nothing else slow.
func gpuSimulator(latency: Double, output: String) -> Simulator {
    var options = SimulatorOptions(outputDirectory: output)
    options.port = 0
    options.instant()
    options.stepTime = 0.035
    options.latency = latency
    return try! Simulator(options: options)
}

/// A queue holding one job of `count` txt2img items (20 steps, 64×64).
func benchQueue(_ directory: URL, count: Int, name: String) -> String {
    let path = directory.appendingPathComponent("\(name).db").path
    let workflowText = txt2img(steps: 20).json.serialized()
    let loader = JobLoader(readFile: { _ in workflowText }, fileExists: { _ in true })
    let spec = try! loader.load(
        text: #"{workflow: "w.json", seeds: {start: 1, count: \#(count)}, output: {folder: "\#(directory.appendingPathComponent("out-\(name)").path)"}}"#,
        path: "bench.json")
    try! Queue(path: path).add(spec, items: spec.expand(random: { 0 }), now: 0)
    return path
}

func seconds(since start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }

/// The client of ComfyUI's own websockets_api_example.py: submit, wait for the end, read the
/// history, download the outputs, then the next prompt.
func naiveClient(_ simulator: Simulator, count: Int, output: URL) async -> Double {
    let api = ComfyAPI(baseURL: URL(string: simulator.url)!)
    let clientID = "naive"
    guard let socket = try? await WebSocketClient.connect(to: api.webSocketURL(clientID: clientID)) else { return 0 }
    var messages = socket.messages.makeAsyncIterator()
    var graph = txt2img(steps: 20)
    let start = ContinuousClock.now
    for index in 0..<count {
        graph.set(node: "3", input: "seed", to: .int(index))
        let id = "naive-\(index)"
        _ = try? await api.submit(graph, promptID: id, clientID: clientID)
        while let message = try? await messages.next() {
            if case .text(let text) = message, case .executing(id?, nil, _)? = try? ServerEventDecoder.decode(text) { break }
        }
        if let record = try? await api.history(id) {
            for file in record.outputs { _ = try? await api.download(file, to: output.appendingPathComponent("\(id).png")) }
        }
    }
    socket.close()
    return seconds(since: start)
}

func benchmarkRunner() async {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-run-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let count = 30
    print("runner: GPU busy fraction, \(count) prompts of 20 steps at 35 ms (an H100 on SD1.5 512²); busy = simulated execution / the span from the first prompt's start to the last one's end")
    for latency in [0.0, 0.05] {
        var line = "  latency \(Int(latency * 1000)) ms:"
        for concurrency in [1, 2] {
            let simulator = gpuSimulator(latency: latency, output: directory.appendingPathComponent("sim-\(latency)-\(concurrency)").path)
            var options = RunnerOptions(servers: [URL(string: simulator.url)!])
            options.concurrency = concurrency
            let runner = try! Runner(queuePath: benchQueue(directory, count: count, name: "gpu-\(latency)-\(concurrency)"), options: options)
            _ = await runner.run()
            line += "  comfyq c=\(concurrency) \(format(simulator.busySeconds / simulator.activeSeconds * 100, 2))%"
            simulator.stop()
        }
        let simulator = gpuSimulator(latency: latency, output: directory.appendingPathComponent("sim-naive-\(latency)").path)
        _ = await naiveClient(simulator, count: count, output: directory)
        line += "  naive client \(format(simulator.busySeconds / simulator.activeSeconds * 100, 2))%"
        simulator.stop()
        print(line)
    }

    // Overhead: zero simulated time, one server.
    var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-fast").path)
    options.port = 0
    options.instant()
    let fast = try! Simulator(options: options)
    var runnerOptions = RunnerOptions(servers: [URL(string: fast.url)!])
    runnerOptions.concurrency = 4
    let prompts = 1_000
    let runner = try! Runner(queuePath: benchQueue(directory, count: prompts, name: "overhead"), options: runnerOptions)
    var before = rusage()
    getrusage(RUSAGE_SELF.rawValue, &before)
    let start = ContinuousClock.now
    let summary = await runner.run()
    let wall = seconds(since: start)
    var after = rusage()
    getrusage(RUSAGE_SELF.rawValue, &after)
    func cpu(_ usage: rusage) -> Double {
        Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    fast.stop()
    print("runner: \(summary.done) prompts, zero simulated time, one server, concurrency 4: \(format(Double(summary.done) / wall, 0)) prompts/s end to end, \(format((cpu(after) - cpu(before)) / Double(max(1, summary.done)) * 1000, 2)) ms CPU per prompt (runner and simulator in one process)  [target ≥ 200/s]")

    // Memory: 100,000 items queued, a few seconds of running.
    let big = benchQueue(directory, count: 100_000, name: "memory")
    var slowOptions = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-memory").path)
    slowOptions.port = 0
    slowOptions.instant()
    slowOptions.stepTime = 0.005
    let slow = try! Simulator(options: slowOptions)
    let before100k = residentBytes()
    let memoryRunner = try! Runner(queuePath: big, options: RunnerOptions(servers: [URL(string: slow.url)!]))
    let task = Task { await memoryRunner.run() }
    var peak = 0
    for _ in 0..<30 {
        try? await Task.sleep(for: .milliseconds(100))
        peak = max(peak, residentBytes())
    }
    await memoryRunner.stop()
    _ = await task.value
    slow.stop()
    print("runner: resident memory with 100,000 items queued, while running: \(format(Double(peak) / 1_048_576, 0)) MB for the whole process (\(format(Double(peak - before100k) / 1_048_576, 1)) MB more than before the run)  [target < 100 MB, not growing with the queue]")
}

// MARK: Hooks

/// A phase event as the runner builds it: every key set, three parameters, per-phase timings.
func fullHookEvent(_ index: Int) -> HookEvent {
    let prompt = HookPrompt(
        job: "night", item: index, promptID: "7d4f0b9e-3c2a-4c56-9a53-2b8e1f0a6c11", server: "http://127.0.0.1:8188",
        params: ["KSampler.seed": .int(index), "Positive prompt.text": "a lighthouse at dusk, film grain", "KSampler.cfg": 7.5], attempt: 1)
    let snapshot = ProgressSnapshot(
        promptID: prompt.promptID, phase: .decoding, node: NodeRef(id: "8", classType: "VAEDecode", title: "VAE Decode"), sampler: 2, samplers: 2,
        step: 20, steps: 20, fraction: 0.9)
    return .prompt(
        .phase, prompt, snapshot: snapshot, previous: .sampling, elapsed: 12.5, outputs: ["outputs/night/night_1.png"],
        failure: HookFailure(message: "none", node: "8", classType: "VAEDecode", exceptionType: "x"), willRetry: false,
        timings: ["queued": 0.1, "setup": 2, "sampling": 10])
}

func benchmarkHooks() async {
    let source = """
        local count = 0
        function on_phase(e)
          if e.phase == 'decoding' and e.params['KSampler.seed'] >= 0 then count = count + 1 end
          return e.item
        end
        """
    let lua = try! LuaScript(source: source, name: "bench.lua")
    let events = (0..<1000).map(fullHookEvent)
    let tables = events.map { JSONValue.object($0.table) }
    let calls = 20_000
    let call = measure(rounds: 5) {
        for index in 0..<calls { _ = try! lua.call("on_phase", [tables[index % tables.count]]) }
    } / Double(calls)
    let build = measure(rounds: 5) {
        var keys = 0
        for index in 0..<calls { keys += fullHookEvent(index).table.count }
        precondition(keys > 0)
    } / Double(calls)
    print("hooks: one call with a full event table (\(tables[0].objectValue!.count) keys, nested params/node/error/timings): \(format(call * 1e6, 2)) µs to encode, push, call on_phase and read its result; building the event \(format(build * 1e6, 2)) µs  [target ≤ 20 µs]")

    // Through the mailbox: the caller's cost per deliver, and the script thread's throughput.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-hooks-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("bench.lua").path
    try! source.write(toFile: path, atomically: true, encoding: .utf8)
    let script = try! await HookScript.load(path: path, environment: HookEnvironment { _ in })
    let count = 100_000
    let start = ContinuousClock.now
    for index in 0..<count { script.deliver(events[index % events.count]) }
    let delivered = seconds(since: start)
    await script.flush()
    let handled = seconds(since: start)
    script.stop()
    print("hooks: \(count) events through one script's mailbox: deliver() \(format(delivered / Double(count) * 1e6, 2)) µs each on the caller's side, all handled after \(format(handled, 2)) s (\(format(Double(count) / handled, 0)) events/s)")

    // A hook that sleeps 10 s on every phase change and progress event, beside the same batch
    // without it: the batch must not notice.
    let sleeper = directory.appendingPathComponent("sleeper.lua").path
    try! """
        function on_phase(e) comfyq.exec({'sleep', '10'}, 15) end
        function on_progress(e) comfyq.exec({'sleep', '10'}, 15) end
        """.write(toFile: sleeper, atomically: true, encoding: .utf8)
    let prompts = 20
    var results: [(span: Double, busy: Double, progress: Int)] = []
    for withHook in [false, true] {
        let simulator = gpuSimulator(latency: 0, output: directory.appendingPathComponent("sim-\(withHook)").path)
        var options = RunnerOptions(servers: [URL(string: simulator.url)!])
        var hookSet: HookSet?
        if withHook {
            var settings = HookScript.Settings()
            settings.limits.time = 15
            hookSet = try! await HookSet.load([HookSet.Source(path: sleeper)], settings: settings, environment: HookEnvironment { _ in })
            options.hooks = hookSet
            options.hookDrainTimeout = 0.1
        }
        let runner = try! Runner(queuePath: benchQueue(directory, count: prompts, name: "sleeper-\(withHook)"), options: options)
        let watcher = Task { () -> (Double, Int) in
            let start = ContinuousClock.now
            var last = 0.0
            var progress = 0
            for await event in runner.events {
                switch event {
                case .completed: last = seconds(since: start)
                case .progress, .transition: progress += 1
                default: break
                }
            }
            return (last, progress)
        }
        _ = await runner.run()
        let (span, progress) = await watcher.value
        results.append((span, simulator.busySeconds / simulator.activeSeconds, progress))
        simulator.stop()
        if let hookSet { print("  (the sleeping hook got through \(hookSet.scripts[0].stats.calls) of its events while the batch ran)") }
    }
    print("hooks: \(prompts) prompts of 20 steps at 35 ms, concurrency 2, with a hook that sleeps 10 s on every phase change and progress event vs none: last output after \(format(results[1].span, 2)) s vs \(format(results[0].span, 2)) s (ratio \(format(results[1].span / results[0].span, 3))), GPU busy \(format(results[1].busy * 100, 2))% vs \(format(results[0].busy * 100, 2))%, progress updates seen \(results[1].progress) vs \(results[0].progress)")
}

extension String {
    func leftPad(_ width: Int, _ pad: Character = " ") -> String {
        String(repeating: pad, count: max(0, width - count)) + self
    }
}

let arguments = Set(CommandLine.arguments.dropFirst())
let all = arguments.isEmpty || arguments.contains("all")
#if DEBUG
print("warning: debug build; run with -c release for real figures")
#endif
if all || arguments.contains("engine") { benchmarkEngine() }
if all || arguments.contains("decode") { benchmarkDecode() }
if all || arguments.contains("graph300") { benchmarkGraph300() }
if all || arguments.contains("memory") { benchmarkMemory() }
if all || arguments.contains("codec") { benchmarkCodec() }
if all || arguments.contains("loopback") { await benchmarkLoopback() }
if all || arguments.contains("http") { await benchmarkHTTP() }
if all || arguments.contains("simulator") { await benchmarkSimulator() }
if all || arguments.contains("queue") { benchmarkQueue() }
if all || arguments.contains("runner") { await benchmarkRunner() }
if all || arguments.contains("hooks") { await benchmarkHooks() }
if all || arguments.contains("supervision") { await SupervisionBenchmark.run() }
