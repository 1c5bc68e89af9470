/// Reads and checks job files. Pure: files are read through the closures it is given, so every
/// problem in a file is found and reported together before anything is queued.
public struct JobLoader {
    /// Reads a file (a workflow next to the job file); throws with a reason when it cannot.
    public var readFile: (String) throws -> String
    /// Whether a file exists (hook scripts).
    public var fileExists: (String) -> Bool
    /// The file system behind input files (`{file: …}`, `{files: …}`, `{lines: …}`, `{csv: …}`);
    /// without one, such values are an error.
    public var files: FileAccess?
    /// Which inputs take uploaded files.
    public var uploads: UploadInputs
    /// Where a relative job path starts: paths stored with the job (outputs, hooks, input
    /// files) are made absolute with it, so a later `comfyq run` from elsewhere finds them.
    public var workingDirectory: String?
    /// Node definitions for UI-format workflows (a server's, or a cached `/object_info`); a job's
    /// own `object_info: FILE` wins. Without either, a UI-format workflow is an error that says so.
    public var nodeDefinitions: NodeDefinitionsSource?
    /// The date `%date:…%` file-name tokens of a UI-format workflow stand for.
    public var now = DateParts()
    /// Picks one of n choices of a dynamic prompt (`{a|b}`) in a UI-format workflow.
    public var choose: (Int) -> Int = { Int.random(in: 0..<$0) }
    /// SHA-1 (hex) of a UI-format workflow's bytes, for the record kept with the job.
    public var digest: (([UInt8]) -> String)?
    /// The workflow saved in a picture, video or sound file (nil: not such a file), so a job's
    /// `workflow` may name what ComfyUI saved; without it, such files are read as text.
    public var readEmbedded: ((String) throws -> EmbeddedWorkflow?)?

    public init(
        readFile: @escaping (String) throws -> String, fileExists: @escaping (String) -> Bool, files: FileAccess? = nil,
        uploads: UploadInputs = .builtIn, workingDirectory: String? = nil
    ) {
        self.workingDirectory = workingDirectory
        self.readFile = readFile
        self.fileExists = fileExists
        self.files = files
        self.uploads = uploads
    }

    public static let fields = [
        "name", "workflow", "set", "matrix", "zip", "seeds", "repeat", "priority", "output", "servers", "retries", "timeouts", "hooks",
        "max_defer", "order", "object_info", "from", "followups",
    ]
    /// The largest job one file may expand to.
    public static let maximumItems = 1_000_000

    /// Parses and validates `text`, the contents of the job file at `path`.
    public func load(text: String, path: String) throws(JobValidationError) -> JobSpec {
        let document = try JobValidationError.parseJSON5(text, path: path)
        return try load(document: document, path: path)
    }

    /// Validates a job already parsed (a Lua job file's returned table) from the file at `path`.
    public func load(document: JSONValue, path: String) throws(JobValidationError) -> JobSpec {
        var problems: [JobProblem] = []
        func problem(_ location: String, _ reason: String) { problems.append(JobProblem(file: path, location: location, reason: reason)) }
        let absolute = path.hasPrefix("/") || workingDirectory == nil ? path : workingDirectory! + "/" + path
        let directory = Self.directory(of: Self.normalized(absolute))
        guard let object = document.objectValue else {
            let kind = path.hasSuffix(".lua") ? "a Lua job file must return a table of job fields" : "a job file must be a JSON object"
            throw JobValidationError(problems: [JobProblem(file: path, location: "", reason: kind)])
        }
        for key in object.keys where !Self.fields.contains(key) {
            problem(key, "unknown field (fields: \(Self.fields.joined(separator: ", ")))")
        }

        // The workflow, from a file beside the job or inline; a UI-format one is converted.
        let definitions = object["object_info"].flatMap { objectInfo($0, directory: directory, problem: problem) } ?? nodeDefinitions
        var workflow: Workflow?
        var uiWorkflow: UIWorkflowRecord?
        switch object["workflow"] {
        case nil: problem("workflow", "required: a path to a workflow (API or UI format), or the workflow itself")
        case .string(let relative)?:
            let workflowPath = Self.resolve(relative, against: directory)
            do {
                if let embedded = try readEmbedded?(workflowPath) {
                    (workflow, uiWorkflow) = fromEmbedded(embedded, path: workflowPath, definitions: definitions, problem: problem)
                    break
                }
                let content = try readFile(workflowPath)
                let json: JSONValue
                do { json = try JSONValue(parsingJSON5: content) } catch {
                    let (line, column) = error.location(in: content)
                    throw WorkflowFileError("\(workflowPath): line \(line), column \(column): \(error)")
                }
                if UIWorkflow.isUIFormat(json) {
                    if let (graph, record) = converted(json, path: workflowPath, text: content, definitions: definitions, problem: problem) {
                        (workflow, uiWorkflow) = (graph, record)
                    }
                } else {
                    do { workflow = try Workflow(json: json) } catch { throw WorkflowFileError("\(workflowPath): \(error)") }
                }
            } catch let error as WorkflowFileError {
                problem("workflow", error.message)
            } catch {
                problem("workflow", "cannot read \(workflowPath): \(error)")
            }
        case .object?:
            let json = object["workflow"]!
            if UIWorkflow.isUIFormat(json) {
                if let (graph, record) = converted(json, path: path, text: json.serialized(), definitions: definitions, problem: problem) {
                    (workflow, uiWorkflow) = (graph, record)
                }
            } else {
                do { workflow = try Workflow(json: json) } catch { problem("workflow", "\(error)") }
            }
        case let other?:
            problem("workflow", "must be a path or an object, not \(other.kindName)")
        }

        let name = object["name"]?.stringValue ?? Self.baseName(path)
        if let value = object["name"], value.stringValue == nil { problem("name", "must be a string") }
        if name.isEmpty { problem("name", "must not be empty") }

        // Without a graph nothing else can be resolved; report what we have.
        guard let workflow else { throw JobValidationError(problems: problems) }
        let resolver = AddressResolver(workflow: workflow)

        func address(_ written: String, at location: String) -> ParameterAddress? {
            switch resolver.resolve(written) {
            case .success(let address): return address
            case .failure(let reason):
                problem(location, reason.message)
                return nil
            }
        }
        func check(_ value: JSONValue, for address: ParameterAddress, at location: String) {
            if let reason = resolver.typeProblem(value, for: address) { problem(location, reason) }
        }
        var inputs = InputSources(directory: directory, files: files, uploads: uploads, workflow: workflow, problem: problem)

        var fixed: [(ParameterAddress, JSONValue)] = []
        if let set = object["set"] {
            if let entries = set.objectValue {
                for (key, value) in entries {
                    let location = "set[\(Self.quoted(key))]"
                    guard let resolved = address(key, at: location) else { continue }
                    guard let values = inputs.values(value, for: resolved, at: location) else { continue }
                    guard values.count == 1 else {
                        problem(location, "stands for \(values.count) values; set takes one (use matrix or zip to sweep them)")
                        continue
                    }
                    if InputFile(json: values[0]) == nil { check(values[0], for: resolved, at: location) }
                    fixed.append((resolved, values[0]))
                }
            } else {
                problem("set", "must be an object of \"NODE.input\": value")
            }
        }

        func sweeps(_ field: String) -> [(ParameterAddress, [JSONValue])] {
            guard let value = object[field] else { return [] }
            guard let entries = value.objectValue else {
                problem(field, "must be an object of \"NODE.input\": [values]")
                return []
            }
            var result: [(ParameterAddress, [JSONValue])] = []
            for (key, list) in entries {
                let location = "\(field)[\(Self.quoted(key))]"
                guard let resolved = address(key, at: location) else { continue }
                var values: [JSONValue] = []
                if let written = list.arrayValue {
                    for (offset, element) in written.enumerated() {
                        guard let expanded = inputs.values(element, for: resolved, at: "\(location)[\(offset)]") else { continue }
                        for value in expanded where InputFile(json: value) == nil { check(value, for: resolved, at: "\(location)[\(offset)]") }
                        values += expanded
                    }
                    guard !written.isEmpty else {
                        problem(location, "empty sweep: give at least one value")
                        continue
                    }
                } else if InputSources.isSource(list) {
                    guard let expanded = inputs.values(list, for: resolved, at: location) else { continue }
                    for value in expanded where InputFile(json: value) == nil { check(value, for: resolved, at: location) }
                    values = expanded
                } else {
                    problem(location, "must be a list of values, or {files: …}, {lines: …} or {csv: …, column: …}")
                    continue
                }
                guard !values.isEmpty else { continue }  // (a source that found nothing said so)
                result.append((resolved, values))
            }
            return result
        }
        let matrix = sweeps("matrix")
        let zip = sweeps("zip")
        if let first = zip.first, let other = zip.first(where: { $0.1.count != first.1.count }) {
            problem("zip", "lists must have the same length: \(first.0) has \(first.1.count), \(other.0) has \(other.1.count)")
        }

        var seeds: SeedSweep?
        if let value = object["seeds"] {
            seeds = seedSweep(value, resolver: resolver, problem: problem)
        }

        func integer(_ key: String, default fallback: Int, minimum: Int) -> Int {
            guard let value = object[key] else { return fallback }
            guard let number = value.numberValue, number.isInteger, let int = number.int else {
                problem(key, "must be a whole number, not \(value.kindName)")
                return fallback
            }
            guard int >= minimum else {
                problem(key, "must be at least \(minimum)")
                return fallback
            }
            return int
        }
        let repeatCount = integer("repeat", default: 1, minimum: 1)
        let priority = integer("priority", default: 0, minimum: Int.min)
        let retries = integer("retries", default: 2, minimum: 0)

        var servers: [String] = []
        if let value = object["servers"] {
            let list = value.arrayValue ?? []
            if value.arrayValue == nil { problem("servers", "must be a list of server names or URLs") }
            for (offset, entry) in list.enumerated() {
                guard let text = entry.stringValue, Self.isServerURL(text) || ServersFile.isName(text) else {
                    problem("servers[\(offset)]", "must be a server name from the servers file, an http:// or https:// URL, or host:port")
                    continue
                }
                servers.append(text)
            }
        }

        var stallTimeout = 600.0
        if let value = object["timeouts"] {
            if let entries = value.objectValue {
                for (key, entry) in entries {
                    guard key == "stall" else {
                        problem("timeouts[\(Self.quoted(key))]", "unknown timeout (timeouts: stall)")
                        continue
                    }
                    guard let text = entry.stringValue, let seconds = Durations.parse(text), seconds > 0 else {
                        problem("timeouts[\"stall\"]", "must be a duration such as \"10m\" or \"90s\"")
                        continue
                    }
                    stallTimeout = seconds
                }
            } else {
                problem("timeouts", "must be an object such as {\"stall\": \"10m\"}")
            }
        }

        var maxDefer: Double?
        if let value = object["max_defer"] {
            if let text = value.stringValue, let seconds = Durations.parse(text), seconds >= 0 {
                maxDefer = seconds
            } else {
                problem("max_defer", "must be a duration such as \"10m\" or \"90s\"")
            }
        }
        var strictOrder = false
        if let value = object["order"] {
            switch value.stringValue {
            case "strict": strictOrder = true
            case "models": strictOrder = false
            default: problem("order", "must be \"models\" (group items by the models they load, the default) or \"strict\" (exactly their order)")
            }
        }

        var hooks: [HookReference] = []
        if let value = object["hooks"] {
            for (offset, entry) in (value.arrayValue ?? []).enumerated() {
                let location = "hooks[\(offset)]"
                var relative: String?
                var options = JSONObject()
                switch entry {
                case .string(let text): relative = text
                case .object(let fields):
                    for key in fields.keys where key != "script" && key != "options" {
                        problem("\(location)[\(Self.quoted(key))]", "unknown field (fields: script, options)")
                    }
                    relative = fields["script"]?.stringValue
                    if relative == nil { problem(location, "needs \"script\": a path to a Lua script") }
                    if let given = fields["options"] {
                        if let object = given.objectValue { options = object } else { problem("\(location)[\"options\"]", "must be an object of settings") }
                    }
                default:
                    problem(location, "must be a path to a Lua script, or {\"script\": path, \"options\": {…}}")
                }
                guard let relative else { continue }
                let hookPath = Self.resolve(relative, against: directory)
                if !fileExists(hookPath) { problem(location, "no such file: \(hookPath)") }
                hooks.append(HookReference(path: hookPath, options: options))
            }
            if value.arrayValue == nil { problem("hooks", "must be a list of Lua script paths") }
        }

        // Follow-ups the job page offers for the starred pictures: name → job file.
        var followups: [(name: String, path: String)] = []
        if let value = object["followups"] {
            if let entries = value.objectValue {
                for (key, entry) in entries {
                    guard let relative = entry.stringValue, !relative.isEmpty else {
                        problem("followups[\(Self.quoted(key))]", "must be the path of a job file (the follow-up)")
                        continue
                    }
                    let followUpPath = Self.resolve(relative, against: directory)
                    if !fileExists(followUpPath) { problem("followups[\(Self.quoted(key))]", "no such file: \(followUpPath)") }
                    followups.append((key, followUpPath))
                }
            } else {
                problem("followups", "must be an object such as {\"hires\": \"hires-fix.json\"}")
            }
        }

        // Output naming: tokens known, nothing that could leave the folder.
        var output = OutputSpec(folder: Self.resolve("outputs/\(name)", against: directory), template: OutputSpec.defaultTemplate)
        if let value = object["output"] {
            if let entries = value.objectValue {
                for key in entries.keys where key != "folder" && key != "name" {
                    problem("output[\(Self.quoted(key))]", "unknown field (fields: folder, name)")
                }
                if let folder = entries["folder"] {
                    if let text = folder.stringValue, !text.isEmpty { output.folder = Self.resolve(text, against: directory) } else {
                        problem("output[\"folder\"]", "must be a folder path")
                    }
                }
                if let template = entries["name"] {
                    if let text = template.stringValue { output.template = text } else { problem("output[\"name\"]", "must be a file-name template") }
                }
            } else {
                problem("output", "must be an object such as {\"folder\": \"out\", \"name\": \"{job}_{index}\"}")
            }
        }
        let addresses = fixed.map(\.0) + matrix.map(\.0) + zip.map(\.0) + (seeds.map { [$0.address] } ?? [])
        for reason in OutputTemplate.problems(output.template, parameters: addresses, inputFiles: inputs.foundFiles) {
            problem("output[\"name\"]", reason)
        }

        let combinations = matrix.reduce(1) { $0.multipliedReportingOverflow(by: $1.1.count).partialValue }
        let total = [combinations, zip.first?.1.count ?? 1, seeds?.count ?? 1, repeatCount].reduce(1) {
            let (product, overflow) = $0.multipliedReportingOverflow(by: $1)
            return overflow ? Int.max : product
        }
        if total > Self.maximumItems { problem("", "expands to \(total) items; the limit is \(Self.maximumItems) per job") }

        var from: FollowUpOrigin?
        if let value = object["from"] {
            from = FollowUpOrigin(json: value)
            if from == nil { problem("from", "must be {job: NAME, items: [indices]} (comfyq add --from writes it)") }
        }

        guard problems.isEmpty else { throw JobValidationError(problems: problems) }
        return JobSpec(
            name: name, file: path, workflow: workflow, fixed: fixed, matrix: matrix, zip: zip, seeds: seeds, repeatCount: repeatCount,
            priority: priority, output: output, servers: servers, retries: retries, stallTimeout: stallTimeout, hooks: hooks,
            maxDefer: maxDefer, strictOrder: strictOrder, uiWorkflow: uiWorkflow, from: from, followups: followups)
    }

    /// The graph saved in a picture: its API form when there (exactly what ran), else its UI
    /// form converted.
    private func fromEmbedded(
        _ embedded: EmbeddedWorkflow, path: String, definitions: NodeDefinitionsSource?, problem: (String, String) -> Void
    ) -> (Workflow?, UIWorkflowRecord?) {
        func parsed(_ text: String, _ what: String) -> JSONValue? {
            do { return try JSONValue(parsingJSON5: text) } catch {
                problem("workflow", "\(path): its \(what) is not JSON: \(error)")
                return nil
            }
        }
        if let text = embedded.prompt {
            guard let json = parsed(text, "prompt") else { return (nil, nil) }
            do { return (try Workflow(json: json), nil) } catch {
                problem("workflow", "\(path): its prompt is not a workflow: \(error)")
                return (nil, nil)
            }
        }
        if let text = embedded.workflow {
            guard let json = parsed(text, "workflow") else { return (nil, nil) }
            guard let (graph, record) = converted(json, path: path, text: text, definitions: definitions, problem: problem) else { return (nil, nil) }
            return (graph, record)
        }
        problem(
            "workflow",
            "\(path): a \(embedded.format) file without a workflow (no \"prompt\" or \"workflow\" in it): not saved by ComfyUI, or saved with --disable-metadata")
        return (nil, nil)
    }

    private func seedSweep(
        _ value: JSONValue, resolver: AddressResolver, problem: (String, String) -> Void
    ) -> SeedSweep? {
        guard let object = value.objectValue else {
            problem("seeds", "must be {\"start\": 1, \"count\": 100} or {\"random\": 100}")
            return nil
        }
        let target: ParameterAddress
        if let written = object["input"]?.stringValue {
            switch resolver.resolve(written) {
            case .success(let address): target = address
            case .failure(let reason):
                problem("seeds[\"input\"]", reason.message)
                return nil
            }
        } else {
            switch resolver.seedInput() {
            case .success(let address): target = address
            case .failure(let reason):
                problem("seeds", reason.message)
                return nil
            }
        }
        func count(_ key: String) -> Int? {
            guard let number = object[key]?.numberValue?.int, number >= 1 else {
                problem("seeds[\(Self.quoted(key))]", "must be a whole number of at least 1")
                return nil
            }
            return number
        }
        if object["random"] != nil {
            guard let random = count("random") else { return nil }
            return SeedSweep(address: target, values: .random(count: random))
        }
        guard let start = object["start"]?.numberValue, let first = UInt64(start.literal) else {
            problem("seeds[\"start\"]", "must be a whole number from 0 (or use {\"random\": count})")
            return nil
        }
        guard let total = count("count") else { return nil }
        return SeedSweep(address: target, values: .range(start: first, count: total))
    }

    // MARK: Paths

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    static func baseName(_ path: String) -> String { InputFile.stem(of: path) }

    public static func resolve(_ relative: String, against directory: String) -> String {
        if relative.hasPrefix("/") || directory.isEmpty { return relative }
        return normalized(directory + "/" + relative)
    }

    /// `.` and `..` taken out of an absolute path (`/a/b/../c` → `/a/c`); relative paths keep
    /// their leading `..`.
    public static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
                continue
            }
            if part == "..", path.hasPrefix("/") { continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    static func quoted(_ key: String) -> String {
        var text = ""
        JSONValue.writeString(key, to: &text)
        return text
    }

    static func isServerURL(_ text: String) -> Bool {
        if text.hasPrefix("http://") || text.hasPrefix("https://") { return text.split(separator: "/").count >= 2 }
        let parts = text.split(separator: ":")
        return parts.count == 2 && !parts[0].isEmpty && Int(parts[1]) != nil
    }
}

private struct WorkflowFileError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// `50ms`, `1s`, `1.5s`, `10m`, `2h`, `0`: seconds.
public enum Durations {
    public static func parse(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return value * scale
        }
        return text == "0" ? 0 : nil
    }
}
