import ComfyCore
import Foundation
import Synchronization
import WebSocket

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A failure talking to a ComfyUI server, said in one line that names the server.
public struct ComfyAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case connectionRefused
        case hostNotFound
        case timedOut
        /// Another transport failure, with the system's words.
        case transport(String)
        /// An HTTP status the call does not expect (5xx and friends), with the start of the body.
        case httpStatus(Int, String)
        /// A body that is not the JSON the endpoint returns.
        case malformedJSON(String)
        /// Something answers, but it is not ComfyUI.
        case notComfyUI(String)
        /// `POST /prompt` answered 400: the prompt failed validation.
        case rejected(PromptRejection)
        /// Writing a downloaded file failed.
        case file(String)
        /// Writing a downloaded file failed for lack of space (ENOSPC, EDQUOT).
        case noSpace(String)
    }

    public var server: String
    /// What was asked, e.g. `POST /prompt`.
    public var request: String
    public var kind: Kind

    public init(server: String, request: String, kind: Kind) {
        self.server = server
        self.request = request
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .connectionRefused: "\(server): connection refused (\(request))"
        case .hostNotFound: "\(server): host not found (\(request))"
        case .timedOut: "\(server): no answer in time (\(request))"
        case .transport(let detail): "\(server): \(request) failed: \(detail)"
        case .httpStatus(let status, let body):
            "\(server): \(request) answered HTTP \(status)" + (body.isEmpty ? "" : ": \(body)")
        case .malformedJSON(let detail): "\(server): \(request) returned malformed JSON (\(detail))"
        case .notComfyUI(let detail): "\(server): this does not look like ComfyUI (\(detail))"
        case .rejected(let rejection): "\(server): prompt rejected: \(rejection)"
        case .file(let detail), .noSpace(let detail): "\(server): \(request): \(detail)"
        }
    }
}

/// Why ComfyUI refused a prompt (`POST /prompt` → 400), decoded from its `error` and `node_errors`.
public struct PromptRejection: Sendable, Equatable, CustomStringConvertible {
    public struct NodeError: Sendable, Equatable {
        public var nodeID: String
        public var classType: String?
        public var type: String
        public var message: String
        public var details: String
        public var input: String?
    }

    public var type: String
    public var message: String
    public var details: String
    public var nodeErrors: [NodeError]
    /// The node a prompt-level error names (0.38's `missing_node_type`: `node_id`, `class_type`).
    public var nodeID: String?
    public var classType: String?

    /// Reads ComfyUI's 400 body (0.3.64 and 0.38: every error type, known or not).
    public init(json: JSONValue) {
        let error = json["error"]
        type = error?["type"]?.stringValue ?? "unknown"
        message = error?["message"]?.stringValue ?? "the server rejected the prompt"
        details = error?["details"]?.stringValue ?? ""
        nodeID = error?["extra_info"]?["node_id"]?.stringValue
        classType = error?["extra_info"]?["class_type"]?.stringValue
        var nodes: [NodeError] = []
        for (id, entry) in json["node_errors"]?.objectValue ?? JSONObject() {
            for item in entry["errors"]?.arrayValue ?? [] {
                nodes.append(
                    NodeError(
                        nodeID: id, classType: entry["class_type"]?.stringValue, type: item["type"]?.stringValue ?? "",
                        message: item["message"]?.stringValue ?? "", details: item["details"]?.stringValue ?? "",
                        input: item["extra_info"]?["input_name"]?.stringValue))
            }
        }
        nodeErrors = nodes
    }

    /// `node 4 (CheckpointLoaderSimple) input ckpt_name: Value not in list: ckpt_name: 'x' not in [...]`,
    /// with further problems counted.
    /// Without node errors: `missing_node_type: Node 'Upscaler' not found. The custom node may not be
    /// installed. (node 12, class UltimateSDUpscale)`.
    public var description: String {
        guard let first = nodeErrors.first else {
            var line = "\(type): \(message)"
            if !details.isEmpty && details != message && nodeID == nil { line += " (\(details))" }
            if let nodeID { line += " (node \(nodeID)\(classType.map { ", class \($0)" } ?? ""))" }
            return line
        }
        var line = "node \(first.nodeID)"
        if let classType = first.classType { line += " (\(classType))" }
        if let input = first.input { line += " input \(input)" }
        line += ": \(first.message)"
        if !first.details.isEmpty { line += ": \(first.details)" }
        if nodeErrors.count > 1 { line += " (and \(nodeErrors.count - 1) more)" }
        return line
    }
}

/// `POST /prompt` accepted the prompt.
public struct SubmittedPrompt: Sendable, Equatable {
    public var promptID: String
    public var number: Double
    /// Outputs dropped as invalid while others were accepted (ComfyUI answers 200 then).
    public var nodeErrors: JSONValue
}

/// `GET /queue`: the prompt ids running and waiting.
public struct QueueSnapshot: Sendable, Equatable {
    public var running: [String]
    public var pending: [String]

    public func contains(_ promptID: String) -> Bool { running.contains(promptID) || pending.contains(promptID) }
}

/// `GET /system_stats`, reduced to what users ask about.
public struct SystemStats: Sendable, Equatable {
    public struct Device: Sendable, Equatable {
        public var name: String
        public var type: String
        public var vramTotal: Int64
        public var vramFree: Int64
    }

    public var comfyUIVersion: String?
    public var pythonVersion: String?
    public var pytorchVersion: String?
    public var devices: [Device]
}

/// The HTTP side of one ComfyUI server. Every call is one request; errors name the server.
public struct ComfyAPI: Sendable {
    /// `http://host:port` (with any path prefix of a proxy), without a trailing slash.
    public let baseURL: URL
    public let session: URLSession
    /// Extra headers for servers behind a proxy (Authorization, Cookie).
    public let headers: [String: String]
    public let timeout: TimeInterval

    /// `session`: nil for one shared by every API with the same timeout. (On Linux a request's
    /// own `timeoutInterval` is not honoured over its session's, so the timeout lives in the
    /// session: a hung server then fails a call after `timeout`, not after the default 60 s.)
    public init(baseURL: URL, session: URLSession? = nil, headers: [String: String] = [:], timeout: TimeInterval = 30) {
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        self.baseURL = URL(string: text) ?? baseURL
        self.session = session ?? Self.sharedSession(timeout: timeout)
        self.headers = headers
        self.timeout = timeout
    }

    private static let sessions = Mutex<[TimeInterval: URLSession]>([:])

    /// One session per timeout, for the life of the process.
    static func sharedSession(timeout: TimeInterval) -> URLSession {
        sessions.withLock { sessions in
            if let session = sessions[timeout] { return session }
            let configuration = URLSessionConfiguration.default
            configuration.timeoutIntervalForRequest = timeout
            // Nothing is cached or remembered between requests: `/queue` and `/history` must be
            // asked every time, and a run of weeks must not keep every answer it ever got (the
            // shared URLCache held each `/history/{id}` and `/view` answer: RSS grew per prompt).
            configuration.urlCache = nil
            configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
            configuration.httpCookieStorage = nil
            configuration.httpShouldSetCookies = false
            let session = URLSession(configuration: configuration)
            sessions[timeout] = session
            return session
        }
    }

    /// Reads `--server` values: a URL, or `host:port`, which means http.
    public static func serverURL(_ text: String) -> URL? {
        let full = text.contains("://") ? text : "http://\(text)"
        guard let url = URL(string: full), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host != nil
        else { return nil }
        return url
    }

    /// How the server is named in messages.
    public var name: String { baseURL.absoluteString }

    // MARK: Calls

    /// Queues a prompt. Always sends `client_id` (without it ComfyUI sends no execution messages)
    /// and our own `prompt_id` (so a crash between submit and record can be reconciled).
    public func submit(_ workflow: Workflow, promptID: String, clientID: String, extraData: JSONObject? = nil) async throws(ComfyAPIError) -> SubmittedPrompt {
        var body: JSONObject = ["prompt": workflow.json, "client_id": .string(clientID), "prompt_id": .string(promptID)]
        if let extraData { body["extra_data"] = .object(extraData) }
        let request = "POST /prompt"
        let (status, data) = try await send("POST", "/prompt", body: .object(body))
        if status == 400 {
            throw error(request, .rejected(PromptRejection(json: try parse(data, request))))
        }
        try expectOK(status, data, request)
        let json = try parse(data, request)
        guard let id = json["prompt_id"]?.stringValue else {
            throw error(request, .notComfyUI("no prompt_id in the answer"))
        }
        return SubmittedPrompt(
            promptID: id, number: json["number"]?.numberValue?.double ?? 0, nodeErrors: json["node_errors"] ?? [:])
    }

    /// `GET /history/{id}`: nil while the prompt is unknown or unfinished (`{}`). ComfyUI writes
    /// history just before `executing` with node null, so an empty answer right after
    /// `execution_success` means "not yet", never "lost".
    public func history(_ promptID: String) async throws(ComfyAPIError) -> HistoryRecord? {
        let request = "GET /history/\(promptID)"
        let (status, data) = try await send("GET", "/history/\(promptID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? promptID)")
        try expectOK(status, data, request)
        return HistoryRecord.parse(try parse(data, request), promptID: promptID)
    }

    public func queue() async throws(ComfyAPIError) -> QueueSnapshot {
        let request = "GET /queue"
        let (status, data) = try await send("GET", "/queue")
        try expectOK(status, data, request)
        let json = try parse(data, request)
        guard json["queue_running"] != nil || json["queue_pending"] != nil else {
            throw error(request, .notComfyUI("GET /queue has no queue_running"))
        }
        func ids(_ key: String) -> [String] {
            (json[key]?.arrayValue ?? []).compactMap { $0.arrayValue?.dropFirst().first?.stringValue }
        }
        return QueueSnapshot(running: ids("queue_running"), pending: ids("queue_pending"))
    }

    /// Removes pending prompts (running ones need `interrupt`).
    public func delete(_ promptIDs: [String]) async throws(ComfyAPIError) {
        let request = "POST /queue"
        let (status, data) = try await send("POST", "/queue", body: ["delete": .array(promptIDs.map { .string($0) })])
        try expectOK(status, data, request)
    }

    /// Interrupts `promptID` if it is the one running (a no-op otherwise); nil interrupts whatever runs.
    public func interrupt(_ promptID: String?) async throws(ComfyAPIError) {
        let body: JSONValue? = promptID.map { ["prompt_id": .string($0)] }
        let (status, data) = try await send("POST", "/interrupt", body: body)
        try expectOK(status, data, "POST /interrupt")
    }

    public func systemStats() async throws(ComfyAPIError) -> SystemStats {
        let request = "GET /system_stats"
        let (status, data) = try await send("GET", "/system_stats")
        if status == 404 || status == 405 { throw error(request, .notComfyUI("GET /system_stats answered HTTP \(status)")) }
        try expectOK(status, data, request)
        let json: JSONValue
        do { json = try parse(data, request) } catch { throw self.error(request, .notComfyUI("GET /system_stats is not JSON")) }
        guard let system = json["system"]?.objectValue else {
            throw error(request, .notComfyUI("GET /system_stats has no \"system\""))
        }
        let devices = (json["devices"]?.arrayValue ?? []).map { device in
            SystemStats.Device(
                name: device["name"]?.stringValue ?? "?", type: device["type"]?.stringValue ?? "?",
                vramTotal: Int64(device["vram_total"]?.numberValue?.double ?? 0),
                vramFree: Int64(device["vram_free"]?.numberValue?.double ?? 0))
        }
        return SystemStats(
            comfyUIVersion: system["comfyui_version"]?.stringValue, pythonVersion: system["python_version"]?.stringValue,
            pytorchVersion: system["pytorch_version"]?.stringValue, devices: devices)
    }

    /// `GET /prompt`: the queue length (pending + running).
    public func queueRemaining() async throws(ComfyAPIError) -> Int {
        let request = "GET /prompt"
        let (status, data) = try await send("GET", "/prompt")
        try expectOK(status, data, request)
        guard let remaining = try parse(data, request)["exec_info"]?["queue_remaining"]?.numberValue?.int else {
            throw error(request, .notComfyUI("GET /prompt has no exec_info.queue_remaining"))
        }
        return remaining
    }

    /// `GET /object_info`: every node class the server knows.
    public func objectInfo() async throws(ComfyAPIError) -> JSONValue {
        let (status, data) = try await send("GET", "/object_info")
        try expectOK(status, data, "GET /object_info")
        return try parse(data, "GET /object_info")
    }

    /// Streams an output file to `destination` (URLSession writes it to disk as it arrives), and
    /// returns its size. The caller decides the final name; this only moves the finished download.
    public func download(_ file: OutputFile, to destination: URL) async throws(ComfyAPIError) -> Int64 {
        var components = URLComponents()
        components.queryItems = [
            URLQueryItem(name: "filename", value: file.filename), URLQueryItem(name: "subfolder", value: file.subfolder),
            URLQueryItem(name: "type", value: file.type),
        ]
        let requestName = "GET /view \(file.filename)"
        guard let url = URL(string: baseURL.absoluteString + "/view" + (components.url?.absoluteString ?? "")) else {
            throw error(requestName, .transport("cannot build the URL"))
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let temporary: URL
        let response: URLResponse
        do {
            (temporary, response) = try await session.download(for: request)
        } catch {
            throw self.error(requestName, Self.kind(of: error))
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            try? FileManager.default.removeItem(at: temporary)
            // No HTTP answer at all (the connection closed first) is the server going away.
            throw error(requestName, status == 0 ? .transport("no HTTP answer") : .httpStatus(status, ""))
        }
        do {
            try? FileManager.default.removeItem(at: destination)
            try FileManager.default.moveItem(at: temporary, to: destination)
            // stat, not attributesOfItem: that also looks up the owner's and group's names.
            var info = stat()
            guard stat(destination.path, &info) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            return Int64(info.st_size)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            let detail = "cannot write \(destination.path): \(error.localizedDescription)"
            throw self.error(requestName, DiskSpace.isOutOfSpace(error) ? .noSpace(detail) : .file(detail))
        }
    }

    /// The WebSocket URL for `clientId` on this server.
    public func webSocketURL(clientID: String) throws(WebSocketError) -> WebSocketURL {
        var text = baseURL.absoluteString
        if text.hasPrefix("https://") { text = "wss://" + text.dropFirst(8) } else if text.hasPrefix("http://") {
            text = "ws://" + text.dropFirst(7)
        }
        return try WebSocketURL(text + "/ws?clientId=\(clientID)")
    }

    // MARK: Plumbing

    func send(
        _ method: String, _ path: String, body: JSONValue? = nil, rawBody: Data? = nil, contentType: String? = nil
    ) async throws(ComfyAPIError) -> (Int, Data) {
        guard let url = URL(string: baseURL.absoluteString + path) else {
            throw error("\(method) \(path)", .transport("cannot build the URL"))
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = Data(body.serialized().utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let rawBody {
            request.httpBody = rawBody
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await session.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        } catch {
            throw self.error("\(method) \(path)", Self.kind(of: error))
        }
    }

    func expectOK(_ status: Int, _ data: Data, _ request: String) throws(ComfyAPIError) {
        guard status == 200 else {
            let text = String(decoding: data.prefix(200), as: UTF8.self)
            let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            throw error(request, .httpStatus(status, line))
        }
    }

    func parse(_ data: Data, _ request: String) throws(ComfyAPIError) -> JSONValue {
        do {
            return try JSONValue(parsing: Array(data))
        } catch {
            throw self.error(request, .malformedJSON("\(error)"))
        }
    }

    func error(_ request: String, _ kind: ComfyAPIError.Kind) -> ComfyAPIError {
        ComfyAPIError(server: name, request: request, kind: kind)
    }

    static func kind(of error: any Error) -> ComfyAPIError.Kind {
        guard let error = error as? URLError else { return .transport("\(error)") }
        switch error.code {
        case .cannotConnectToHost: return .connectionRefused
        case .cannotFindHost, .dnsLookupFailed: return .hostNotFound
        case .timedOut: return .timedOut
        default: return .transport(error.localizedDescription)
        }
    }
}
