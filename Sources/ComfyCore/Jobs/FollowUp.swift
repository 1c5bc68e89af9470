/// Where a follow-up job came from: the chosen items of an earlier job (`add --from`). Stored
/// with the job; item `i` of the follow-up came from `items[zip position of i]`.
public struct FollowUpOrigin: Sendable, Equatable {
    public var job: String
    public var items: [Int]

    public init(job: String, items: [Int]) {
        self.job = job
        self.items = items
    }

    public var json: JSONValue { ["job": .string(job), "items": .array(items.map { .int($0) })] }

    public init?(json: JSONValue) {
        guard let job = json["job"]?.stringValue, let items = json["items"]?.arrayValue?.compactMap({ $0.numberValue?.int }) else { return nil }
        self.init(job: job, items: items)
    }
}

/// Makes a job a follow-up of chosen items of an earlier one (`comfyq add FOLLOWUP --from JOB
/// --starred`): one item per chosen item (a `zip` over them), each taking that item's parameters
/// (its seed and every swept value) on top of the follow-up's own `set`; where the follow-up
/// says `{file: "{from.output}"}` (or `"{from.output}"`), the chosen item's picture is the input
/// file. A parameter the follow-up's graph has no input for, or that the follow-up sweeps
/// itself, is left out and said. Pure: the document in, the document out.
public enum FollowUp {
    public struct Source: Sendable, Equatable {
        public var index: Int
        public var parameters: JSONObject
        /// Its first output file (nil: none, so it cannot feed `{from.output}`).
        public var output: String?

        public init(index: Int, parameters: JSONObject, output: String?) {
            self.index = index
            self.parameters = parameters
            self.output = output
        }
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static let outputToken = "{from.output}"

    /// Whether a job value stands for the chosen item's output.
    public static func isOutputPlaceholder(_ value: JSONValue) -> Bool {
        value.stringValue == outputToken || (value["file"]?.stringValue == outputToken && value.objectValue?.count == 1)
    }

    public static func apply(
        to document: JSONObject, job: String, sources: [Source], workflow: Workflow
    ) throws(Failure) -> (document: JSONObject, notes: [String]) {
        guard !sources.isEmpty else { throw Failure(description: "no items of \(job) are chosen") }
        var document = document
        var set = document["set"]?.objectValue ?? JSONObject()
        var zip = document["zip"]?.objectValue ?? JSONObject()
        var notes: [String] = []
        // The follow-up's own sweeps win over the chosen items' values for the same input.
        var swept = Set((document["matrix"]?.objectValue?.keys ?? []) + zip.keys)
        if let seedInput = document["seeds"]?["input"]?.stringValue { swept.insert(seedInput) }
        let resolver = AddressResolver(workflow: workflow)
        func target(_ written: String) -> String? {
            guard case .success(let address) = resolver.resolve(written) else { return nil }
            return address.nodeID + "\u{0}" + address.input
        }
        let sweptInputs = Set(swept.compactMap(target))
        if document["seeds"] != nil, document["seeds"]?["input"] == nil, case .success(let seed) = resolver.seedInput() {
            swept.insert(seed.written)
        }
        let seedTarget = document["seeds"] != nil ? (document["seeds"]?["input"]?.stringValue.flatMap(target) ?? {
            if case .success(let seed) = resolver.seedInput() { return seed.nodeID + "\u{0}" + seed.input }
            return nil
        }()) : nil

        // The chosen items' pictures, where the follow-up takes them.
        for (key, value) in set where isOutputPlaceholder(value) {
            var files: [JSONValue] = []
            for source in sources {
                guard let output = source.output else { throw Failure(description: "\(job)/\(source.index) has no output to feed \(key)") }
                files.append(["file": .string(output)])
            }
            set[key] = nil
            zip[key] = .array(files)
        }

        // Their parameters, in the order the first item has them.
        var keys: [String] = []
        for source in sources { for key in source.parameters.keys where !keys.contains(key) { keys.append(key) } }
        for key in keys {
            let values = sources.map { $0.parameters[key] }
            guard let input = target(key) else {
                notes.append("\(key) is not carried: the follow-up's graph has no such input")
                continue
            }
            guard !sweptInputs.contains(input), input != seedTarget else {
                notes.append("\(key) is not carried: the follow-up sweeps it itself")
                continue
            }
            guard values.allSatisfy({ $0 != nil }) else {
                notes.append("\(key) is not carried: not every chosen item has it")
                continue
            }
            guard !values.contains(where: { $0?.objectValue != nil }) else {
                notes.append("\(key) is not carried: input files are given in the follow-up (\(outputToken) for the picture)")
                continue
            }
            // It replaces the follow-up's own value for the same input, however that is written.
            for (written, _) in set where target(written) == input { set[written] = nil }
            zip[key] = .array(values.map { $0! })
        }
        document["set"] = set.isEmpty ? nil : .object(set)
        document["zip"] = zip.isEmpty ? nil : .object(zip)
        document["from"] = FollowUpOrigin(job: job, items: sources.map(\.index)).json
        return (document, notes)
    }
}
