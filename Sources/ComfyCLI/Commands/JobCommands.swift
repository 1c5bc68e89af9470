import ComfyClient
import ComfyCore
import Foundation
import Hooks
import InputFiles
import QueueStore
import Serve
import WebSocket

/// Job files invalid: every problem already printed, one per line (exit 65, EX_DATAERR).
struct InvalidJobFiles: Error, CustomStringConvertible, ExitCodeProviding {
    var error: JobValidationError
    var description: String { error.description }
    var exitCode: ExitCode { .dataError }
}

/// Shared by the commands that read job files or open the queue.
enum JobFiles {
    static let dbOption = OptionSpec.value(
        "db", name: "path|url",
        help: "The queue: an SQLite file, or postgresql://user@host:port/db (default $COMFYQ_DB or $XDG_STATE_HOME/comfyq/queue.db).")

    static var loader: JobLoader { loader(uploads: .builtIn) }

    static func loader(uploads: UploadInputs, definitions: NodeDefinitionsSource? = nil) -> JobLoader {
        var loader = JobLoader(
            readFile: { path in
                do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw LoadFailure(reason: FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file")
                }
            },
            fileExists: { FileManager.default.fileExists(atPath: $0) }, files: LocalFiles.files, uploads: uploads,
            workingDirectory: FileManager.default.currentDirectoryPath)
        loader.nodeDefinitions = definitions
        loader.now = DateParts(Date())
        loader.digest = { SHA1.hex($0) }
        loader.readEmbedded = { path in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LoadFailure(reason: FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file")
            }
            do { return try MediaMetadata.read([UInt8](data)) } catch { throw LoadFailure(reason: "\(path): \(error)") }
        }
        return loader
    }

    struct LoadFailure: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// The job document of every file (a job file, a Lua job, a workflow, a picture ComfyUI
    /// saved), with the command line's sweeps applied; all problems in all files together.
    static func documents(_ paths: [String], sweeps: JobSources = JobSources()) throws -> [(document: JSONValue, path: String)] {
        var documents: [(document: JSONValue, path: String)] = []
        var problems: [JobProblem] = []
        for path in paths {
            if path.hasSuffix(".lua") {
                guard FileManager.default.fileExists(atPath: path) else {
                    problems.append(JobProblem(file: path, location: "", reason: "no such file"))
                    continue
                }
                let document: JSONValue
                do throws(LuaJobFile.Failure) {
                    document = try LuaJobFile.evaluate(path: path)
                } catch {
                    problems.append(JobProblem(file: path, location: error.location, reason: error.reason))
                    continue
                }
                if let object = document.objectValue { documents.append((.object(sweeps.applied(to: object)), path)) } else { documents.append((document, path)) }
                continue
            }
            switch JobSources.document(for: path, workingDirectory: sweeps.workingDirectory) {
            case .success(let document): documents.append((.object(sweeps.applied(to: document)), path))
            case .failure(let error): problems += error.problems
            }
        }
        if !problems.isEmpty { throw InvalidJobFiles(error: JobValidationError(problems: problems)) }
        return documents
    }

    /// Loads every file (see `documents`); all problems in all files are reported together.
    static func load(
        _ paths: [String], sweeps: JobSources = JobSources(), uploads: UploadInputs = .builtIn, definitions: NodeDefinitionsSource? = nil
    ) throws -> [JobSpec] {
        let loader = loader(uploads: uploads, definitions: definitions)
        var specs: [JobSpec] = []
        var problems: [JobProblem] = []
        for (document, path, notes) in try followedUp(try documents(paths, sweeps: sweeps), sweeps: sweeps, loader: loader) {
            do {
                var spec = try loader.load(document: document, path: path)
                spec.notes += notes
                specs.append(spec)
            } catch { problems += error.problems }
        }
        if !problems.isEmpty { throw InvalidJobFiles(error: JobValidationError(problems: problems)) }
        return specs
    }

    /// With `--from`: each document made a follow-up of the chosen items (`FollowUp`), which
    /// needs its graph first (a load without them), to know which parameters it can take.
    static func followedUp(
        _ documents: [(document: JSONValue, path: String)], sweeps: JobSources, loader: JobLoader
    ) throws -> [(document: JSONValue, path: String, notes: [String])] {
        guard let followUp = sweeps.followUp else { return documents.map { ($0.document, $0.path, []) } }
        var result: [(document: JSONValue, path: String, notes: [String])] = []
        var problems: [JobProblem] = []
        for (document, path) in documents {
            do {
                // (Its graph read without the `{from.output}` inputs, which are not files yet.)
                var bare = document.objectValue ?? JSONObject()
                if let set = bare["set"]?.objectValue {
                    bare["set"] = .object(set.reduce(into: JSONObject()) { if !FollowUp.isOutputPlaceholder($1.1) { $0[$1.0] = $1.1 } })
                }
                let graph = try loader.load(document: .object(bare), path: path).workflow
                let (made, notes) = try FollowUp.apply(to: document.objectValue ?? JSONObject(), job: followUp.job, sources: followUp.sources, workflow: graph)
                result.append((.object(made), path, notes))
            } catch let error as JobValidationError {
                problems += error.problems
            } catch {
                problems.append(JobProblem(file: path, location: "--from", reason: "\(error)"))
            }
        }
        if !problems.isEmpty { throw InvalidJobFiles(error: JobValidationError(problems: problems)) }
        return result
    }

    /// `--print-job`: the job files the command line stands for, checked, as JSON5 (one after
    /// another when there are several).
    static func printJobs(_ paths: [String], sweeps: JobSources, definitions: NodeDefinitionsSource? = nil, console: Console) throws {
        for (document, _, _) in try followedUp(try documents(paths, sweeps: sweeps), sweeps: sweeps, loader: loader(uploads: .builtIn, definitions: definitions)) {
            console.print("// comfyq add this file (or comfyq run it) to queue these items")
            console.print(document.serialized(pretty: true))
        }
    }

    static func openQueue(_ arguments: ParsedArguments, _ console: Console) throws -> Queue {
        let path = arguments.value("db") ?? Queue.defaultPath(environment: console.environment, home: console.home)
        let folder = (path as NSString).deletingLastPathComponent
        if !PostgresDatabase.isURL(path), !folder.isEmpty {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)  // if it cannot be made, opening says so
        }
        do { return try Queue(path: path) } catch { throw CommandFailure("cannot open the queue: \(error)") }
    }

    static var now: Double { Date().timeIntervalSince1970 }

    /// The job with its hook scripts' text read in, to be stored with it: a run on another
    /// machine (a shared PostgreSQL queue) needs no copy of the files.
    static func withHookSources(_ spec: JobSpec) throws -> JobSpec {
        var spec = spec
        for index in spec.hooks.indices {
            do {
                spec.hooks[index].source = try String(contentsOfFile: spec.hooks[index].path, encoding: .utf8)
            } catch {
                throw CommandFailure("\(spec.hooks[index].path): cannot read the hook script (\(error.localizedDescription))")
            }
        }
        return spec
    }

    /// A stored script's text as a file to load (`STATE/comfyq/stored-hooks/SHA256/NAME`, named as
    /// the original so messages name it the same), when the path it was added from is not here
    /// or holds other text; the path itself otherwise.
    static func hookPath(_ reference: HookReference, environment: [String: String]) throws -> String {
        guard let source = reference.source else { return reference.path }
        if let current = try? String(contentsOfFile: reference.path, encoding: .utf8), current == source { return reference.path }
        let digest = String(FileHash.sha256(Array(source.utf8)).prefix(16))
        let folder = UserFolders.state(environment: environment, home: homeFolder(environment)) + "/stored-hooks/" + digest
        let path = folder + "/" + (reference.path as NSString).lastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(source.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandFailure("\(path): cannot write the stored hook script (\(error.localizedDescription))")
        }
        return path
    }

    static func random() -> UInt64 { UInt64.random(in: 0...UInt64.max) }
}

/// `comfyq validate JOB…`
enum ValidateCommand {
    static let spec = CommandSpec(
        name: "validate", abstract: "Check job files, and their items against the servers, without queueing anything.",
        discussion: """
            Prints every problem, one line each (file, where, why), and exits 65 if there is any. With servers \
            (--server, the jobs' servers, or the servers file's) that answer, or their cached node definitions, \
            UI-format workflows are converted and every item is pre-flighted: node types, listed values \
            (checkpoints, samplers…), number ranges, required inputs, types; input files against max_upload_size.
            """,
        arguments: [
            ArgumentSpec("job", help: "Job files (JSON with comments and trailing commas), workflows, or pictures ComfyUI saved.", variadic: true)
        ],
        options: [ServerChecks.serverOption, ServerChecks.noPreflightOption, ServerChecks.headerOption, ServersConfig.option]
            + JobSources.options.filter { $0.long != "print-job" }
    ) { arguments, console in try await validate(arguments, console) }

    static func validate(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let (specs, lines) = try await ServerChecks.withDefinitions(arguments, jobPaths: arguments.positionals, command: spec, console: console) {
            try await checked(arguments.positionals, sweeps: try JobSources(arguments, command: spec), fetched: $0, arguments: arguments)
        }
        for line in lines { console.print(line) }
        for note in specs.flatMap({ $0.uiWorkflow?.notes ?? [] }) { console.print("note: \(note)") }
        for spec in specs {
            let converted = spec.uiWorkflow.map { " (converted from the UI format with the node definitions of \($0.definitions))" } ?? ""
            console.print("\(spec.file): ok, \(spec.itemCount) item\(spec.itemCount == 1 ? "" : "s") (\(spec.name))\(converted)")
        }
        return .success
    }
}

extension ValidateCommand {
    /// Loads the jobs with the servers' node definitions (UI-format workflows converted, the
    /// servers' upload inputs known), checks input files against each server's
    /// `max_upload_size`, and pre-flights every item unless `--no-preflight`. Returns the jobs
    /// and what to print about the pre-flight.
    static func checked(
        _ paths: [String], sweeps: JobSources, fetched: ServerChecks.Fetched, arguments: ParsedArguments
    ) async throws -> (specs: [JobSpec], lines: [String]) {
        var uploads = UploadInputs.builtIn
        var limits: [(name: String, bytes: Int64)] = []
        for (server, source) in fetched.answered {
            uploads = uploads.merging(UploadInputs(definitions: source.definitions))
            guard let url = URL(string: server.url) else { continue }
            do {
                if let limit = try await ComfyAPI(baseURL: url, timeout: 10).maxUploadSize() { limits.append((server.name, limit)) }
            } catch {
                // Answered from the cache, or gone since: the limit is not known.
            }
        }
        let specs = try JobFiles.load(paths, sweeps: sweeps, uploads: uploads, definitions: fetched.forConversion)
        var problems: [JobProblem] = []
        for spec in specs where !limits.isEmpty {
            var seen: Set<String> = []
            for item in spec.expand(random: { 0 }) {
                for (address, file) in InputFile.all(in: item.parametersJSON) where seen.insert(file.path).inserted {
                    for limit in limits where file.size > limit.bytes {
                        problems.append(
                            JobProblem(
                                file: spec.file, location: "\(spec.name)/\(item.index) \(address)",
                                reason: "\(file.path): \(file.size) bytes, more than \(limit.name)'s max_upload_size (\(limit.bytes) bytes)"))
                    }
                }
            }
        }
        if !problems.isEmpty { throw InvalidJobFiles(error: JobValidationError(problems: problems)) }
        guard !arguments.flag("no-preflight") else { return (specs, []) }
        if fetched.answered.isEmpty { return (specs, [fetched.skippedLine]) }
        return (specs, try ServerChecks.preflight(specs.map { ($0, $0.expand(random: { 0 })) }, fetched: fetched))
    }
}

/// `comfyq add JOB… [--dry-run]`
enum AddCommand {
    static let spec = CommandSpec(
        name: "add", abstract: "Validate job files, expand their sweeps and add the items to the queue.",
        discussion: "All files are checked first; nothing is queued unless every one is valid. Each job goes in with one transaction.",
        arguments: [ArgumentSpec("job", help: "Job files, workflows (API or UI format), or pictures ComfyUI saved (PNG, WebP, FLAC).", variadic: true)],
        options: [
            .flag("dry-run", help: "List the items that would be added, and add nothing."),
            ServerChecks.serverOption, ServerChecks.noPreflightOption, ServerChecks.headerOption, ServersConfig.option,
            JobFiles.dbOption,
        ] + JobSources.options + JobSources.followUpOptions
    ) { arguments, console in try await add(arguments, console) }

    /// The job files loaded with the servers' node definitions, expanded, and pre-flighted
    /// against the servers (`--server`, the jobs' or the servers file's) unless `--no-preflight`:
    /// what `add` adds, and `serve` too (`POST /api/jobs`). Returns the lines to say.
    static func checkedJobs(
        _ paths: [String], sweeps: JobSources, arguments: ParsedArguments, command: CommandSpec, console: Console
    ) async throws -> (jobs: [(JobSpec, [JobItem])], lines: [String]) {
        try await ServerChecks.withDefinitions(arguments, jobPaths: paths, command: command, console: console) { fetched in
            var uploads = UploadInputs.builtIn
            for (_, source) in fetched.answered { uploads = uploads.merging(UploadInputs(definitions: source.definitions)) }
            let specs = try JobFiles.load(paths, sweeps: sweeps, uploads: uploads, definitions: fetched.forConversion)
            let jobs = specs.map { ($0, $0.expand(random: JobFiles.random)) }
            guard !arguments.flag("no-preflight") else { return (jobs, [String]()) }
            if fetched.answered.isEmpty { return (jobs, [fetched.skippedLine]) }
            return (jobs, try ServerChecks.preflight(jobs, fetched: fetched))
        }
    }

    static func add(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        var sweeps = try JobSources(arguments, command: spec)
        if sweeps.from != nil { try sweeps.resolveFollowUp(try JobFiles.openQueue(arguments, console)) }
        let (jobs, lines) = try await checkedJobs(arguments.positionals, sweeps: sweeps, arguments: arguments, command: spec, console: console)
        for line in lines { console.printError(line) }
        for note in jobs.flatMap({ ($0.0.uiWorkflow?.notes ?? []) + $0.0.notes }) { console.printError("note: \(note)") }
        if arguments.flag("print-job") {
            try JobFiles.printJobs(arguments.positionals, sweeps: sweeps, console: console)
            return .success
        }
        if arguments.flag("dry-run") {
            for (spec, items) in jobs {
                console.print("\(spec.name): \(items.count) item\(items.count == 1 ? "" : "s") (dry run, nothing added)")
                for item in items {
                    console.print("  \(spec.name)/\(item.index)  \(Self.shown(item.parametersJSON).serialized())")
                    for (address, file) in InputFile.all(in: item.parametersJSON) {
                        console.print("      \(address): \(file.path)" + (file.mask.map { " (mask \($0.path))" } ?? ""))
                    }
                }
                // What the items load, grouped: each group is a load on the server that runs it.
                var groups: [(key: ModelKey, count: Int)] = []
                let keys = spec.modelKeys(items)
                for key in keys {
                    if let index = groups.firstIndex(where: { $0.key == key }) { groups[index].count += 1 } else { groups.append((key, 1)) }
                }
                let written = ModelKey.loads(inOrder: keys)
                let expected = spec.strictOrder ? written : groups.count
                console.print(
                    "  model groups: \(groups.count); one server loads \(expected) time\(expected == 1 ? "" : "s")"
                        + (spec.strictOrder ? " (order: strict)" : written > expected ? " (\(written) in the written order)" : ""))
                for group in groups {
                    console.print("    \(group.count) item\(group.count == 1 ? "" : "s"): \(group.key.description.isEmpty ? "(loads no model file)" : group.key.description)")
                }
            }
            return .success
        }
        let queue = try JobFiles.openQueue(arguments, console)
        for (spec, items) in jobs {
            let id = try queue.add(try JobFiles.withHookSources(spec), items: items, now: JobFiles.now)
            console.print("added job \(spec.name) (#\(id)): \(items.count) item\(items.count == 1 ? "" : "s")")
        }
        return .success
    }
}

extension AddCommand {
    /// Parameters as a person reads them: an input file by its path alone.
    static func shown(_ parameters: JSONValue) -> JSONValue {
        var object = JSONObject()
        for (key, value) in parameters.objectValue ?? JSONObject() { object[key] = InputFile(json: value).map { .string($0.path) } ?? value }
        return .object(object)
    }
}

/// `comfyq cancel JOB|JOB/INDEX`, `comfyq retry JOB|JOB/INDEX`, `comfyq remove JOB`
enum QueueEditCommands {
    static let cancel = edit(
        "cancel", abstract: "Cancel a job's unfinished items, or one item (JOB/INDEX).", done: "cancelled"
    ) { queue, target in try queue.cancel(target, now: JobFiles.now) }

    static let retry = edit(
        "retry", abstract: "Put failed, cancelled or held items back in the queue (a job, or JOB/INDEX).", done: "queued",
        after: " again"
    ) { queue, target in try queue.retry(target, now: JobFiles.now) }

    /// A command that changes the items of a job or of one `JOB/INDEX` and says how many.
    private static func edit(
        _ name: String, abstract: String, done: String, after: String = "",
        _ change: @escaping @Sendable (Queue, Queue.Target) throws -> Int
    ) -> CommandSpec {
        CommandSpec(
            name: name, abstract: abstract,
            arguments: [ArgumentSpec("target", help: "A job name or #id, or JOB/INDEX for one item.", completion: .jobs)], options: [JobFiles.dbOption]
        ) { arguments, console in
            let queue = try JobFiles.openQueue(arguments, console)
            let count = try change(queue, try resolve(queue, arguments.positionals[0]))
            console.print("\(done) \(count) item\(count == 1 ? "" : "s")\(after)")
            return .success
        }
    }

    static let remove = CommandSpec(
        name: "remove", abstract: "Delete a finished job and its items from the queue.",
        arguments: [ArgumentSpec("job", help: "A job name or #id.", completion: .jobs)], options: [JobFiles.dbOption]
    ) { arguments, console in
        let queue = try JobFiles.openQueue(arguments, console)
        let job: JobSummary
        do { job = try queue.job(named: arguments.positionals[0]) } catch { throw CommandFailure("\(error)") }
        do { try queue.remove(jobID: job.id) } catch let error as QueueError { throw CommandFailure(error.message) }
        console.print("removed job \(job.name) (#\(job.id)) and its \(job.total) item\(job.total == 1 ? "" : "s")")
        return .success
    }

    static let drain = CommandSpec(
        name: "drain", abstract: "Ask the runs of this queue to finish what they have in flight and submit nothing new.",
        discussion: """
            As Ctrl-C once in the run's terminal, from anywhere: each run on this queue (one whose
            heartbeat is under 15 s old) stops claiming items, waits for its prompts in flight, and ends; the rest
            stays queued for the next run.
            """,
        options: [JobFiles.dbOption]
    ) { arguments, console in
        let queue = try JobFiles.openQueue(arguments, console)
        let asked = try requestDrain(queue)
        guard asked > 0 else { throw CommandFailure("no run is going on this queue: nothing to drain") }
        console.print("asked \(asked) run\(asked == 1 ? "" : "s") to drain")
        return .success
    }

    /// Asks the runs whose heartbeat is recent (they write one every 5 s) to drain.
    static func requestDrain(_ queue: Queue) throws -> Int { try ServeApp.requestDrain(queue) }

    static func resolve(_ queue: Queue, _ reference: String) throws -> Queue.Target {
        do { return try queue.target(reference.hasPrefix("#") ? String(reference.dropFirst()) : reference) } catch let error as QueueError {
            throw CommandFailure(error.message)
        }
    }
}
