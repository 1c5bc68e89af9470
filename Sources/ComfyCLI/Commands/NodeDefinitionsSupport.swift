import ComfyClient
import ComfyCore
import Foundation
import InputFiles

/// Servers' node definitions for the commands that read job files: UI-format workflows are
/// converted with them, and every item is checked against them before anything is queued
/// (pre-flight).
enum ServerChecks {
    static let serverOption = OptionSpec.value(
        "server", name: "name|url", completion: .servers,
        help: "Check against this server (repeatable): its node definitions convert UI-format workflows and\npre-flight every item. Default: the jobs' servers, else the servers file's.",
        repeatable: true)
    static let noPreflightOption = OptionSpec.flag("no-preflight", help: "Do not check the items against the servers' node definitions.")
    static let headerOption = OptionSpec.value("header", name: "name:value", help: "An extra HTTP header for servers behind a proxy.", repeatable: true)

    /// `--header name:value` (repeatable), as a dictionary.
    static func headers(_ arguments: ParsedArguments, command: CommandSpec) throws -> [String: String] {
        var headers: [String: String] = [:]
        for header in arguments.values("header") {
            guard let colon = header.firstIndex(of: ":") else {
                throw UsageError("--header must be name:value, got '\(header)'", command: command)
            }
            headers[String(header[..<colon])] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return headers
    }

    /// Servers that answered, with their definitions, and those that did not, with why.
    struct Fetched {
        /// The servers file, to resolve the server names jobs give.
        var serversFile: (file: ServersFile, path: String)?
        var answered: [(server: ServerDefinition, source: NodeDefinitionsSource)] = []
        var failed: [(server: ServerDefinition, reason: String)] = []

        /// The definitions to convert UI-format workflows with: the first server's that has any.
        var forConversion: NodeDefinitionsSource? { answered.first?.source }
        /// Some came from the cache while their server answered: worth fetching afresh before
        /// calling an item wrong (a model downloaded since, a custom node installed).
        var anyCached: Bool { answered.contains { $0.source.fromCache } }

        /// `pre-flight skipped: no server answered (gpu0: connection refused)`.
        var skippedLine: String {
            "pre-flight skipped: no server answered"
                + " (\(failed.map { "\($0.server.name): \($0.reason)" }.joined(separator: "; ")))"
        }
    }

    /// The servers to check against: `--server`, else the servers the job files name, else the
    /// servers file's, else ComfyUI's default address (as `run`).
    static func servers(
        _ arguments: ParsedArguments, loaded: (file: ServersFile, path: String)?, jobPaths: [String], command: CommandSpec, console: Console
    ) throws -> [ServerDefinition] {
        let given = arguments.values("server")
        if !given.isEmpty { return try ServersConfig.resolve(given, in: loaded, what: "--server", command: command) }
        var named: [String] = []
        for path in jobPaths where !path.hasSuffix(".lua") {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), let json = try? JSONValue(parsingJSON5: text) else {
                continue  // loading the job reports it
            }
            for server in json["servers"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !named.contains(server) { named.append(server) }
        }
        if !named.isEmpty { return try ServersConfig.resolve(named, in: loaded, what: "servers") }
        if let loaded, !loaded.file.servers.isEmpty { return loaded.file.servers }
        return try ServersConfig.resolve([console.defaultServer], in: nil, what: "--server")
    }

    /// Whether loading these job files may need node definitions: one names a UI-format workflow
    /// (or is a Lua job, whose workflow is known only once it runs). A file that cannot be read
    /// here is left to the load, which reports it.
    static func mayNeedDefinitions(jobPaths: [String]) -> Bool {
        jobPaths.contains { path in
            if path.hasSuffix(".lua") { return true }
            guard case .success(let job) = JobSources.document(for: path, workingDirectory: FileManager.default.currentDirectoryPath) else { return false }
            switch job["workflow"] {
            case .string(let relative)?:
                let file = JobLoader.resolve(relative, against: (path as NSString).deletingLastPathComponent)
                guard let data = FileManager.default.contents(atPath: file) else { return false }
                // A picture whose API form is missing carries only its UI form.
                if let embedded = try? MediaMetadata.read([UInt8](data)) { return embedded.prompt == nil && embedded.workflow != nil }
                guard let text = String(data: data, encoding: .utf8), let workflow = try? JSONValue(parsingJSON5: text) else { return false }
                return UIWorkflow.isUIFormat(workflow)
            case let inline?: return UIWorkflow.isUIFormat(inline)
            case nil: return false
            }
        }
    }

    /// The servers to check against (see `servers`), each with its definitions: from the cache
    /// by ComfyUI version, or fetched (10 s each at most).
    static func fetch(_ arguments: ParsedArguments, jobPaths: [String], command: CommandSpec, console: Console, refresh: Bool = false) async throws
        -> Fetched
    {
        let loaded = try ServersConfig.load(arguments, console)
        let servers = try servers(arguments, loaded: loaded, jobPaths: jobPaths, command: command, console: console)
        let headers = try headers(arguments, command: command)
        let cache = ObjectInfoCache(environment: console.environment, home: console.home)
        var fetched = Fetched(serversFile: loaded)
        for server in servers {
            guard let url = URL(string: server.url) else {
                fetched.failed.append((server, "not a URL: \(server.url)"))
                continue
            }
            do {
                fetched.answered.append((server, try await cache.definitions(name: server.name, api: ComfyAPI(baseURL: url, headers: headers, timeout: 10), refresh: refresh)))
            } catch {
                fetched.failed.append((server, error.kindDescription))
            }
        }
        return fetched
    }

    /// Runs `check` with the servers' definitions (cached by version); when it finds the jobs
    /// wrong with cached ones, fetches them afresh and runs it again, so a model downloaded or
    /// a node installed since the cache was written is not reported missing. Pre-flight notes
    /// of a check that fails are printed before its error.
    static func withDefinitions<T>(
        _ arguments: ParsedArguments, jobPaths: [String], command: CommandSpec, console: Console, _ check: (Fetched) async throws -> T
    ) async throws -> T {
        let fetched = try await fetch(arguments, jobPaths: jobPaths, command: command, console: console)
        do {
            do {
                return try await check(fetched)
            } catch where fetched.anyCached && (error is InvalidJobFiles || error is PreflightProblems) {
                return try await check(try await fetch(arguments, jobPaths: jobPaths, command: command, console: console, refresh: true))
            }
        } catch let error as PreflightProblems {
            for note in error.notes { console.printError("note: \(note)") }
            throw error
        }
    }

    /// Checks every item of `jobs` against the servers that answered (each job against its own
    /// `servers` when it names some). Returns the lines to print: notes (items only some servers
    /// can run) and how many items were checked; the problems no server gets past throw, one
    /// line each, exit 65.
    static func preflight(_ jobs: [(spec: JobSpec, items: [JobItem])], fetched: Fetched) throws -> [String] {
        guard !fetched.answered.isEmpty else { return [] }
        var errors: [JobProblem] = []
        var notes: [String] = []
        var checked = 0
        for (spec, items) in jobs {
            var servers = fetched.answered
            if !spec.servers.isEmpty {
                let names = Set(try ServersConfig.resolve(spec.servers, in: fetched.serversFile, what: "\(spec.file): servers").map(\.name))
                let own = servers.filter { names.contains($0.server.name) }
                if !own.isEmpty { servers = own }
            }
            let job = PreflightJob(
                label: spec.file, workflow: spec.workflow, addresses: spec.addresses,
                items: items.map { PreflightJob.Item(index: $0.index, parameters: $0.parametersJSON.objectValue ?? JSONObject()) })
            let report = PreflightReport(jobs: [job], servers: servers.map { ($0.server.name, $0.source.definitions) })
            checked += report.checkedItems
            notes += report.notes.map(\.description)
            // Definitions cached while a server did not answer may be stale (a checkpoint copied in
            // since): what they find is said, but refuses nothing; the run checks the live server.
            if let stale = servers.first(where: { $0.source.serverDidNotAnswer }) {
                notes += report.errors.map { "\($0.job): \($0.text); not refused: by \(stale.source.origin), the run checks again" }
            } else {
                errors += report.errors.map { JobProblem(file: $0.job, location: "", reason: $0.text) }
            }
        }
        if !errors.isEmpty { throw PreflightProblems(problems: JobValidationError(problems: errors), notes: notes) }
        let names = fetched.answered.map { "\($0.server.name)\($0.source.serverDidNotAnswer ? " (cached: it did not answer)" : "")" }.joined(separator: ", ")
        return notes.map { "note: \($0)" } + ["pre-flight: \(checked) item\(checked == 1 ? "" : "s") checked against \(names)"]
    }
}

/// Items no server can run (one line each), and the notes of the same check: exit 65, nothing
/// queued.
struct PreflightProblems: Error, CustomStringConvertible, ExitCodeProviding {
    var problems: JobValidationError
    var notes: [String]
    var description: String { problems.description }
    var exitCode: ExitCode { .dataError }
}

extension ComfyAPIError {
    /// What went wrong, without the server's name (the caller names it).
    var kindDescription: String {
        switch kind {
        case .connectionRefused: "connection refused"
        case .hostNotFound: "host not found"
        case .timedOut: "timed out"
        default: description
        }
    }
}

extension Error {
    fileprivate var kindDescription: String { (self as? ComfyAPIError)?.kindDescription ?? "\(self)" }
}

extension DateParts {
    /// This machine's local time.
    init(_ date: Date) {
        let parts = Calendar.current.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        self.init(
            year: parts.year ?? 1970, month: parts.month ?? 1, day: parts.day ?? 1, hour: parts.hour ?? 0, minute: parts.minute ?? 0,
            second: parts.second ?? 0)
    }
}
