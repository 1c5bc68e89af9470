import ComfyCore
import Foundation
import HTTPServer
import WebSocket

extension Simulator {
    /// One request of a connection: a WebSocket upgrade takes the connection over; anything
    /// else is answered (after `/sim/hang`, never).
    func handle(_ request: HTTPRequest, _ connection: ClientConnection, _ remainder: () -> [UInt8]) -> HTTPServer.Reply {
        waitWhileHung()
        if request.wantsWebSocket && route(request.path) == "/ws" {
            serveWebSocket(connection, request: request, leftover: remainder())
            return .tookOver
        }
        return .response(respond(to: request))
    }

    /// After `/sim/hang`: a request is never answered (until the simulator stops).
    func waitWhileHung() {
        while state.withLock({ $0.hung && !$0.stopped }) { Thread.sleep(forTimeInterval: 0.05) }
    }

    /// A request's route with ids left out, for `/sim/stats`: `GET /history/{id}`, `POST /api/jobs/{id}/cancel`.
    static func routeName(_ path: String) -> String {
        if path.hasPrefix("/api/jobs/") && path != "/api/jobs/cancel" {
            return path.hasSuffix("/cancel") ? "/api/jobs/{id}/cancel" : "/api/jobs/{id}"
        }
        let plain = path.hasPrefix("/api/") ? String(path.dropFirst(4)) : path
        for prefix in ["/history/", "/object_info/"] where plain.hasPrefix(prefix) { return prefix + "{id}" }
        return path.hasPrefix("/api/jobs") ? path : plain
    }

    /// `/api/x` and `/x` are the same route, as in ComfyUI.
    func route(_ path: String) -> String { path.hasPrefix("/api/") ? String(path.dropFirst(4)) : path }

    /// A route the simulator does not have: what it received, so a stray request says what it was.
    func notFound(_ request: HTTPRequest) -> HTTPResponse {
        json(["error": "not found", "method": .string(request.method), "path": .string(request.path)], status: 404)
    }

    func json(_ value: JSONValue, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: Array(value.serialized().utf8))
    }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        let path = route(request.path)
        let body = request.body.isEmpty ? nil : try? JSONValue(parsing: request.body)
        state.withLock { $0.requests[request.method + " " + Self.routeName(request.path), default: 0] += 1 }
        // 0.38's jobs API lives only under /api (registered on the app, not mirrored).
        if options.profile.jobsAPI, request.path.hasPrefix("/api/jobs") { return jobs(request, body: body) }
        if let answer = pageRoute(request, path: path, body: body) { return answer }
        switch (request.method, path) {
        case ("POST", "/prompt"): return submit(body)
        case ("GET", "/prompt"):
            return json(["exec_info": ["queue_remaining": .int(state.withLock { $0.queueRemaining })]])
        case ("GET", "/queue"): return json(queueJSON())
        case ("POST", "/queue"):
            let delete = Set((body?["delete"]?.arrayValue ?? []).compactMap(\.stringValue))
            let clear = body?["clear"]?.boolValue == true
            let remaining = state.withLock { state -> Int in
                state.queue.removeAll { clear || delete.contains($0.promptID) }
                return state.queueRemaining
            }
            if clear || !delete.isEmpty { broadcastStatus(remaining) }
            return HTTPResponse(status: 200, contentType: "text/plain")
        case ("POST", "/interrupt"):
            let target = body?["prompt_id"]?.stringValue
            state.withLock { state in
                if let running = state.running, target == nil || target == running.promptID { state.interruptRequested = true }
            }
            return HTTPResponse(status: 200, contentType: "text/plain")
        case ("GET", "/history"): return json(historyJSON(limit: Int(request.query["max_items"] ?? "")))
        case ("GET", _) where path.hasPrefix("/history/"):
            let id = String(path.dropFirst("/history/".count))
            let answer = state.withLock { state -> JSONValue? in
                guard state.failingHistory == 0 else {
                    state.failingHistory -= 1
                    return nil
                }
                return state.history[id].map { .object([id: $0]) } ?? [:]
            }
            guard let answer else { return HTTPResponse(status: 500, contentType: "text/plain", body: Array("500 Internal Server Error".utf8)) }
            return json(answer)
        case ("POST", "/history"):
            state.withLock { state in
                if body?["clear"]?.boolValue == true {
                    state.history.removeAll()
                    state.historyOrder.removeAll()
                }
                for id in (body?["delete"]?.arrayValue ?? []).compactMap(\.stringValue) {
                    state.history[id] = nil
                    state.historyOrder.removeAll { $0 == id }
                }
            }
            return HTTPResponse(status: 200, contentType: "text/plain")
        case ("GET", "/view"): return view(request.query)
        case ("GET", "/system_stats"): return json(systemStats())
        case ("GET", "/object_info"):
            let failing = state.withLock { state -> Bool in
                guard state.failingObjectInfo > 0 else { return false }
                state.failingObjectInfo -= 1
                return true
            }
            if failing { return HTTPResponse(status: 500, contentType: "text/plain", body: Array("500 Internal Server Error".utf8)) }
            return json(NodeCatalog.objectInfo(inputFiles: inputFiles(), models: models))
        case ("GET", _) where path.hasPrefix("/object_info/"):
            let name = String(path.dropFirst("/object_info/".count))
            return json(NodeCatalog.objectInfo(inputFiles: inputFiles(), models: models)[name].map { .object([name: $0]) } ?? [:])
        case ("GET", "/features"): return json(features())
        case ("POST", "/upload/image"): return upload(request, mask: false)
        case ("POST", "/upload/mask"): return upload(request, mask: true)
        case (_, _) where path.hasPrefix("/sim/"): return control(path, body, request.query)
        case ("GET", _) where options.frontEndRoot != nil: return staticFile(request) ?? notFound(request)
        default: return notFound(request)
        }
    }

    // MARK: Routes

    private func submit(_ body: JSONValue?) -> HTTPResponse {
        let failing = state.withLock { state -> Bool in
            guard state.failingSubmits > 0 else { return false }
            state.failingSubmits -= 1
            return true
        }
        if failing { return HTTPResponse(status: 500, contentType: "text/plain", body: Array("500 Internal Server Error".utf8)) }
        let prompt: ValidatedPrompt
        if options.profile == .v0_38, let given = body?["prompt_id"], given != .null {
            // jobs.validate_job_id: a canonical, lower-case, hyphenated UUID.
            let text = given.stringValue ?? given.serialized()
            if UUID(uuidString: text)?.uuidString.lowercased() != text {
                return json(
                    [
                        "error": [
                            "type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID",
                            "details": .string("\(text) is not a UUID in canonical lowercase hyphenated form"), "extra_info": [:],
                        ],
                        "node_errors": [:],
                    ], status: 400)
            }
        }
        do {
            prompt = try PromptValidator.validate(
                body?["prompt"], knownModels: models, inputDirectory: options.inputDirectory, profile: options.profile)
        } catch {
            // ComfyUI counts a number even for a prompt that then fails validation.
            state.withLock { $0.nextNumber += 1 }
            return json(error.body, status: 400)
        }
        let clientID = body?["client_id"]?.stringValue
        let (id, number, remaining) = state.withLock { state -> (String, Int, Int) in
            let number = state.nextNumber
            state.nextNumber += 1
            let id = body?["prompt_id"].map { $0.stringValue ?? $0.serialized() } ?? UUID().uuidString.lowercased()
            let front = body?["front"]?.boolValue == true
            let explicit = body?["number"]?.numberValue?.double
            var extra = body?["extra_data"]?.objectValue ?? JSONObject()
            if let clientID { extra["client_id"] = .string(clientID) }
            if self.options.profile == .v0_38 { extra["create_time"] = .int(Int(Date().timeIntervalSince1970 * 1000)) }
            state.queue.append(
                SimulatorState.Queued(
                    number: explicit ?? Double(front ? -number : number), promptID: id, prompt: prompt,
                    promptJSON: body?["prompt"] ?? [:], extraData: .object(extra), clientID: clientID))
            state.queue.sort { $0.number < $1.number }
            return (id, front ? -number : number, state.queueRemaining)
        }
        broadcastStatus(remaining)
        work.signal()
        return json(["prompt_id": .string(id), "number": .int(number), "node_errors": [:]])
    }

    private func queueJSON() -> JSONValue {
        state.withLock { state in
            func item(_ queued: SimulatorState.Queued) -> JSONValue {
                [
                    .number(JSONNumber(queued.number)), .string(queued.promptID), queued.promptJSON, queued.extraData,
                    .array(queued.prompt.outputs.map { .string($0) }),
                ]
            }
            return ["queue_running": .array(state.runningEntry.map { [item($0)] } ?? []), "queue_pending": .array(state.queue.map(item))]
        }
    }

    private func historyJSON(limit: Int?) -> JSONValue {
        state.withLock { state in
            var object = JSONObject()
            let ids = limit.map { Array(state.historyOrder.suffix($0)) } ?? state.historyOrder
            for id in ids { object[id] = state.history[id] }
            return .object(object)
        }
    }

    private func view(_ query: [String: String]) -> HTTPResponse {
        let delay = state.withLock { $0.viewDelay }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        guard var name = query["filename"], !name.isEmpty else { return HTTPResponse(status: 400, contentType: "text/plain") }
        if let bracket = name.range(of: " [") { name = String(name[..<bracket.lowerBound]) }  // "name.png [output]"
        let subfolder = query["subfolder"] ?? ""
        let type = query["type"] ?? "output"
        guard !name.contains(".."), !name.hasPrefix("/"), ["output", "temp", "input"].contains(type) else {
            return HTTPResponse(status: 400, contentType: "text/plain")
        }
        guard !subfolder.contains(".."), !subfolder.hasPrefix("/") else { return HTTPResponse(status: 403, contentType: "text/plain") }
        var url = URL(fileURLWithPath: options.outputDirectory)
        if type != "output" { url.appendPathComponent(type) }
        if !subfolder.isEmpty { url.appendPathComponent(subfolder) }
        url.appendPathComponent(name)
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            // Not there is a 404, as ComfyUI answers; a file that is there but cannot be read says why.
            guard FileManager.default.fileExists(atPath: url.path) else { return HTTPResponse(status: 404, contentType: "text/plain") }
            return HTTPResponse(status: 500, contentType: "text/plain", body: Array("cannot read \(url.path): \(error.localizedDescription)".utf8))
        }
        return HTTPResponse(
            status: 200, contentType: name.hasSuffix(".png") ? "image/png" : "application/octet-stream", body: Array(data),
            headers: [("Content-Disposition", "filename=\"\(name)\"")])
    }

    private func systemStats() -> JSONValue {
        [
            "system": [
                "os": .string(options.profile == .v0_38 ? "linux" : "posix"), "ram_total": 25_276_510_208, "ram_free": 19_960_414_208,
                "comfyui_version": .string(options.profile.version),
                "required_frontend_version": "1.27.10", "python_version": "3.11.2 (comfyq simulator)",
                "pytorch_version": "simulated", "embedded_python": false, "argv": ["comfyq", "simulate"],
            ],
            "devices": [
                [
                    "name": "sim:0 comfyq simulator", "type": "sim", "index": 0, "vram_total": 85_899_345_920,
                    "vram_free": 85_899_345_920, "torch_vram_total": 0, "torch_vram_free": 0,
                ]
            ],
        ]
    }

    /// The checkpoints it has: those `/sim/models` set, else `--models` (nil: any name).
    var models: Set<String>? { state.withLock { $0.models } ?? options.models }

    /// The fault and inspection endpoints under `/sim/`.
    private func control(_ path: String, _ body: JSONValue?, _ query: [String: String]) -> HTTPResponse {
        func number(_ key: String) -> Double? { body?[key]?.numberValue?.double ?? query[key].flatMap(Double.init) }
        switch path {
        case "/sim/drop":
            let clients = state.withLock { state -> [ClientConnection] in
                defer { state.clients.removeAll() }
                return Array(state.clients.values)
            }
            for client in clients { client.drop() }
            return json(["dropped": .int(clients.count)])
        case "/sim/restart":
            let clients = state.withLock { state -> [ClientConnection] in
                state.queue.removeAll()
                state.history.removeAll()
                state.historyOrder.removeAll()
                state.cache.removeAll()
                state.cachedUI.removeAll()
                state.lru.removeAll()
                state.running = nil
                state.runningEntry = nil
                state.generation += 1
                defer { state.clients.removeAll() }
                return Array(state.clients.values)
            }
            for client in clients { client.drop() }
            // `{"lose_inputs": true}`: a restart onto a fresh input folder (a new container).
            if body?["lose_inputs"]?.boolValue == true { try? FileManager.default.removeItem(atPath: options.inputDirectory) }
            return json(["restarted": true])
        case "/sim/hang":
            state.withLock { $0.hung = true }
            return json(["hung": true])
        case "/sim/stall":
            let seconds = number("seconds") ?? 5
            state.withLock { $0.stallUntil = now + seconds }
            return json(["stalled_for": .double(seconds)])
        case "/sim/fail-node":
            let failure = SimulatorState.NodeFailure(
                classType: body?["class_type"]?.stringValue ?? query["class_type"], nodeID: body?["node"]?.stringValue ?? query["node"],
                atStep: Int(number("at_step") ?? 1), exceptionType: body?["exception_type"]?.stringValue ?? "RuntimeError",
                message: body?["message"]?.stringValue ?? "simulated failure", remaining: Int(number("count") ?? 1))
            state.withLock { $0.nodeFailure = failure }
            return json(["armed": true])
        case "/sim/hold":
            let step = Int(number("at_step") ?? 1)
            let seconds = number("seconds") ?? 30
            state.withLock {
                $0.hold = (step, seconds)
                $0.releaseHold = false
            }
            return json(["holding_at_step": .int(step)])
        case "/sim/release":
            state.withLock { $0.releaseHold = true }
            return json(["released": true])
        case "/sim/fail-submit":
            let count = Int(number("count") ?? 1)
            state.withLock { $0.failingSubmits = count }
            return json(["failing_submits": .int(count)])
        case "/sim/fail-object-info":
            let count = Int(number("count") ?? 1)
            state.withLock { $0.failingObjectInfo = count }
            return json(["failing_object_info": .int(count)])
        case "/sim/models":
            // `{"models": ["a.safetensors", …]}`: the checkpoints it has from now on.
            let names = body?["models"]?.arrayValue?.compactMap(\.stringValue) ?? []
            state.withLock { $0.models = .some(Set(names)) }
            return json(["models": .array(names.sorted().map { .string($0) })])
        case "/sim/fail-history":
            let count = Int(number("count") ?? 1)
            state.withLock { $0.failingHistory = count }
            return json(["failing_history": .int(count)])
        case "/sim/mute":
            let count = Int(number("count") ?? 1)
            state.withLock { $0.mutedPrompts = count }
            return json(["muted_prompts": .int(count)])
        case "/sim/slow-view":
            let seconds = number("seconds") ?? 1
            state.withLock { $0.viewDelay = seconds }
            return json(["view_delay": .double(seconds)])
        case "/sim/stats":
            return json(
                state.withLock { state in
                    [
                        "busy_seconds": .double(state.busySeconds),
                        "active_seconds": .double(state.firstStartedAt.flatMap { first in state.lastFinishedAt.map { $0 - first } } ?? 0),
                        "completed": .int(state.completed), "failed": .int(state.failed), "loads": .int(state.loads), "uploads": .int(state.uploads), "upload_requests": .int(state.uploadRequests),
                        "queue_remaining": .int(state.queueRemaining), "clients": .int(state.clients.count),
                        "requests": .object(state.requests.reduce(into: JSONObject()) { $0[$1.key] = .int($1.value) }),
                    ]
                })
        default:
            return json(["error": .string("unknown simulator control \(path)")], status: 404)
        }
    }

    // MARK: WebSocket

    private func serveWebSocket(_ connection: ClientConnection, request: HTTPRequest, leftover: [UInt8]) {
        guard let key = request.headers["sec-websocket-key"] else {
            connection.send(HTTPResponse(status: 400, contentType: "text/plain").serialized(keepAlive: false))
            return
        }
        let sid = request.query["clientId"].flatMap { $0.isEmpty ? nil : $0 } ?? UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let accept = Handshake.acceptValue(for: key)
        connection.send(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n".utf8))
        let previous = state.withLock { state -> ClientConnection? in
            let previous = state.clients[sid]
            state.clients[sid] = connection
            // Queued under the lock, so no worker message can come first (ComfyUI sends these two
            // from the connect handler before anything else reaches the socket).
            let status: JSONValue = ["status": ["exec_info": ["queue_remaining": .int(state.queueRemaining)]], "sid": .string(sid)]
            connection.sendText(message("status", status))
            if options.profile == .v0_38 {
                // The asset seeder's broadcasts (sid None): clients must let unknown types pass.
                connection.sendText(message("assets.seed.completed", ["roots": ["models", "input", "output"], "total": 0, "created": 0]))
            }
            // A reconnecting client of the running prompt learns which node runs, without prompt_id.
            if let replay = state.running.flatMap({ $0.clientID == sid ? $0.node : nil }) {
                connection.sendText(message("executing", ["node": .string(replay)]))
            }
            return previous
        }
        previous?.drop()

        var parser = FrameParser(role: .server)
        var machine = WebSocketStateMachine()
        parser.append(leftover)
        var first = true
        defer {
            // As ComfyUI does (server.py:243-245): the handler's cleanup removes whatever socket is
            // registered under this sid, even a newer one. Clients must close the old socket first.
            state.withLock {
                $0.clients[sid] = nil
                $0.previewMetadata.remove(sid)
            }
        }
        while true {
            do {
                while let frame = try parser.nextFrame() {
                    for action in machine.received(frame) {
                        switch action {
                        case .deliver(.text(let text)):
                            if first, let flags = try? JSONValue(parsing: text), flags["type"] == "feature_flags" {
                                if flags["data"]?["supports_preview_metadata"]?.boolValue == true {
                                    _ = state.withLock { $0.previewMetadata.insert(sid) }
                                }
                                connection.sendText(message("feature_flags", features()))
                            }
                            first = false
                        case .deliver(.binary): first = false
                        case .send(let frame): connection.send(FrameEncoder.encode(frame, maskKey: nil))
                        case .closeConnection: return
                        }
                    }
                }
            } catch {
                for case .send(let frame) in machine.fail(error) { connection.send(FrameEncoder.encode(frame, maskKey: nil)) }
                return
            }
            guard let chunk = try? connection.socket.read(maximum: 64 * 1024, timeout: nil), !chunk.isEmpty else { return }
            parser.append(chunk)
        }
    }

    /// `{"type": type, "data": data}` as text.
    func message(_ type: String, _ data: JSONValue) -> String {
        JSONValue.object(["type": .string(type), "data": data]).serialized()
    }

    func broadcastStatus(_ remaining: Int) {
        let text = message("status", ["status": ["exec_info": ["queue_remaining": .int(remaining)]]])
        for client in state.withLock({ Array($0.clients.values) }) { client.sendText(text) }
    }
}
