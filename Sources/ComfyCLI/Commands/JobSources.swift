import ComfyCore
import Foundation
import InputFiles
import QueueStore

/// What a command line gives for jobs: files, each a job file, a workflow (API or UI format) or
/// a picture, video or sound ComfyUI saved with its workflow in it; and sweep options, which make
/// a workflow a job and override a job file's fields. Each file becomes a job document, as a
/// job file would be written, so one loader checks them all the same way.
struct JobSources {
    static let options: [OptionSpec] = [
        .value("name", name: "name", help: "The job's name (default: the file's name)."),
        .value("seeds", name: "N|A..B|random:N", help: "Seeds to sweep: N (1 to N), A..B, or random:N (drawn once, when added)."),
        .value("set", name: "addr=value", completion: .addresses, help: "Fix an input: KSampler.steps=30, \"Positive prompt.text=a fox\" (see comfyq inspect).", repeatable: true),
        .value(
            "matrix", name: "addr=v1,v2,…", completion: .addresses,
            help: "Sweep an input over values, every combination with the other --matrix: KSampler.cfg=5,7,9,\nor a JSON list, or @prompts.txt (lines), @photos/*.png (files), @shots.csv:column.",
            repeatable: true),
        .value("zip", name: "addr=v1,v2,…", completion: .addresses, help: "Like --matrix, but the --zip lists advance together (same length).", repeatable: true),
        .value("repeat", name: "n", help: "Run each combination n times."),
        .value("priority", name: "n", help: "Higher runs first (default 0)."),
        .value("output", name: "dir", help: "The folder outputs go to (default outputs/NAME)."),
        .value("name-template", name: "template", help: "Output file names, e.g. {job}_{index}_{seed} (default {job}_{index})."),
        .flag("print-job", help: "Print the job file these give (JSON5) instead of queueing anything."),
    ]

    /// `add`'s and `run`'s: a follow-up of chosen items of an earlier job.
    static let followUpOptions: [OptionSpec] = [
        .value("from", name: "job", completion: .jobs, help: "Follow up items of this job: one item each, with its parameters (and {from.output}: its picture)."),
        .flag("starred", help: "With --from: its starred items."),
        .value("items", name: "i,j,…", help: "With --from: these items (indices)."),
    ]

    /// `--from JOB`: the job whose items this follows up, and which.
    var from: (job: String, starred: Bool, items: [Int]?)?
    /// Filled from the queue (`resolveFollowUp`): the chosen items with their parameters and outputs.
    var followUp: (job: String, sources: [FollowUp.Source])?

    var name: String?
    var seeds: JSONValue?
    var set: [(String, JSONValue)] = []
    var matrix: [(String, JSONValue)] = []
    var zip: [(String, JSONValue)] = []
    var repeatCount: Int?
    var priority: Int?
    var output: String?
    var nameTemplate: String?
    /// Where relative paths on the command line start.
    var workingDirectory: String

    var isEmpty: Bool {
        name == nil && seeds == nil && set.isEmpty && matrix.isEmpty && zip.isEmpty && repeatCount == nil && priority == nil && output == nil
            && nameTemplate == nil
    }

    init(workingDirectory: String = FileManager.default.currentDirectoryPath) { self.workingDirectory = workingDirectory }

    init(_ arguments: ParsedArguments, command: CommandSpec) throws {
        self.init()
        name = arguments.value("name")
        if let text = arguments.value("seeds") { seeds = try Self.seeds(text, command: command) }
        set = try arguments.values("set").map { try assignment($0, option: "set", sweep: false, command: command) }
        matrix = try arguments.values("matrix").map { try assignment($0, option: "matrix", sweep: true, command: command) }
        zip = try arguments.values("zip").map { try assignment($0, option: "zip", sweep: true, command: command) }
        func whole(_ option: String, minimum: Int) throws -> Int? {
            guard let text = arguments.value(option) else { return nil }
            guard let number = Int(text), number >= minimum else {
                throw UsageError("--\(option) takes a whole number\(minimum > Int.min ? " of at least \(minimum)" : ""), got '\(text)'", command: command)
            }
            return number
        }
        repeatCount = try whole("repeat", minimum: 1)
        priority = try whole("priority", minimum: Int.min)
        output = arguments.value("output").map(absolute)
        nameTemplate = arguments.value("name-template")
        if (!isEmpty || arguments.flag("print-job")) && arguments.positionals.isEmpty {
            throw UsageError("the job options (--seeds, --set, --matrix, --print-job…) need a job file, a workflow or a picture", command: command)
        }
        if let job = arguments.value("from") {
            var items: [Int]?
            if let text = arguments.value("items") {
                let parts = text.split(separator: ",", omittingEmptySubsequences: false)
                items = parts.compactMap { Int($0) }
                guard items?.count == parts.count, items?.allSatisfy({ $0 >= 0 }) == true, !parts.isEmpty else {
                    throw UsageError("--items takes item indices such as 3,7,12, got '\(text)'", command: command)
                }
            }
            guard arguments.flag("starred") != (items != nil) else {
                throw UsageError("--from takes --starred or --items (one of them)", command: command)
            }
            guard !arguments.positionals.isEmpty else { throw UsageError("--from needs the follow-up's job file or workflow", command: command) }
            from = (job, arguments.flag("starred"), items)
        } else if arguments.flag("starred") || arguments.value("items") != nil {
            throw UsageError("--starred and --items choose items of the job given with --from", command: command)
        }
        if name != nil && arguments.positionals.count > 1 {
            throw UsageError("--name names one job; \(arguments.positionals.count) files were given", command: command)
        }
    }

    // MARK: Values as written

    /// `N` (seeds 1…N), `A..B`, `random:N`.
    static func seeds(_ text: String, command: CommandSpec) throws -> JSONValue {
        let wrong = UsageError("--seeds takes N, A..B or random:N (N at least 1), got '\(text)'", command: command)
        if text.hasPrefix("random:") {
            guard let count = Int(text.dropFirst(7)), count >= 1 else { throw wrong }
            return ["random": .int(count)]
        }
        if let range = text.range(of: "..") {
            guard let first = Int(text[..<range.lowerBound]), let last = Int(text[range.upperBound...]), last >= first, first >= 0 else { throw wrong }
            return ["start": .int(first), "count": .int(last - first + 1)]
        }
        guard let count = Int(text), count >= 1 else { throw wrong }
        return ["start": .int(1), "count": .int(count)]
    }

    /// `ADDR=VALUE`: the address and the value as a job file would hold it.
    func assignment(_ text: String, option: String, sweep: Bool, command: CommandSpec) throws -> (String, JSONValue) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw UsageError("--\(option) takes ADDRESS=VALUE (such as KSampler.steps=30), got '\(text)'", command: command)
        }
        let address = String(text[..<equals])
        let written = String(text[text.index(after: equals)...])
        if written.hasPrefix("@") { return (address, source(String(written.dropFirst()), single: !sweep)) }
        guard sweep else { return (address, Self.scalar(written)) }
        if written.hasPrefix("[") {
            do {
                let list = try JSONValue(parsingJSON5: written)
                guard list.arrayValue != nil else { throw UsageError("", command: command) }
                return (address, list)
            } catch {
                throw UsageError("--\(option) \(address): '\(written)' is not a JSON list", command: command)
            }
        }
        return (address, .array(written.split(separator: ",", omittingEmptySubsequences: false).map { Self.scalar(String($0)) }))
    }

    /// A number, boolean or JSON string when the text parses as one, otherwise the text as
    /// written (`30` → 30, `true` → true, `"007"` → "007", `a fox` → "a fox").
    static func scalar(_ text: String) -> JSONValue {
        let parsed: JSONValue
        do { parsed = try JSONValue(parsing: Array(text.utf8)) } catch { return .string(text) }
        switch parsed {
        case .number, .bool, .string: return parsed
        default: return .string(text)
        }
    }

    /// `@…` as a job file's source: `@shots.csv:column`, `@photos/*.png` (files), `@prompts.txt`
    /// (lines), or one file (`{file: …}` for --set, its list of one for a sweep).
    func source(_ text: String, single: Bool) -> JSONValue {
        if let colon = text.range(of: ".csv:") {
            let file = String(text[..<colon.lowerBound]) + ".csv"
            return ["csv": .string(absolute(file)), "column": .string(String(text[colon.upperBound...]))]
        }
        let path = absolute(text)
        if text.contains(where: { "*?[".contains($0) }) { return ["files": .string(path)] }
        let ext = (text as NSString).pathExtension.lowercased()
        if ["txt", "text", "lst", "list", "prompts", "md"].contains(ext) { return ["lines": .string(path)] }
        return single ? ["file": .string(path)] : ["files": .array([.string(path)])]
    }

    func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? expanded : workingDirectory + "/" + expanded
    }

    // MARK: Documents

    /// The job document for a file given on the command line (nil: a Lua job, read as one), or
    /// the problem with it.
    static func document(for path: String, workingDirectory: String) -> Result<JSONObject, JobValidationError> {
        func problem(_ reason: String, at location: String = "") -> Result<JSONObject, JobValidationError> {
            .failure(JobValidationError(problems: [JobProblem(file: path, location: location, reason: reason)]))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return problem(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        let bytes = [UInt8](data)
        let absolutePath = path.hasPrefix("/") ? path : workingDirectory + "/" + path
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        // A workflow (saved in a picture, or on its own) becomes a job of its own.
        let workflowJob: JSONObject = [
            "name": .string(name), "workflow": .string(JobLoader.normalized(absolutePath)),
            "output": ["folder": .string(JobLoader.normalized(workingDirectory + "/outputs/" + name))],
        ]
        do {
            if let embedded = try MediaMetadata.read(bytes) {
                guard embedded.prompt != nil || embedded.workflow != nil else {
                    return problem(
                        "a \(embedded.format) file without a workflow (no \"prompt\" or \"workflow\" in it): not saved by ComfyUI, or saved with --disable-metadata")
                }
                return .success(workflowJob)
            }
        } catch {
            return problem("\(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return problem("not a job file, a workflow, or a picture or sound ComfyUI saved with its workflow (PNG, WebP, FLAC)")
        }
        let json: JSONValue
        do { json = try JobValidationError.parseJSON5(text, path: path) } catch { return .failure(error) }
        guard let object = json.objectValue else { return problem("a job file or a workflow must be a JSON object, not \(json.kindName)") }
        if object["workflow"] != nil { return .success(object) }
        if UIWorkflow.isUIFormat(json) { return .success(workflowJob) }
        if !object.isEmpty, object.allSatisfy({ $0.1["class_type"] != nil }) { return .success(workflowJob) }
        if object.keys.contains(where: JobLoader.fields.contains) { return .success(object) }  // a job missing its workflow: the loader says so
        let keys = object.keys.prefix(8).map { JSONValue.string($0).serialized() }.joined(separator: ", ") + (object.keys.count > 8 ? ", …" : "")
        return problem(
            "neither a job file (no \"workflow\" field) nor a workflow (no node with \"class_type\", no \"nodes\"); its keys: \(keys.isEmpty ? "none" : keys)")
    }

    /// The document with the command line's sweeps applied: `--set`, `--matrix` and `--zip`
    /// entries replace the file's for the same address as written, the others replace the
    /// file's fields.
    func applied(to document: JSONObject) -> JSONObject {
        var document = document
        if let name { document["name"] = .string(name) }
        if let seeds { document["seeds"] = seeds }
        for (field, entries) in [("set", set), ("matrix", matrix), ("zip", zip)] where !entries.isEmpty {
            var object = document[field]?.objectValue ?? JSONObject()
            for (address, value) in entries { object[address] = value }
            document[field] = .object(object)
        }
        if let repeatCount { document["repeat"] = .int(repeatCount) }
        if let priority { document["priority"] = .int(priority) }
        if output != nil || nameTemplate != nil {
            var object = document["output"]?.objectValue ?? JSONObject()
            if let output { object["folder"] = .string(output) }
            if let nameTemplate { object["name"] = .string(nameTemplate) }
            document["output"] = .object(object)
        }
        return document
    }
}

extension JobSources {
    /// Reads the chosen items of the `--from` job from the queue: their parameters and first
    /// outputs. A job without such items, or an index it does not have, is a clear error.
    mutating func resolveFollowUp(_ queue: Queue) throws {
        guard let from else { return }
        let job: JobSummary
        do { job = try queue.job(named: from.job.hasPrefix("#") ? String(from.job.dropFirst()) : from.job) } catch { throw CommandFailure("--from: \(error)") }
        let indices = try from.items ?? queue.rated(jobID: job.id, .starred)
        guard !indices.isEmpty else {
            throw CommandFailure("--from \(job.name): no item is starred (comfyq star \(job.name)/INDEX, or star them in comfyq serve)")
        }
        var sources: [FollowUp.Source] = []
        for index in indices {
            guard let (row, outputs, _) = try queue.item(jobID: job.id, index: index) else {
                throw CommandFailure("--from \(job.name): no item \(index) (the job has \(job.total), 0 to \(job.total - 1))")
            }
            let parameters: JSONObject
            do { parameters = try JSONValue(parsing: row.parameters).objectValue ?? JSONObject() } catch {
                throw CommandFailure("--from \(job.name)/\(index): its stored parameters cannot be read: \(error)")
            }
            sources.append(FollowUp.Source(index: index, parameters: parameters, output: outputs.first))
        }
        followUp = (job.name, sources)
    }
}
