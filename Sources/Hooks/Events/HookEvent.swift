import ComfyCore

/// The hooks a script may define, one global function each (`on_` + the raw value).
public enum HookEventKind: String, Sendable, CaseIterable {
    case batchStart = "batch_start"
    case submit
    case phase
    case progress
    case complete
    case error
    case batchDone = "batch_done"
    case idle
    /// A server's health changed (up, down, restarting, given up…).
    case server
    /// A full disk paused the run.
    case pause
    /// The pause ended.
    case resume

    /// The Lua function that receives it: `on_batch_start`, `on_complete`, …
    public var function: String { "on_" + rawValue }

    /// Never coalesced or dropped when a script falls behind.
    public var isProgress: Bool { self == .progress }
}

/// One event for the scripts: its kind and the table the script receives (API version 1; every
/// field is documented in scripts/README.md). Keys that do not apply are absent (nil in Lua).
public struct HookEvent: Sendable {
    public var kind: HookEventKind
    public var table: JSONObject
    /// The job it concerns (a job's own hooks only see their job's events); nil for batch events.
    public var job: String?
    /// The prompt it concerns (progress coalesces per prompt).
    public var promptID: String?

    public init(kind: HookEventKind, table: JSONObject, job: String? = nil, promptID: String? = nil) {
        self.kind = kind
        self.table = table
        self.job = job
        self.promptID = promptID
    }
}

/// What the runner knows about one prompt, for building its events.
public struct HookPrompt: Sendable {
    public var job: String
    public var item: Int
    public var promptID: String
    public var server: String
    /// The item's parameters by address (`{"KSampler.seed": 42}`).
    public var params: JSONValue
    /// 1 for the first attempt.
    public var attempt: Int
    /// The latest preview of the image being sampled, as a file (when the server sends previews).
    public var preview: String?

    public init(job: String, item: Int, promptID: String, server: String, params: JSONValue, attempt: Int, preview: String? = nil) {
        self.job = job
        self.item = item
        self.promptID = promptID
        self.server = server
        self.params = params
        self.attempt = attempt
        self.preview = preview
    }
}

/// A failure as hooks see it.
public struct HookFailure: Sendable, Equatable {
    public var message: String
    public var node: String?
    public var classType: String?
    public var exceptionType: String?

    public init(message: String, node: String? = nil, classType: String? = nil, exceptionType: String? = nil) {
        self.message = message
        self.node = node
        self.classType = classType
        self.exceptionType = exceptionType
    }

    public init(_ failure: ExecutionFailure) {
        self.init(message: failure.description, node: failure.nodeID, classType: failure.classType, exceptionType: failure.exceptionType)
    }

    var table: JSONValue {
        var object: JSONObject = ["message": .string(message)]
        if let node { object["node"] = .string(node) }
        if let classType { object["class_type"] = .string(classType) }
        if let exceptionType, !exceptionType.isEmpty { object["exception_type"] = .string(exceptionType) }
        return .object(object)
    }
}

extension HookEvent {
    /// A prompt event (`submit`, `phase`, `progress`, `complete`, `error`).
    public static func prompt(
        _ kind: HookEventKind, _ prompt: HookPrompt, snapshot: ProgressSnapshot? = nil, previous: Phase? = nil, elapsed: Double,
        outputs: [String]? = nil, thumbnails: [String]? = nil, failure: HookFailure? = nil, willRetry: Bool? = nil, timings: [String: Double]? = nil
    ) -> HookEvent {
        // Each key once, appended (no lookups): this runs for every event a script takes.
        var table = JSONObject()
        table.append("event", .string(kind.rawValue))
        table.append("job", .string(prompt.job))
        table.append("item", .int(prompt.item))
        table.append("prompt_id", .string(prompt.promptID))
        table.append("server", .string(prompt.server))
        table.append("params", prompt.params)
        table.append("attempt", .int(prompt.attempt))
        if let preview = prompt.preview { table.append("preview", .string(preview)) }
        table.append("elapsed", .double(rounded(elapsed)))
        if let snapshot {
            table.append("phase", .string(snapshot.phase.rawValue))
            if let node = snapshot.node {
                var object = JSONObject()
                object.append("id", .string(node.id))
                if let classType = node.classType { object.append("class_type", .string(classType)) }
                if let title = node.title { object.append("title", .string(title)) }
                table.append("node", .object(object))
            }
            table.append("sampler", .int(snapshot.sampler))
            table.append("samplers", .int(snapshot.samplers))
            table.append("step", .int(snapshot.step))
            table.append("steps", .int(snapshot.steps))
            table.append("fraction", .double(rounded(snapshot.fraction)))
        } else if kind == .submit {
            table.append("phase", "queued")
            table.append("fraction", .int(0))
        }
        if let previous { table.append("previous_phase", .string(previous.rawValue)) }
        if let outputs { table.append("outputs", .array(outputs.map { .string($0) })) }
        if let thumbnails { table.append("thumbnails", .array(thumbnails.map { .string($0) })) }
        if let failure { table.append("error", failure.table) }
        if let willRetry { table.append("will_retry", .bool(willRetry)) }
        if let timings {
            var object = JSONObject()
            for (phase, seconds) in timings.sorted(by: { $0.key < $1.key }) { object.append(phase, .double(rounded(seconds))) }
            table.append("timings", .object(object))
        }
        return HookEvent(kind: kind, table: table, job: prompt.job, promptID: prompt.promptID)
    }

    /// A batch event (`batch_start`, `batch_done`, `idle`) with whatever the runner reports.
    public static func batch(_ kind: HookEventKind, _ fields: JSONObject) -> HookEvent {
        var table: JSONObject = ["event": .string(kind.rawValue)]
        for (key, value) in fields { table[key] = value }
        return HookEvent(kind: kind, table: table)
    }

    /// `on_server`: a server's health changed. `logTail` only for supervised servers.
    public static func server(
        name: String, url: String, state: String, previousState: String, reason: String, restarts: Int, downFor: Double?, logTail: [String]?
    ) -> HookEvent {
        var table = JSONObject()
        table.append("event", "server")
        table.append("server", .string(name))
        table.append("url", .string(url))
        table.append("state", .string(state))
        table.append("previous_state", .string(previousState))
        table.append("reason", .string(reason))
        table.append("restarts", .int(restarts))
        if let downFor { table.append("down_for", .double(rounded(downFor))) }
        if let logTail { table.append("log_tail", .array(logTail.map { .string($0) })) }
        return HookEvent(kind: .server, table: table)
    }

    public static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

/// What `on_submit` decided for one item.
public struct SubmitDecision: Sendable, Equatable {
    /// The parameters to submit (the item's own with every override applied).
    public var params: JSONValue
    /// Each script's overrides, in the order they were applied (recorded in the sidecar).
    public var overrides: [Override]
    /// The script that skipped the item (returned false).
    public var skippedBy: String?

    public struct Override: Sendable, Equatable {
        public var script: String
        public var values: JSONObject
    }

    public init(params: JSONValue, overrides: [Override] = [], skippedBy: String? = nil) {
        self.params = params
        self.overrides = overrides
        self.skippedBy = skippedBy
    }

    /// `[{"script": "random-seed.lua", "overrides": {...}}]`, for the sidecar.
    public var record: JSONValue {
        .array(overrides.map { ["script": .string($0.script), "overrides": .object($0.values)] })
    }
}
