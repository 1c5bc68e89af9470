/// Why a trace line could not be replayed.
public struct TraceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}

/// Feeds a recorded ComfyUI session (the JSON Lines format of `shared/comfyui/traces`) through a
/// `ProgressEngine`, exactly as the runner would see it live.
///
/// `http` lines for `POST /prompt` start tracking the prompt with the graph they carried;
/// `ws` lines are decoded by `ServerEventDecoder`; `GET /history/{id}` answers become history
/// events. `binary`, `note` and `sent` lines carry nothing for the engine.
public struct TraceReplay: Sendable {
    /// One change the engine reported, with the trace time it happened at.
    public struct Record: Sendable, Equatable {
        public var time: Double
        public var update: ProgressUpdate
    }

    public private(set) var engine = ProgressEngine()
    /// Message types the engine does not interpret, with how often they appeared.
    public private(set) var skippedTypes: [String: Int] = [:]
    /// Final snapshots of prompts that ended, in the order they ended.
    public private(set) var finished: [ProgressSnapshot] = []
    /// Every prompt submitted, in order.
    public private(set) var submitted: [String] = []
    private var plans: [String: PromptPlan] = [:]
    /// One decoder per recorded connection (`conn`), as the runner keeps one per socket.
    private var decoders: [String: EventStreamDecoder] = [:]

    public init() {}

    /// Replays one line (1-based `number`, for errors) and returns what changed.
    public mutating func feed(line: String, number: Int) throws(TraceError) -> [Record] {
        var line = line
        let result = line.withUTF8 { bytes in Result { () throws(TraceError) in try feed(bytes, number: number) } }
        return try result.get()
    }

    private mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, number: Int) throws(TraceError) -> [Record] {
        var reader = JSONReader(bytes)
        reader.skipWhitespace()
        if reader.index == bytes.count { return [] }  // blank line
        var time: Double?
        var message: Range<Int>?
        var http: JSONValue?
        var connection = ""
        do {
            try reader.beginObject()
            var first = true
            while let key = try reader.nextKey(first: &first) {
                if reader.key(key, is: "t") {
                    time = try reader.readDouble()
                } else if reader.key(key, is: "ws") {
                    reader.skipWhitespace()
                    let start = reader.index
                    try reader.skipValue()
                    message = start..<reader.index
                } else if reader.key(key, is: "http") {
                    http = try reader.readValue()
                } else if reader.key(key, is: "conn") {
                    connection = try reader.readOptionalString() ?? ""
                } else {
                    try reader.skipValue()
                }
            }
            try reader.expectEnd()
        } catch {
            throw TraceError(line: number, reason: "malformed JSON: \(error)")
        }
        guard let time else { throw TraceError(line: number, reason: "no \"t\" field") }

        if let message {
            let event: ServerEvent
            do {
                event = try decoders[connection, default: EventStreamDecoder()].decode(
                    UnsafeBufferPointer(rebasing: bytes[message]))
            } catch {
                throw TraceError(line: number, reason: "bad WebSocket message: \(error)")
            }
            if case .unknown(let type) = event { skippedTypes[type, default: 0] += 1 }
            return receive(event, at: time)
        }
        if let http { return try exchange(http, at: time, number: number) }
        return []
    }

    private mutating func receive(_ event: ServerEvent, at time: Double) -> [Record] {
        guard let update = engine.receive(event, at: time) else { return [] }
        if update.snapshot.phase.isTerminal { finished.append(update.snapshot) }
        return [Record(time: time, update: update)]
    }

    private mutating func exchange(_ http: JSONValue, at time: Double, number: Int) throws(TraceError) -> [Record] {
        let method = http["method"]?.stringValue ?? ""
        let path = http["path"]?.stringValue ?? ""
        let status = http["status"]?.numberValue?.int ?? 0
        let route = path.hasPrefix("/api/") ? String(path.dropFirst(4)) : path
        guard status == 200 else { return [] }

        if method == "POST" && route == "/prompt" {
            guard let graph = http["request"]?["prompt"], let id = http["body"]?["prompt_id"]?.stringValue else {
                throw TraceError(line: number, reason: "POST /prompt without a prompt or a prompt_id")
            }
            let workflow: Workflow
            do { workflow = try Workflow(json: graph) } catch {
                throw TraceError(line: number, reason: "submitted graph: \(error)")
            }
            let plan = PromptPlan(workflow)
            plans[id] = plan
            submitted.append(id)
            let snapshot = engine.track(id, plan: plan, at: time)
            return [Record(time: time, update: ProgressUpdate(snapshot: snapshot, transition: nil))]
        }
        if method == "POST" && route == "/queue", let request = http["request"] {
            // Deleting pending prompts cancels them; `clear` cancels every one not yet started.
            var ids = (request["delete"]?.arrayValue ?? []).compactMap(\.stringValue)
            if request["clear"]?.boolValue == true {
                ids += submitted.filter { engine.snapshot(of: $0)?.phase == .queued }
            }
            return ids.compactMap { id in
                guard let update = engine.cancel(id, at: time) else { return nil }
                finished.append(update.snapshot)
                return Record(time: time, update: update)
            }
        }
        if method == "GET" && route.hasPrefix("/history/") {
            let id = String(route.dropFirst("/history/".count))
            guard let body = http["body"], let record = HistoryRecord.parse(body, promptID: id),
                let outcome = record.outcome
            else { return [] }
            return receive(.history(promptID: id, outcome: outcome), at: time)
        }
        return []
    }
}
