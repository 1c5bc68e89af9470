import ComfyCore
import Foundation

/// `comfyq inspect FILE [--server S] [--json]`
enum InspectCommand {
    static let spec = CommandSpec(
        name: "inspect", abstract: "Show a workflow's nodes and inputs, with the address to sweep each by.",
        discussion: """
            FILE is a workflow (API or UI format), a picture ComfyUI saved (PNG, WebP, FLAC), or a job file. \
            Every node in order with its id, title and class; each input with its value and the address to \
            use in --set, --matrix or a job file (Title.input, or id.input where a title is ambiguous), links \
            as links; the input --seeds takes; the output nodes. For a job (or with sweep options), its axes \
            and item count. With --server (or for a UI-format workflow, which needs them), the server's node \
            definitions add each input's type, range and allowed values, and flag the nodes it lacks.
            """,
        arguments: [ArgumentSpec("file", help: "A workflow, a picture ComfyUI saved, or a job file.")],
        options: [
            .value(
                "server", name: "name|url", completion: .servers,
                help: "Describe the inputs with this server's node definitions (types, ranges, allowed values).", repeatable: true),
            ServersConfig.option, ServerChecks.headerOption, .flag("json", help: "Print the description as one JSON object."),
            .flag("addresses", help: "Print only the addresses, each followed by =, one a line (for shell completion)."),
        ] + JobSources.options.filter { $0.long != "print-job" }
    ) { arguments, console in try await inspect(arguments, console) }

    static func inspect(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let sweeps = try JobSources(arguments, command: spec)
        let paths = arguments.positionals
        var source: NodeDefinitionsSource?
        if !arguments.values("server").isEmpty || ServerChecks.mayNeedDefinitions(jobPaths: paths) {
            let fetched = try await ServerChecks.fetch(arguments, jobPaths: paths, command: spec, console: console)
            source = fetched.forConversion
            if source == nil, !fetched.failed.isEmpty { console.printError(fetched.skippedLine) }
        }
        guard let job = try JobFiles.load(paths, sweeps: sweeps, definitions: source).first else { return .success }
        let document = try JobFiles.documents(paths, sweeps: sweeps).first?.document
        // A job file (or sweep options) has axes to show; a bare workflow has only its graph.
        let isJob = !sweeps.isEmpty || document?["workflow"].map { $0.stringValue != JobLoader.normalized(sweeps.absolute(paths[0])) } ?? false
        let inspection = WorkflowInspection(workflow: job.workflow, definitions: source?.definitions, origin: source?.origin)
        if arguments.flag("addresses") {
            for address in inspection.nodes.flatMap(\.inputs).compactMap(\.address) { console.print(address + "=") }
            return .success
        }
        if arguments.flag("json") {
            var object = inspection.json.objectValue ?? JSONObject()
            object["file"] = .string(paths[0])
            if let record = job.uiWorkflow { object["converted_from_ui_format"] = .string(record.path) }
            if isJob { object["job"] = jobJSON(job) }
            console.print(JSONValue.object(object).serialized())
            return .success
        }
        var header = "\(paths[0]): \(job.workflow.orderedNodes.count) nodes"
        if job.uiWorkflow != nil { header += " (a UI-format workflow, converted as ComfyUI's page would)" }
        if let origin = source?.origin { header += "; definitions from \(origin)" }
        console.print(header)
        for line in inspection.lines { console.print(line) }
        if isJob { for line in jobLines(job) { console.print(line) } }
        return .success
    }

    /// The job's axes, in item order, and how many items they make.
    static func axes(_ job: JobSpec) -> [(kind: String, address: String, count: Int)] {
        let resolver = AddressResolver(workflow: job.workflow)
        func written(_ address: ParameterAddress) -> String {
            job.workflow[address.nodeID].map { resolver.shortestAddress(of: $0, input: address.input) } ?? address.written
        }
        var axes = job.matrix.map { ("matrix", written($0.address), $0.values.count) }
        axes += job.zip.map { ("zip", written($0.address), $0.values.count) }
        if let seeds = job.seeds { axes.append(("seeds", written(seeds.address), seeds.count)) }
        if job.repeatCount > 1 { axes.append(("repeat", "", job.repeatCount)) }
        return axes
    }

    static func itemCount(_ job: JobSpec) -> Int {
        let zipCount = job.zip.first?.values.count ?? 1
        return job.matrix.reduce(1) { $0 * $1.values.count } * zipCount * (job.seeds?.count ?? 1) * job.repeatCount
    }

    static func jobLines(_ job: JobSpec) -> [String] {
        let count = itemCount(job)
        var lines = ["job \(job.name): \(count) item\(count == 1 ? "" : "s")"]
        for axis in axes(job) { lines.append("  \(axis.kind) \(axis.address.isEmpty ? "" : axis.address + " ")× \(axis.count)") }
        for fixed in job.fixed { lines.append("  set \(fixed.address.written) = \(fixed.value.serialized())") }
        lines.append("  outputs to \(job.output.folder) as \(job.output.template)")
        return lines
    }

    static func jobJSON(_ job: JobSpec) -> JSONValue {
        [
            "name": .string(job.name), "items": .int(itemCount(job)),
            "axes": .array(
                axes(job).map { axis in
                    ["kind": .string(axis.kind), "address": axis.address.isEmpty ? .null : .string(axis.address), "count": .int(axis.count)]
                }),
            "set": .object(job.fixed.reduce(into: JSONObject()) { $0[$1.address.written] = $1.value }),
            "output": ["folder": .string(job.output.folder), "name": .string(job.output.template)],
        ]
    }
}
