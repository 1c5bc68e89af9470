import ComfyClient
import ComfyCore
import Dispatch
import Foundation
import HTTPServer
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket

/// `comfyq run [JOB…]`
enum RunCommand {
    static let spec = CommandSpec(
        name: "run",
        abstract: "Run the queue on ComfyUI servers until it is empty (adding JOB files first).",
        discussion: """
            Each server gets up to --concurrency prompts in flight; the next item goes to a server
            with a free slot. Ctrl-C once: finish what is in flight and submit nothing new; twice:
            interrupt in-flight prompts, put them back in the queue, and stop. Safe to kill at any
            moment: the next run reconciles what was in flight and runs nothing twice.
            """,
        arguments: [
            ArgumentSpec(
                "job", help: "Job files, workflows (API or UI format) or pictures ComfyUI saved (PNG, WebP, FLAC) to add before running.",
                optional: true, variadic: true)
        ],
        options: [
            .value(
                "server", name: "name|url", completion: .servers,
                help: "A server from the servers file (a name, or an entry's name for all its instances)\nor a URL (default: the jobs' servers, else every server in the servers file,\nelse http://127.0.0.1:8188).",
                repeatable: true),
            ServersConfig.option,
            .value("concurrency", name: "n", help: "Prompts in flight per server (default 2)."),
            .value(
                "order", name: "models|strict", completion: .words(["models", "strict"]),
                help: "models (default): each server takes work for the model it has loaded, so a sweep\nacross checkpoints loads each once per server; strict: exactly queue order."),
            .value("max-defer", name: "duration", help: "Longest an item may be overtaken for a loaded model (default 10m)."),
            .flag("watch", help: "Keep running and pick up items added later."),
            .value("serve", name: "addr:port", help: "Also serve the queue in a browser from this process, e.g. 127.0.0.1:8190 (see comfyq serve)."),
            .flag("simulate", help: "Start a simulated ComfyUI on a free port (a supervised comfyq simulate) and use it."),
            .flag("overwrite", help: "Replace existing output files instead of adding -1, -2."),
            .value("space-check", name: "duration", help: "While paused by a full disk, how often to check the free space (default 30s)."),
            .value("lease", name: "duration", help: "Take over another run's items when it has not beaten for this long (default 30s)."),
            .flag("no-preflight", help: "Do not check pending items against each server's node definitions before submitting."),
            .flag("json-events", help: "Print every transition and completion as one JSON object a line (schema 1)."),
            ServerChecks.headerOption,
            .value("ca-file", name: "path", help: "Trust the PEM certificates in this file for wss://."),
            .flag("insecure", help: "Do not verify wss:// certificates (self-signed test setups only)."),
            JobFiles.dbOption,
        ] + HookFiles.options + JobSources.options + JobSources.followUpOptions,
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        // UI-format workflows among the jobs convert with the servers' node definitions.
        var definitions: NodeDefinitionsSource?
        if arguments.flag("simulate") {
            // The simulator this run starts has these definitions (it is not up yet to ask).
            definitions = NodeDefinitionsSource(try NodeDefinitions(objectInfo: NodeCatalog.objectInfo()), origin: "the simulator")
        } else if ServerChecks.mayNeedDefinitions(jobPaths: arguments.positionals) {
            definitions = try await ServerChecks.fetch(arguments, jobPaths: arguments.positionals, command: spec, console: console).forConversion
        }
        var sweeps = try JobSources(arguments, command: spec)
        if sweeps.from != nil { try sweeps.resolveFollowUp(try JobFiles.openQueue(arguments, console)) }
        let specs = try JobFiles.load(arguments.positionals, sweeps: sweeps, definitions: definitions)
        for note in specs.flatMap(\.notes) { console.printError("note: \(note)") }
        if arguments.flag("print-job") {
            try JobFiles.printJobs(arguments.positionals, sweeps: sweeps, console: console)
            return .success
        }
        let concurrency = Int(arguments.value("concurrency") ?? "2") ?? 0
        guard concurrency >= 1 else { throw UsageError("--concurrency must be a whole number of at least 1", command: spec) }
        let dispatch = try dispatchPolicy(arguments)
        let headers = try ServerChecks.headers(arguments, command: spec)
        // Servers are settled before anything is added: a wrong name loses nothing.
        let servers = try chooseServers(arguments, specs: specs, console: console)
        let queue = try JobFiles.openQueue(arguments, console)
        let display = RunDisplay(console: console, json: arguments.flag("json-events"))
        // Hooks load before anything is added or submitted: a broken script stops the run here.
        let hooks = try await loadHooks(arguments, specs: specs, queue: queue, console: console, display: display)
        let jobs = specs.map { ($0, $0.expand(random: JobFiles.random)) }
        // The files are checked against the servers before they are queued, as `add` does: a job
        // no server can run is refused (exit 65) and never joins the queue.
        if !jobs.isEmpty && !arguments.flag("simulate") && !arguments.flag("no-preflight") {
            let lines = try await ServerChecks.withDefinitions(arguments, jobPaths: arguments.positionals, command: spec, console: console) { fetched in
                fetched.answered.isEmpty ? [fetched.skippedLine] : try ServerChecks.preflight(jobs, fetched: fetched)
            }
            for line in lines { console.printError(line) }
        }
        for (spec, items) in jobs {
            try queue.add(try JobFiles.withHookSources(spec), items: items, now: JobFiles.now)
            console.printError("added job \(spec.name): \(items.count) item\(items.count == 1 ? "" : "s")")
        }

        var options = RunnerOptions(definitions: servers)
        options.concurrency = concurrency
        options.dispatch = dispatch
        options.watch = arguments.flag("watch")
        options.overwrite = arguments.flag("overwrite")
        options.headers = headers
        options.tls = TLSOptions(verifyPeer: !arguments.flag("insecure"), caFile: arguments.value("ca-file"))
        options.hooks = hooks
        options.environment = console.environment
        options.version = ComfyQ.version
        if !arguments.flag("no-preflight") { options.preflight = ObjectInfoCache(environment: console.environment, home: console.home) }
        if let text = arguments.value("lease") {
            guard let seconds = Durations.parse(text), seconds >= 6 else {
                throw UsageError("--lease must be a duration of at least 6s (a run beats every 5 s, or a third of the lease), such as 30s or 2m, got '\(text)'", command: spec)
            }
            options.lease = seconds
        }
        if let text = arguments.value("space-check") {
            guard let seconds = Durations.parse(text), seconds > 0 else {
                throw UsageError("--space-check must be a duration such as 30s, got '\(text)'", command: spec)
            }
            options.spaceCheckInterval = seconds
        }
        options.stateFolder = ServerFiles.stateFolder(environment: console.environment, home: console.home)
        if arguments.flag("simulate") {
            // Its log and lock live with its outputs: two demos at once are two servers.
            options.stateFolder = simulatorFolder + "/state"
            console.printError("simulated ComfyUI at \(servers[0].url), started and supervised by this run")
        }
        let path = arguments.value("db") ?? Queue.defaultPath(environment: console.environment, home: console.home)
        let reports = ReportWriter(databasePath: path)
        options.reports = reports
        let runner = try Runner(queuePath: path, options: options)
        var web: HTTPServer?
        if let listen = arguments.value("serve") {
            let (server, url) = try ServeCommand.start(
                listen: listen, token: nil, databasePath: path, option: "--serve", command: spec, intake: CommandLineIntake(arguments: arguments, console: console))
            web = server
            console.printError("serving the queue at \(url)")
        }
        defer { web?.stop() }

        let printer = Task {
            for await event in runner.events { display.show(event) }
        }
        let signals = interrupts(runner, console: console)
        let summary = await runner.run()
        await printer.value
        // Each job whose items finished in this run has its page (kept up to date as they
        // finished) and, now, its contact sheet.
        for report in await reports.finish() {
            let sheets = report.contactSheets.map { ($0 as NSString).lastPathComponent }
            let shown = sheets.count <= 3 ? sheets.joined(separator: ", ") : "\(sheets[0]) … \(sheets.last!), \(sheets.count) sheets"
            console.printError("report: \(report.page)" + (sheets.isEmpty ? "" : " (contact sheet\(sheets.count == 1 ? "" : "s") \(shown))"))
        }
        for warning in reports.warnings { console.printError("warning: \(warning)") }
        if arguments.flag("simulate"), FileManager.default.fileExists(atPath: simulatorFolder) {
            // The simulated server has stopped; its copies of the outputs and its log go with it.
            do { try FileManager.default.removeItem(atPath: simulatorFolder) } catch {
                console.printError("warning: could not remove the simulator's folder \(simulatorFolder): \(error.localizedDescription)")
            }
        }
        for script in hooks?.scripts ?? [] {
            let stats = script.stats
            guard stats.failures > 0 || stats.dropped > 0 else { continue }
            var line = "hook \(script.name): \(stats.calls) call\(stats.calls == 1 ? "" : "s"), \(stats.failures) failed"
            if script.isDisabled { line += " (disabled)" }
            if stats.dropped > 0 { line += ", \(stats.dropped) progress event\(stats.dropped == 1 ? "" : "s") dropped while it was behind" }
            console.printError(line)
        }
        for source in signals { source.cancel() }
        switch summary.stopReason {
        case .noServerAnswers(let urls)?:
            throw CommandFailure("no server answers: \(urls.joined(separator: ", ")) (see comfyq doctor)")
        case .noServerLeft(let reasons)?:
            let pending = try queue.jobs().reduce(0) { $0 + ($1.counts[.pending] ?? 0) }
            throw CommandFailure(
                "no server left, \(pending) item\(pending == 1 ? "" : "s") still pending: " + reasons.joined(separator: "; "))
        case .queueFailed(let reason)?:
            throw CommandFailure("\(PostgresDatabase.displayed(path)): \(reason)")
        default:
            guard summary.failed == 0 && summary.stopReason == nil else { return .failure }
            guard summary.held == 0 else {
                for (id, held) in try queue.held().sorted(by: { $0.key < $1.key }) where options.jobIDs?.contains(id) ?? true {
                    console.printError("held: \(held.job) (#\(id)): \(held.count) item\(held.count == 1 ? "" : "s"): \(held.reason)")
                }
                console.printError("held items run once a server can run them (a run checks again), or after comfyq retry JOB")
                return .held
            }
            return .success
        }
    }

    /// `--order` and `--max-defer`.
    static func dispatchPolicy(_ arguments: ParsedArguments) throws -> DispatchPolicy {
        var policy = DispatchPolicy()
        if let text = arguments.value("order") {
            guard let order = DispatchPolicy.Order(rawValue: text) else {
                throw UsageError("--order must be models or strict, got '\(text)'", command: spec)
            }
            policy.order = order
        }
        if let text = arguments.value("max-defer") {
            guard let seconds = Durations.parse(text), seconds >= 0 else {
                throw UsageError("--max-defer must be a duration such as 10m or 90s, got '\(text)'", command: spec)
            }
            policy.maxDefer = seconds
        }
        return policy
    }

    /// `--simulate`, else `--server` (names or URLs), else the jobs' servers, else every server
    /// of the servers file, else ComfyUI's default address.
    static func chooseServers(_ arguments: ParsedArguments, specs: [JobSpec], console: Console) throws -> [ServerDefinition] {
        if arguments.flag("simulate") { return [try simulatorServer()] }
        let loaded = try ServersConfig.load(arguments, console)
        if !arguments.values("server").isEmpty { return try ServersConfig.resolve(arguments.values("server"), in: loaded, what: "--server", command: spec) }
        let named = specs.flatMap(\.servers)
        if !named.isEmpty { return try ServersConfig.resolve(named, in: loaded, what: "a job's servers entry") }
        if let loaded, !loaded.file.servers.isEmpty { return loaded.file.servers }
        return try ServersConfig.resolve([console.defaultServer], in: nil, what: "--server")
    }

    /// `--simulate`: the simulator's outputs and its state (log, lock), removed when the run ends.
    static let simulatorFolder = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-simulator-\(getpid())").path

    /// `--simulate`: the simulator as a supervised server (`comfyq simulate` on a free port,
    /// started and stopped by the run), so a demo goes through the same code as a real night.
    static func simulatorServer() throws -> ServerDefinition {
        let port = try FreePort.find()
        let output = simulatorFolder + "/output"
        let argv = [
            FreePort.executable, "simulate", "--port", String(port), "--output", output, "--step-time", "20ms", "--load-time", "300ms",
            "--warm-up", "50ms", "--parent", String(getpid()),
        ]
        return ServerDefinition(
            name: "simulator", url: "http://127.0.0.1:\(port)", launch: ServerDefinition.Launch(argv: argv, startTimeout: 30))
    }

    /// Every hook script for this run: the jobs' own (for their events only), `--hook` files and
    /// the user's hooks folder (for every job). All load problems are reported together.
    static func loadHooks(_ arguments: ParsedArguments, specs: [JobSpec], queue: Queue, console: Console, display: RunDisplay) async throws -> HookSet? {
        var sources: [HookSet.Source] = []
        var jobHooks: [(job: String, hooks: [HookReference])] = specs.map { ($0.name, $0.hooks) }
        let queued = try queue.hooksOfUnfinishedJobs()
        jobHooks += queued.hooks
        for line in queued.unreadable { console.printError("warning: \(line)") }
        for (job, references) in jobHooks {
            for reference in references {
                // A job added elsewhere runs the script as it was added (see `JobFiles.hookPath`).
                let path = try JobFiles.hookPath(reference, environment: console.environment)
                sources.append(HookSet.Source(path: path, jobs: [job], options: reference.options))
            }
        }
        for path in arguments.values("hook") { sources.append(HookSet.Source(path: path)) }
        if !arguments.flag("no-user-hooks") {
            for path in HookFiles.userScripts(console.environment) { sources.append(HookSet.Source(path: path)) }
        }
        sources = HookSet.merge(sources)
        guard !sources.isEmpty else { return nil }
        try HookFiles.applyOptions(arguments, to: &sources, command: spec)
        let settings = try HookFiles.settings(arguments, command: spec)
        let environment = HookEnvironment(variables: console.environment) { display.hookLog($0) }
        do {
            let hooks = try await HookSet.load(sources, settings: settings, environment: environment)
            let names = hooks.scripts.map(\.name).joined(separator: ", ")
            console.printError("hooks: \(names)")
            return hooks
        } catch {
            throw CommandFailure(error.description)
        }
    }

    /// Ctrl-C once drains, twice stops.
    static func interrupts(_ runner: Runner, console: Console) -> [DispatchSourceSignal] {
        Signals.handle { _ in
            Task { await runner.interrupt() }  // drains, or stops when already draining
        }
    }
}
