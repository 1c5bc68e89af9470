/// Why a WebSocket text message could not be turned into an event.
public enum EventDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedJSON(JSONError)
    case notAnObject
    case missingType
    /// A known message type without a field it cannot do without.
    case missingField(type: String, field: String)

    public var description: String {
        switch self {
        case .malformedJSON(let error): "malformed JSON: \(error)"
        case .notAnObject: "a message must be a JSON object"
        case .missingType: "message has no \"type\""
        case .missingField(let type, let field): "\(type) message has no \"\(field)\""
        }
    }
}

/// The previous `progress_state` message of a stream, with where each of its entries began.
struct ProgressStateMemory: Sendable {
    var bytes: [UInt8]
    var promptID: String
    /// Offset just inside the `nodes` object.
    var nodesStart: Int
    /// Offset before each entry (at its comma or key), plus one more before the closing brace:
    /// entry k is `entryStarts[k]..<entryStarts[k + 1]`.
    var entryStarts: [Int]

    /// How many leading entries lie wholly within the first `common` bytes.
    func unchangedEntries(within common: Int) -> Int {
        // Binary search for the first entry that ends beyond `common`.
        var low = 0
        var high = entryStarts.count - 1
        while low < high {
            let middle = (low + high) / 2
            if entryStarts[middle + 1] <= common { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The length of the common prefix of two byte strings, eight bytes at a time.
    static func commonPrefix(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Int {
        b.withUnsafeBufferPointer { b in
            let count = min(a.count, b.count)
            guard let left = a.baseAddress, let right = b.baseAddress else { return 0 }
            var position = 0
            let l = UnsafeRawPointer(left)
            let r = UnsafeRawPointer(right)
            while position + 8 <= count {
                let x = l.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                let y = r.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                if x != y { return position + (UInt64(littleEndian: x ^ y).trailingZeroBitCount / 8) }
                position += 8
            }
            while position < count && left[position] == right[position] { position += 1 }
            return position
        }
    }
}

/// Decodes one connection's stream of messages, in order.
///
/// Unlike the stateless `ServerEventDecoder.decode`, it remembers the last `progress_state` so the
/// next one costs a byte comparison of the unchanged part plus parsing what changed: a
/// `progressState` event from a stream lists only the entries that changed since the previous
/// message of the same prompt. The engine treats entries idempotently, so the outcome is the same.
public struct EventStreamDecoder: Sendable {
    private var memory: ProgressStateMemory?

    public init() {}

    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> ServerEvent {
        try ServerEventDecoder.decode(bytes, memory: &memory)
    }

    public mutating func decode(_ bytes: [UInt8]) throws(EventDecodingError) -> ServerEvent {
        var memory = self.memory
        defer { self.memory = memory }
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(EventDecodingError) in try ServerEventDecoder.decode(buffer, memory: &memory) }
        }
        return try result.get()
    }

    public mutating func decode(_ text: String) throws(EventDecodingError) -> ServerEvent {
        try decode(Array(text.utf8))
    }

    /// Forgets the remembered message (after a reconnect, the next map is parsed whole).
    public mutating func reset() { memory = nil }
}

/// Turns ComfyUI's WebSocket text messages into `ServerEvent`s.
///
/// It decodes only what changes the outcome: a `progress_state` entry yields its ids, value, max and
/// state, while the `prompt_id` repeated in every entry, tracebacks and `current_inputs` are
/// skipped without being materialised. Unknown message types and unknown fields are tolerated.
public enum ServerEventDecoder {
    public static func decode(_ text: String) throws(EventDecodingError) -> ServerEvent {
        var text = text
        let result = text.withUTF8 { bytes in Result { () throws(EventDecodingError) in try decode(bytes) } }
        return try result.get()
    }

    public static func decode(_ bytes: [UInt8]) throws(EventDecodingError) -> ServerEvent {
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(EventDecodingError) in try decode(buffer) }
        }
        return try result.get()
    }

    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(EventDecodingError) -> ServerEvent {
        var memory: ProgressStateMemory?
        return try decode(bytes, memory: &memory)
    }

    static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, memory: inout ProgressStateMemory?
    ) throws(EventDecodingError) -> ServerEvent {
        do {
            return try decodeTop(bytes, memory: &memory)
        } catch let error as EventDecodingError {
            throw error
        } catch let error as JSONError {
            throw .malformedJSON(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    private static func decodeTop(
        _ bytes: UnsafeBufferPointer<UInt8>, memory: inout ProgressStateMemory?
    ) throws -> ServerEvent {
        var reader = JSONReader(bytes)
        guard try reader.peek() == UInt8(ascii: "{") else { throw EventDecodingError.notAnObject }
        try reader.beginObject()
        var type: String?
        var event: ServerEvent?
        var pendingData: Range<Int>?
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "type") {
                type = try reader.readOptionalString()
            } else if reader.key(key, is: "data"), let known = type {
                event =
                    known == "progress_state"
                    ? try progressState(&reader, memory: &memory) : try decodeData(type: known, &reader)
            } else if reader.key(key, is: "data") {
                reader.skipWhitespace()
                let start = reader.index
                try reader.skipValue()
                pendingData = start..<reader.index
            } else {
                try reader.skipValue()
            }
        }
        try reader.expectEnd()
        guard let type else { throw EventDecodingError.missingType }
        if let event { return event }
        if let pendingData {
            var inner = JSONReader(UnsafeBufferPointer(rebasing: bytes[pendingData]))
            return try decodeData(type: type, &inner)
        }
        return try decodeMissingData(type: type)
    }

    private static func decodeMissingData(type: String) throws -> ServerEvent {
        let empty: StaticString = "{}"
        var reader = JSONReader(UnsafeBufferPointer(start: empty.utf8Start, count: empty.utf8CodeUnitCount))
        return try decodeData(type: type, &reader)
    }

    // MARK: Per type

    private static func decodeData(type: String, _ reader: inout JSONReader) throws -> ServerEvent {
        switch type {
        case "progress_state":
            var none: ProgressStateMemory?  // offsets of a rebased reader are not the message's
            return try progressState(&reader, memory: &none)
        case "progress": return try progress(&reader)
        case "executing": return try executing(&reader)
        case "status": return try status(&reader)
        case "execution_start", "execution_success":
            let fields = try Fields(&reader, strings: ["prompt_id"])
            let id = try fields.require("prompt_id", type)
            return type == "execution_start" ? .executionStart(promptID: id) : .executionSuccess(promptID: id)
        case "execution_cached": return try executionCached(&reader)
        case "executed": return try executed(&reader)
        case "execution_error", "execution_node_error":
            let fields = try Fields(
                &reader, strings: ["prompt_id", "node_id", "node_type", "exception_type", "exception_message"])
            let failure = ExecutionFailure(
                nodeID: fields["node_id"], classType: fields["node_type"],
                exceptionType: fields["exception_type"] ?? "", message: fields["exception_message"] ?? "")
            let id = try fields.require("prompt_id", type)
            return type == "execution_error" ? .executionError(promptID: id, failure: failure) : .executionNodeError(promptID: id, failure: failure)
        case "execution_interrupted":
            let fields = try Fields(&reader, strings: ["prompt_id", "node_id", "node_type"])
            return .executionInterrupted(
                promptID: try fields.require("prompt_id", type), nodeID: fields["node_id"],
                classType: fields["node_type"])
        default:
            try reader.skipValue()
            return .unknown(type: type)
        }
    }

    /// The string (or numeric id) members named in `strings`; everything else skipped.
    private struct Fields {
        var values: [String: String] = [:]

        init(_ reader: inout JSONReader, strings: Set<String>) throws {
            guard try reader.peek() == UInt8(ascii: "{") else {
                try reader.skipValue()
                return
            }
            try reader.beginObject()
            var first = true
            while let key = try reader.nextKey(first: &first) {
                let name = try JSONReader.string(reader.bytes, key)
                if strings.contains(name), let value = try readID(&reader) {
                    values[name] = value
                } else {
                    try reader.skipValue()
                }
            }
        }

        subscript(name: String) -> String? { values[name] }

        func require(_ name: String, _ type: String) throws -> String {
            guard let value = values[name] else { throw EventDecodingError.missingField(type: type, field: name) }
            return value
        }
    }

    /// A string, a number written as an id, or nil for null and other kinds (skipped).
    private static func readID(_ reader: inout JSONReader) throws -> String? {
        switch try reader.peek() {
        case UInt8(ascii: "\""): return try reader.readString()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let range = try reader.readNumberRange()
            return String(decoding: UnsafeBufferPointer(rebasing: reader.bytes[range]), as: UTF8.self)
        default:
            try reader.skipValue()
            return nil
        }
    }

    private static func readNumber(_ reader: inout JSONReader) throws -> Double? {
        switch try reader.peek() {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try reader.readDouble()
        default:
            try reader.skipValue()
            return nil
        }
    }

    /// Decodes a `progress_state`. With the previous message of the same prompt in `memory`, the
    /// entries whose bytes are unchanged since then are skipped (ComfyUI resends the whole growing
    /// map on every change, about n² entries for n nodes): only entries that changed are returned.
    private static func progressState(
        _ reader: inout JSONReader, memory: inout ProgressStateMemory?
    ) throws -> ServerEvent {
        var promptID: String?
        var nodes: [NodeProgress] = []
        var remembered: ProgressStateMemory?
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "prompt_id") {
                promptID = try readID(&reader)
            } else if reader.key(key, is: "nodes"), try reader.peek() == UInt8(ascii: "{") {
                try reader.beginObject()
                let nodesStart = reader.index
                var starts: [Int] = []
                var firstNode = true
                if let previous = memory, let promptID, previous.promptID == promptID,
                    previous.nodesStart == nodesStart
                {
                    let common = ProgressStateMemory.commonPrefix(reader.bytes, previous.bytes)
                    if common > nodesStart {
                        let skipped = previous.unchangedEntries(within: common)
                        starts = Array(previous.entryStarts[..<skipped])
                        reader.index = previous.entryStarts[skipped]
                        firstNode = skipped == 0
                    }
                }
                while true {
                    starts.append(reader.index)
                    guard let nodeKey = try reader.nextKey(first: &firstNode) else { break }
                    let id = try JSONReader.string(reader.bytes, nodeKey)
                    if let entry = try nodeProgress(id: id, &reader) { nodes.append(entry) }
                }
                if let promptID {
                    remembered = ProgressStateMemory(
                        bytes: Array(reader.bytes), promptID: promptID, nodesStart: nodesStart, entryStarts: starts)
                }
            } else {
                try reader.skipValue()
            }
        }
        guard let promptID else { throw EventDecodingError.missingField(type: "progress_state", field: "prompt_id") }
        memory = remembered
        return .progressState(promptID: promptID, nodes: nodes)
    }

    private static func nodeProgress(id: String, _ reader: inout JSONReader) throws -> NodeProgress? {
        guard try reader.peek() == UInt8(ascii: "{") else {
            try reader.skipValue()
            return nil
        }
        var entry = NodeProgress(nodeID: id, value: 0, max: 1, state: .unknown)
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "value") {
                entry.value = try readNumber(&reader) ?? 0
            } else if reader.key(key, is: "max") {
                entry.max = try readNumber(&reader) ?? 1
            } else if reader.key(key, is: "state"), try reader.peek() == UInt8(ascii: "\"") {
                let state = try reader.rawStringRange()
                entry.state =
                    reader.key(state, is: "running") ? .running
                    : reader.key(state, is: "finished") ? .finished
                    : reader.key(state, is: "pending") ? .pending
                    : reader.key(state, is: "error") ? .error : .unknown
            } else if reader.key(key, is: "display_node_id") {
                entry.displayNodeID = try readID(&reader)
            } else if reader.key(key, is: "real_node_id") {
                entry.realNodeID = try readID(&reader)
            } else {
                try reader.skipValue()  // node_id (= the key), prompt_id, parent_node_id, future fields
            }
        }
        return entry
    }

    private static func progress(_ reader: inout JSONReader) throws -> ServerEvent {
        var promptID: String?
        var node: String?
        var value: Double?
        var max: Double?
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "value") {
                value = try readNumber(&reader)
            } else if reader.key(key, is: "max") {
                max = try readNumber(&reader)
            } else if reader.key(key, is: "prompt_id") {
                promptID = try readID(&reader)
            } else if reader.key(key, is: "node") {
                node = try readID(&reader)
            } else {
                try reader.skipValue()
            }
        }
        guard let value else { throw EventDecodingError.missingField(type: "progress", field: "value") }
        guard let max else { throw EventDecodingError.missingField(type: "progress", field: "max") }
        return .progress(promptID: promptID, node: node, value: value, max: max)
    }

    private static func executing(_ reader: inout JSONReader) throws -> ServerEvent {
        var promptID: String?
        var node: String?
        var displayNode: String?
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "node") {
                node = try readID(&reader)
            } else if reader.key(key, is: "display_node") {
                displayNode = try readID(&reader)
            } else if reader.key(key, is: "prompt_id") {
                promptID = try readID(&reader)
            } else {
                try reader.skipValue()
            }
        }
        return .executing(promptID: promptID, node: node, displayNode: displayNode)
    }

    private static func status(_ reader: inout JSONReader) throws -> ServerEvent {
        var sid: String?
        var remaining: Int?
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "sid") {
                sid = try readID(&reader)
            } else if reader.key(key, is: "status"), case .object(let status) = try reader.readValue() {
                remaining = status["exec_info"]?["queue_remaining"]?.numberValue?.int
            } else {
                try reader.skipValue()
            }
        }
        return .status(queueRemaining: remaining, sid: sid)
    }

    private static func executionCached(_ reader: inout JSONReader) throws -> ServerEvent {
        var promptID: String?
        var nodes: [String] = []
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "prompt_id") {
                promptID = try readID(&reader)
            } else if reader.key(key, is: "nodes"), try reader.peek() == UInt8(ascii: "[") {
                try reader.beginArray()
                var firstNode = true
                while try reader.nextElement(first: &firstNode) {
                    if let id = try readID(&reader) { nodes.append(id) }
                }
            } else {
                try reader.skipValue()
            }
        }
        guard let promptID else { throw EventDecodingError.missingField(type: "execution_cached", field: "prompt_id") }
        return .executionCached(promptID: promptID, nodes: nodes)
    }

    private static func executed(_ reader: inout JSONReader) throws -> ServerEvent {
        var promptID: String?
        var node: String?
        var outputs: [OutputFile] = []
        try reader.beginObject()
        var first = true
        while let key = try reader.nextKey(first: &first) {
            if reader.key(key, is: "prompt_id") {
                promptID = try readID(&reader)
            } else if reader.key(key, is: "node") {
                node = try readID(&reader)
            } else if reader.key(key, is: "output") {
                outputs = outputFiles(in: try reader.readValue())
            } else {
                try reader.skipValue()
            }
        }
        guard let promptID else { throw EventDecodingError.missingField(type: "executed", field: "prompt_id") }
        guard let node else { throw EventDecodingError.missingField(type: "executed", field: "node") }
        return .executed(promptID: promptID, node: node, outputs: outputs)
    }

    /// Every `{filename, subfolder, type}` object in a node's UI output (`images`, `gifs`, `audio`, …).
    public static func outputFiles(in output: JSONValue) -> [OutputFile] {
        guard let object = output.objectValue else { return [] }
        var files: [OutputFile] = []
        for (_, value) in object {
            for element in value.arrayValue ?? [] {
                guard let filename = element["filename"]?.stringValue else { continue }
                files.append(
                    OutputFile(
                        filename: filename, subfolder: element["subfolder"]?.stringValue ?? "",
                        type: element["type"]?.stringValue ?? "output", media: element["metadata"].flatMap(OutputFile.Media.init(json:))))
            }
        }
        return files
    }
}
