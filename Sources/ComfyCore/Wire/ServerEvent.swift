/// A node's state inside a `progress_state` message.
public enum NodeState: UInt8, Sendable, Equatable {
    case pending, running, finished, error, unknown
}

/// One entry of a `progress_state` map.
public struct NodeProgress: Sendable, Equatable {
    /// The unique id (may be an ephemeral id made by node expansion).
    public var nodeID: String
    /// The id to show; for expanded nodes it names a node of the submitted graph.
    public var displayNodeID: String?
    /// The original graph node behind an expanded one.
    public var realNodeID: String?
    public var value: Double
    public var max: Double
    public var state: NodeState

    public init(
        nodeID: String, displayNodeID: String? = nil, realNodeID: String? = nil, value: Double, max: Double,
        state: NodeState
    ) {
        self.nodeID = nodeID
        self.displayNodeID = displayNodeID
        self.realNodeID = realNodeID
        self.value = value
        self.max = max
        self.state = state
    }
}

/// A file a node produced (`executed.output.images[*]` and the like).
public struct OutputFile: Sendable, Equatable, Hashable {
    public var filename: String
    public var subfolder: String
    /// `output`, `temp` or `input`.
    public var type: String
    /// What ComfyUI 0.38 says of the file (`metadata` on the output entry); nil from older servers.
    public var media: Media?

    public init(filename: String, subfolder: String = "", type: String = "output", media: Media? = nil) {
        self.filename = filename
        self.subfolder = subfolder
        self.type = type
        self.media = media
    }

    /// An output entry's `metadata`: `{kind, width, height[, duration, fps, frame_count]}`.
    public struct Media: Sendable, Equatable, Hashable {
        public var kind: String?
        public var width: Int?
        public var height: Int?
        /// Seconds (video, audio).
        public var duration: Double?
        public var fps: Double?
        public var frameCount: Int?

        public init(kind: String? = nil, width: Int? = nil, height: Int? = nil, duration: Double? = nil, fps: Double? = nil, frameCount: Int? = nil) {
            self.kind = kind
            self.width = width
            self.height = height
            self.duration = duration
            self.fps = fps
            self.frameCount = frameCount
        }

        /// Reads `metadata`; nil when it is not an object or says nothing known.
        public init?(json: JSONValue) {
            guard let object = json.objectValue else { return nil }
            self.init(
                kind: object["kind"]?.stringValue, width: object["width"]?.numberValue?.int, height: object["height"]?.numberValue?.int,
                duration: object["duration"]?.numberValue?.double, fps: object["fps"]?.numberValue?.double,
                frameCount: object["frame_count"]?.numberValue?.int)
            if self == Media() { return nil }
        }

        /// As the sidecar records it (only what is known).
        public var json: JSONValue {
            var object = JSONObject()
            if let kind { object["kind"] = .string(kind) }
            if let width { object["width"] = .int(width) }
            if let height { object["height"] = .int(height) }
            if let duration { object["duration"] = .double(duration) }
            if let fps { object["fps"] = .double(fps) }
            if let frameCount { object["frame_count"] = .int(frameCount) }
            return .object(object)
        }
    }
}

/// What ComfyUI said about a node that raised.
public struct ExecutionFailure: Sendable, Equatable, Error, CustomStringConvertible {
    /// Nodes that failed while the prompt went on (partial execution), as one failure: the
    /// first's node, type and message, and how many more. The item fails: it succeeds only when
    /// every output node produced its outputs.
    public static func partial(_ failures: [ExecutionFailure]) -> ExecutionFailure {
        var first = failures[0]
        first.message += failures.count > 1 ? " (and \(failures.count - 1) more node\(failures.count == 2 ? "" : "s") failed; the other outputs were made)" : " (the other outputs were made)"
        return first
    }

    public var nodeID: String?
    public var classType: String?
    public var exceptionType: String
    public var message: String

    public init(nodeID: String?, classType: String?, exceptionType: String, message: String) {
        self.nodeID = nodeID
        self.classType = classType
        self.exceptionType = exceptionType
        self.message = message
    }

    /// One line: `node 12 (FakeSampler): RuntimeError: FakeSampler failed on purpose at step 3`.
    public var description: String {
        var line = ""
        if let nodeID { line += "node \(nodeID)" }
        if let classType { line += line.isEmpty ? classType : " (\(classType))" }
        if !line.isEmpty { line += ": " }
        let text = message.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        line += exceptionType.isEmpty ? text : "\(exceptionType): \(text)"
        return line
    }
}

/// How a prompt ended according to its `/history` record.
public enum HistoryOutcome: Sendable, Equatable {
    case success(outputs: [OutputFile])
    case failed(ExecutionFailure)
    case interrupted(nodeID: String?, classType: String?)
}

/// A typed message from a ComfyUI server (WebSocket) or a finding from its HTTP API.
public enum ServerEvent: Sendable, Equatable {
    /// `status`: queue length (pending + running); `sid` only on the copy sent at connect.
    case status(queueRemaining: Int?, sid: String?)
    case executionStart(promptID: String)
    case executionCached(promptID: String, nodes: [String])
    /// `executing`: a node started. `promptID` is nil on the copy replayed after a reconnect, and
    /// `node` nil marks the end of the prompt.
    case executing(promptID: String?, node: String?, displayNode: String?)
    case progress(promptID: String?, node: String?, value: Double, max: Double)
    case progressState(promptID: String, nodes: [NodeProgress])
    case executed(promptID: String, node: String, outputs: [OutputFile])
    case executionSuccess(promptID: String)
    /// `execution_error`; `ExecutionBlocked` errors are included here but do not end a prompt.
    case executionError(promptID: String, failure: ExecutionFailure)
    case executionInterrupted(promptID: String, nodeID: String?, classType: String?)
    /// `execution_node_error` (partial execution, ComfyUI PRs #14918/#15325, not merged yet): a
    /// node failed and the prompt goes on with what does not depend on it.
    case executionNodeError(promptID: String, failure: ExecutionFailure)
    /// A `/history/{id}` record with a final status (an empty answer is not an event).
    case history(promptID: String, outcome: HistoryOutcome)
    /// A message type this version does not interpret (custom nodes send anything).
    case unknown(type: String)

    /// The prompt the event names, if any.
    public var promptID: String? {
        switch self {
        case .status, .unknown: nil
        case .executionStart(let id), .executionCached(let id, _), .progressState(let id, _),
            .executed(let id, _, _), .executionSuccess(let id), .executionError(let id, _),
            .executionInterrupted(let id, _, _), .history(let id, _), .executionNodeError(let id, _):
            id
        case .executing(let id, _, _), .progress(let id, _, _, _): id
        }
    }
}

/// A binary WebSocket frame's header (previews and text), with the payload left in place.
public enum BinaryMessage: Sendable, Equatable {
    /// Event 1: a preview image; `imageType` 1 = JPEG, 2 = PNG; `payloadOffset` is where it starts.
    case previewImage(imageType: UInt32, payloadOffset: Int)
    /// Event 3: progress text for a node.
    case text(nodeID: String, text: String)
    /// Event 4: a preview with JSON metadata; the image follows at `payloadOffset`.
    case previewImageWithMetadata(metadata: JSONValue, payloadOffset: Int)
    case unknown(event: UInt32)

    /// Parses a binary frame's header; nil when the frame is too short for its own header.
    public static func parse(_ bytes: [UInt8]) -> BinaryMessage? {
        func u32(_ at: Int) -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            return bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        guard let event = u32(0) else { return nil }
        switch event {
        case 1:
            guard let type = u32(4) else { return nil }
            return .previewImage(imageType: type, payloadOffset: 8)
        case 3, 4:
            guard let length = u32(4), 8 + Int(length) <= bytes.count else { return nil }
            let head = Array(bytes[8..<(8 + Int(length))])
            if event == 3 {
                return .text(
                    nodeID: String(decoding: head, as: UTF8.self),
                    text: String(decoding: bytes[(8 + Int(length))...], as: UTF8.self))
            }
            guard let metadata = try? JSONValue(parsing: head) else { return nil }
            return .previewImageWithMetadata(metadata: metadata, payloadOffset: 8 + Int(length))
        default:
            return .unknown(event: event)
        }
    }
}
