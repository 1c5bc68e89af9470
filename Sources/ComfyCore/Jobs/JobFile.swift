/// One problem in a job file: the file, where in it, and why. Printed as one line,
/// `jobs/night.json: matrix["KSampler.sede"]: KSampler has no input "sede" (inputs: seed, steps, …)`.
public struct JobProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// A path inside the document, such as `matrix["KSampler.seed"]`, or a line:column.
    public var location: String
    public var reason: String

    public init(file: String, location: String, reason: String) {
        self.file = file
        self.location = location
        self.reason = reason
    }

    public var description: String { location.isEmpty ? "\(file): \(reason)" : "\(file): \(location): \(reason)" }
}

/// All the problems found in one or more job files (reported together, nothing queued).
public struct JobValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [JobProblem]

    public init(problems: [JobProblem]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }

    /// Parses a hand-written JSON5 file (a job, the servers file): a syntax error becomes one
    /// problem naming the file, the line and the column.
    public static func parseJSON5(_ text: String, path: String) throws(JobValidationError) -> JSONValue {
        do {
            return try JSONValue(parsingJSON5: text)
        } catch {
            let (line, column) = error.location(in: text)
            throw JobValidationError(problems: [JobProblem(file: path, location: "line \(line), column \(column)", reason: "\(error)")])
        }
    }
}

/// Where a parameter lives: a node of the graph and one of its inputs.
public struct ParameterAddress: Sendable, Hashable, CustomStringConvertible {
    public var nodeID: String
    public var input: String
    /// As the user wrote it (`KSampler.seed`, `Positive prompt.text`, `6.text`).
    public var written: String

    public init(nodeID: String, input: String, written: String) {
        self.nodeID = nodeID
        self.input = input
        self.written = written
    }

    public var description: String { written }
}

/// A hook script a job names, with its settings (`comfyq.options` in the script).
public struct HookReference: Sendable, Equatable {
    public var path: String
    public var options: JSONObject
    /// The script's text as it was when the job was added, stored with the job so a run on
    /// another machine needs no file (nil in queues written before, and before `add` reads it).
    public var source: String?

    public init(path: String, options: JSONObject = JSONObject(), source: String? = nil) {
        self.path = path
        self.options = options
        self.source = source
    }

    /// As stored with the job: `{"script": path, "options": {…}, "source": "…"}`.
    public var json: JSONValue {
        var object: JSONObject = ["script": .string(path), "options": .object(options)]
        if let source { object["source"] = .string(source) }
        return .object(object)
    }

    /// Reads the stored form (also the plain paths older queues hold).
    public init?(json: JSONValue) {
        if let path = json.stringValue {
            self.init(path: path)
        } else if let path = json["script"]?.stringValue {
            self.init(path: path, options: json["options"]?.objectValue ?? JSONObject(), source: json["source"]?.stringValue)
        } else {
            return nil
        }
    }
}

/// How outputs are named and where they go.
public struct OutputSpec: Sendable, Equatable {
    public var folder: String
    /// Tokens: `{job}`, `{index}`, `{seed}`, `{date}`, `{n}` (the output's number within the
    /// item), and any parameter by its address or its input name.
    public var template: String

    public static let defaultTemplate = "{job}_{index}"

    public init(folder: String, template: String = OutputSpec.defaultTemplate) {
        self.folder = folder
        self.template = template
    }
}

/// A job file read and checked: the graph, what to vary, and how to run it.
public struct JobSpec: Sendable, Equatable {
    public var name: String
    /// The file it came from (for messages).
    public var file: String
    public var workflow: Workflow
    public var fixed: [(address: ParameterAddress, value: JSONValue)]
    /// Cartesian product of these lists.
    public var matrix: [(address: ParameterAddress, values: [JSONValue])]
    /// Lists advanced together (all the same length).
    public var zip: [(address: ParameterAddress, values: [JSONValue])]
    public var seeds: SeedSweep?
    public var repeatCount: Int
    public var priority: Int
    public var output: OutputSpec
    public var servers: [String]
    public var retries: Int
    /// Seconds without any message before a prompt counts as stalled.
    public var stallTimeout: Double
    public var hooks: [HookReference]
    /// `max_defer`: how long an item may be overtaken for model affinity (nil: the run's).
    public var maxDefer: Double? = nil
    /// `order: "strict"`: items go in exactly their order, however that loads models.
    public var strictOrder = false
    /// The UI-format file the graph was converted from, if it was.
    public var uiWorkflow: UIWorkflowRecord? = nil
    /// The items of an earlier job it follows up (`add --from`).
    public var from: FollowUpOrigin? = nil
    /// Follow-ups its page offers for the starred pictures (`followups:`): name → job file.
    public var followups: [(name: String, path: String)] = []
    /// What loading it noticed, to say (`note:` lines).
    public var notes: [String] = []
    /// ComfyUI's page's own workflow (UI format) for a job queued from the page, kept so its
    /// pages can offer it back.
    public var pageWorkflow: JSONValue? = nil

    public static func == (lhs: JobSpec, rhs: JobSpec) -> Bool {
        lhs.name == rhs.name && lhs.file == rhs.file && lhs.workflow == rhs.workflow
            && lhs.fixed.map { "\($0.address)=\($0.value.serialized())" } == rhs.fixed.map { "\($0.address)=\($0.value.serialized())" }
            && lhs.matrix.map { "\($0.address)" } == rhs.matrix.map { "\($0.address)" } && lhs.seeds == rhs.seeds
            && lhs.repeatCount == rhs.repeatCount && lhs.priority == rhs.priority && lhs.output == rhs.output
            && lhs.maxDefer == rhs.maxDefer && lhs.strictOrder == rhs.strictOrder
    }
}

/// Which seeds to sweep, and into which input.
public struct SeedSweep: Sendable, Equatable {
    public var address: ParameterAddress
    public enum Values: Sendable, Equatable {
        case range(start: UInt64, count: Int)
        /// `count` seeds drawn when the job is added (then stored, so retries reuse them).
        case random(count: Int)
    }
    public var values: Values

    public var count: Int {
        switch values {
        case .range(_, let count), .random(let count): count
        }
    }
}

/// One queue item: a complete parameter set.
public struct JobItem: Sendable, Equatable {
    /// 0-based position within the job.
    public var index: Int
    /// Every parameter this item sets, by address, in the order the job declares them.
    public var parameters: [(address: String, value: JSONValue)]
    public var seed: UInt64?

    public static func == (lhs: JobItem, rhs: JobItem) -> Bool {
        lhs.index == rhs.index && lhs.seed == rhs.seed
            && lhs.parameters.map { "\($0.address)=\($0.value.serialized())" } == rhs.parameters.map { "\($0.address)=\($0.value.serialized())" }
    }

    /// The parameters as one JSON object (stored with the item, shown by status, given to hooks).
    public var parametersJSON: JSONValue {
        var object = JSONObject()
        for (address, value) in parameters { object[address] = value }
        return .object(object)
    }
}
