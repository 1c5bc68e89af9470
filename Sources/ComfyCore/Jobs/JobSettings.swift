/// What a job keeps in the queue besides its graph and items: how its outputs are named, how it
/// is retried and timed out, its hooks, how its parameters' addresses resolve, and how it is
/// dispatched. Written once at `add`, read by the runner; the defaults live here and nowhere else.
public struct JobSettings: Sendable, Equatable {
    public var output: OutputSpec
    public var servers: [String]
    public var retries: Int
    /// Seconds without any message before a prompt counts as stalled.
    public var stallTimeout: Double
    public var hooks: [HookReference]
    /// Each parameter as written in the job → the node input it sets.
    public var addresses: [String: ParameterAddress]
    /// How long one of its items may be overtaken for model affinity (nil: the run's `--max-defer`).
    public var maxDefer: Double?
    /// `order: "strict"`: its items go in exactly their order.
    public var strictOrder: Bool
    /// The `matrix` parameters, in the job's order: the grid lays the last across (seeds, `zip`
    /// and `repeat` go down). Empty for a job without a matrix, or one added by an older comfyq.
    public var matrixAxes: [String] = []
    /// The UI-format workflow the graph was converted from at `add` (recorded in sidecars).
    public var uiWorkflow: UIWorkflowRecord?
    /// The items of an earlier job this one follows up (`add --from`).
    public var from: FollowUpOrigin?
    /// Follow-ups its page offers for the starred pictures: name → job file.
    public var followups: [(name: String, path: String)] = []
    /// The page's workflow (UI format) of a job queued from ComfyUI's page.
    public var pageWorkflow: JSONValue?

    public static func == (a: JobSettings, b: JobSettings) -> Bool {
        a.output == b.output && a.servers == b.servers && a.retries == b.retries && a.stallTimeout == b.stallTimeout && a.hooks == b.hooks
            && a.addresses == b.addresses && a.maxDefer == b.maxDefer && a.strictOrder == b.strictOrder && a.matrixAxes == b.matrixAxes
            && a.uiWorkflow == b.uiWorkflow && a.from == b.from && a.pageWorkflow == b.pageWorkflow && a.followups.map { $0.name + "\u{0}" + $0.path } == b.followups.map { $0.name + "\u{0}" + $0.path }
    }

    public static let defaultRetries = 2
    public static let defaultStallTimeout: Double = 600

    public init(
        output: OutputSpec = OutputSpec(folder: "outputs", template: OutputSpec.defaultTemplate), servers: [String] = [],
        retries: Int = JobSettings.defaultRetries, stallTimeout: Double = JobSettings.defaultStallTimeout, hooks: [HookReference] = [],
        addresses: [String: ParameterAddress] = [:], maxDefer: Double? = nil, strictOrder: Bool = false
    ) {
        self.output = output
        self.servers = servers
        self.retries = retries
        self.stallTimeout = stallTimeout
        self.hooks = hooks
        self.addresses = addresses
        self.maxDefer = maxDefer
        self.strictOrder = strictOrder
    }

    /// As stored with the job.
    public var json: JSONValue {
        var object = JSONObject()
        object["output_folder"] = .string(output.folder)
        object["output_template"] = .string(output.template)
        object["servers"] = .array(servers.map { .string($0) })
        object["retries"] = .int(retries)
        object["stall_timeout"] = .double(stallTimeout)
        object["hooks"] = .array(hooks.map(\.json))
        var written = JSONObject()
        for (text, address) in addresses { written[text] = [.string(address.nodeID), .string(address.input)] }
        object["addresses"] = .object(written)
        if let maxDefer { object["max_defer"] = .double(maxDefer) }
        if strictOrder { object["order"] = "strict" }
        if !matrixAxes.isEmpty { object["matrix_axes"] = .array(matrixAxes.map { .string($0) }) }
        if let uiWorkflow { object["ui_workflow"] = uiWorkflow.json }
        if let from { object["from"] = from.json }
        if !followups.isEmpty { object["followups"] = .object(followups.reduce(into: JSONObject()) { $0[$1.name] = .string($1.path) }) }
        if let pageWorkflow { object["page_workflow"] = pageWorkflow }
        return .object(object)
    }

    /// Reads the stored form. Fields a queue written by an older comfyq lacks take their
    /// defaults; a field that is there with the wrong type is an error, not a default.
    public init(json: JSONValue) throws(JobSettingsError) {
        guard let object = json.objectValue else { throw JobSettingsError(field: "", reason: "is not an object") }
        func field<T>(_ key: String, _ read: (JSONValue) -> T?) throws(JobSettingsError) -> T? {
            guard let value = object[key], value != .null else { return nil }
            guard let typed = read(value) else { throw JobSettingsError(field: key, reason: "has the wrong type (\(value.kindName))") }
            return typed
        }
        self.init()
        output.folder = try field("output_folder", \.stringValue) ?? output.folder
        output.template = try field("output_template", \.stringValue) ?? output.template
        servers = try field("servers") { $0.arrayValue?.compactMap(\.stringValue) } ?? []
        retries = try field("retries") { $0.numberValue?.int } ?? Self.defaultRetries
        stallTimeout = try field("stall_timeout") { $0.numberValue?.double } ?? Self.defaultStallTimeout
        hooks = try field("hooks") { $0.arrayValue?.compactMap(HookReference.init(json:)) } ?? []
        maxDefer = try field("max_defer") { $0.numberValue?.double }
        strictOrder = try field("order") { $0.stringValue } == "strict"
        matrixAxes = try field("matrix_axes") { $0.arrayValue?.compactMap(\.stringValue) } ?? []
        uiWorkflow = try field("ui_workflow", UIWorkflowRecord.init(json:))
        from = try field("from", FollowUpOrigin.init(json:))
        pageWorkflow = try field("page_workflow") { $0.objectValue != nil ? $0 : nil }
        followups = try field("followups") { value in value.objectValue.map { $0.compactMap { key, path in path.stringValue.map { (key, $0) } } } } ?? []
        for (written, pair) in try field("addresses", \.objectValue) ?? JSONObject() {
            guard let parts = pair.arrayValue, parts.count == 2, let node = parts[0].stringValue, let input = parts[1].stringValue else {
                throw JobSettingsError(field: "addresses[\"\(written)\"]", reason: "is not a [node, input] pair")
            }
            addresses[written] = ParameterAddress(nodeID: node, input: input, written: written)
        }
    }
}

/// A job's stored settings cannot be read (a queue edited by hand, or damaged).
public struct JobSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public var description: String { field.isEmpty ? "the job's stored settings \(reason)" : "the job's stored setting \(field) \(reason)" }
}

extension JobSpec {
    /// The settings stored with the job.
    public var settings: JobSettings {
        var settings = JobSettings(
            output: output, servers: servers, retries: retries, stallTimeout: stallTimeout, hooks: hooks, addresses: addresses, maxDefer: maxDefer,
            strictOrder: strictOrder)
        settings.matrixAxes = matrix.map(\.address.written)
        settings.uiWorkflow = uiWorkflow
        settings.from = from
        settings.followups = followups
        settings.pageWorkflow = pageWorkflow
        return settings
    }
}
