import ComfyCore
import Foundation
import QueueStore
import Serve

/// `comfyq status [JOB] [--failed] [--running] [--json] [--watch]`
enum StatusCommand {
    static let spec = CommandSpec(
        name: "status", abstract: "Show the queue: jobs, running items, failures.",
        discussion: """
            Without a job: one line per job (counts, progress, ETA) and one per running item. With a
            job: its items. --json prints one document (schema 1); --watch redraws until Ctrl-C.
            """,
        arguments: [ArgumentSpec("job", help: "Show this job's items (name or #id).", optional: true, completion: .jobs)],
        options: [
            .flag("failed", help: "Only failed items."),
            .flag("running", help: "Only running items."),
            .flag("json", help: "Print one JSON document (schema 1)."),
            .flag("names", help: "Print only the jobs' names, one a line (for shell completion)."),
            .flag("watch", help: "Redraw on every change, and every second, until Ctrl-C (plain snapshots when not a terminal)."),
            JobFiles.dbOption,
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let queue = try JobFiles.openQueue(arguments, console)
        if arguments.flag("names") {
            for job in try queue.jobs() { console.print(job.name) }
            return .success
        }
        if arguments.flag("watch") && !arguments.flag("json") {
            while !Task.isCancelled {
                let text = try render(queue, arguments, console)
                if console.outputIsTerminal {
                    console.writeOut("\u{1B}[H\u{1B}[2J" + text)
                } else {
                    console.writeOut(text + "\n")
                }
                // Redrawn when the queue changes (at once on PostgreSQL, which notifies; SQLite is
                // looked at every 100 ms), and every second or two anyway for the clocks.
                _ = try queue.waitForChange(timeout: console.outputIsTerminal ? 1 : 2)
            }
            return .success
        }
        if arguments.flag("json") {
            console.print(try json(queue, arguments).serialized(pretty: true))
        } else {
            console.writeOut(try render(queue, arguments, console))
        }
        return .success
    }

    static func states(_ arguments: ParsedArguments) -> [ItemState] {
        var states: [ItemState] = []
        if arguments.flag("failed") { states.append(.failed) }
        if arguments.flag("running") { states += [.submitting, .running] }
        return states
    }

    static func selectedJob(_ queue: Queue, _ arguments: ParsedArguments) throws -> JobSummary? {
        guard let reference = arguments.positionals.first else { return nil }
        do { return try queue.job(named: reference.hasPrefix("#") ? String(reference.dropFirst()) : reference) } catch {
            throw CommandFailure("\(error)")
        }
    }

    // MARK: Text

    static func render(_ queue: Queue, _ arguments: ParsedArguments, _ console: Console) throws -> String {
        let color = console.usesColor
        let now = JobFiles.now
        let held = try queue.held()
        if let job = try selectedJob(queue, arguments) {
            var out = summaryLine(job, color: color) + "\n"
            if let entry = held[job.id] { out += heldLine(job, entry) + "\n" }
            for item in try queue.items(states: states(arguments), jobID: job.id) { out += itemLine(item, now: now) + "\n" }
            return out
        }
        let jobs = try queue.jobs()
        let servers = try ServerView.read(queue, now: now)
        let runners = try RunnerView.read(queue, now: now)
        let paused = RunnerView.pausedLines(runners, now: now)
        if jobs.isEmpty { return paused + "the queue is empty\n" + ServerView.section(servers, now: now) }
        let waiting = ServerView.waitingForAServer(servers)
        var out = paused + "JOB                      PENDING RUNNING    DONE  FAILED CANCEL  PROGRESS                   ETA\n"
        let filter = states(arguments)
        let groups = Dictionary(grouping: try queue.pendingGroups(), by: \.jobID)
        for job in jobs {
            out += summaryLine(job, color: color, waiting: waiting) + "\n"
            if let entry = held[job.id] { out += heldLine(job, entry) + "\n" }
            if let line = modelLine(groups[job.id] ?? []) { out += line + "\n" }
        }
        let running = try queue.items(states: filter.isEmpty ? [.submitting, .running] : filter.filter { !$0.isFinished }, limit: 200)
        for item in running { out += itemLine(item, now: now, servers: servers) + "\n" }
        if filter.isEmpty || filter.contains(.failed) {
            let failed = try queue.items(states: [.failed], limit: filter.contains(.failed) ? nil : 20)
            for item in failed { out += itemLine(item, now: now) + "\n" }
        }
        return out + RunnerView.section(runners, now: now) + ServerView.section(servers, now: now)
    }

    /// A job's held items: how many, and why no server can run them (the first one's reason).
    static func heldLine(_ job: JobSummary, _ entry: HeldItems) -> String {
        "  held: \(entry.count) item\(entry.count == 1 ? "" : "s") no server can run: \(entry.reason) (released when a server can; comfyq retry \(job.name) once fixed)"
    }

    /// What a job's pending items load, when that is more than one model: the groups in the
    /// order of their first item, with their counts; each is a load on a server.
    static func modelLine(_ groups: [DispatchPolicy.Group]) -> String? {
        guard groups.count > 1 else { return nil }
        let sorted = groups.sorted { $0.firstIndex < $1.firstIndex }
        let shown = sorted.prefix(4).map { "\(Self.shortKey($0.modelKey)) ×\($0.waiting)" }.joined(separator: ", ")
        let more = sorted.count > 4 ? ", … \(sorted.count - 4) more" : ""
        return "  waiting by model: \(shown)\(more) (\(sorted.count) loads on one server)"
    }

    /// A model key as a status line shows it: the file names, without the input names.
    static func shortKey(_ key: ModelKey?) -> String {
        guard let key else { return "unknown" }
        if key.description.isEmpty { return "no model" }
        return key.description.split(separator: " + ").map { $0.split(separator: "=", maxSplits: 1).last.map(String.init) ?? String($0) }.joined(separator: " + ")
    }

    static func summaryLine(_ job: JobSummary, color: Bool, waiting: Bool = false) -> String {
        let fraction = job.total == 0 ? 0 : Double(job.finished) / Double(job.total)
        let width = 20
        let filled = Int((fraction * Double(width)).rounded(.down))
        var bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
        if color { bar = (job.counts[.failed] ?? 0) > 0 ? "\u{1B}[33m\(bar)\u{1B}[0m" : "\u{1B}[32m\(bar)\u{1B}[0m" }
        let remaining = (job.counts[.pending] ?? 0) + job.running
        var eta = job.isFinished ? "done" : "-"
        if let average = job.averageItemSeconds, remaining > 0 { eta = QueueDocuments.duration(average * Double(remaining)) }
        if waiting && remaining > 0 { eta = "waiting for a server" }
        let name = ProgressFormat.pad("\(job.name) (#\(job.id))", 24)
        func count(_ state: ItemState) -> String { ProgressFormat.pad(String(job.counts[state] ?? 0), 7, right: true) }
        return "\(name) \(count(.pending)) \(ProgressFormat.pad(String(job.running), 7, right: true)) \(count(.done)) \(count(.failed)) \(count(.cancelled))  \(bar) \(ProgressFormat.pad("\(Int(fraction * 100))%", 4, right: true))  \(eta)"
    }

    static func itemLine(_ item: ItemRow, now: Double, servers: [ServerView] = []) -> String {
        let name = "\(item.jobName)/\(item.index)"
        switch item.state {
        case .failed:
            return "  \(ProgressFormat.pad(name, 22)) failed after \(item.attempts) attempt\(item.attempts == 1 ? "" : "s"): \(item.error ?? "unknown error")"
        case .running, .submitting:
            if let server = servers.first(where: { $0.record.name == item.server }), server.isLive, server.record.state != "up" {
                // Its progress is stale: say what it waits for instead.
                return "  \(ProgressFormat.pad(name, 22)) \(ProgressFormat.pad(item.server ?? "-", 22)) waiting: the server is \(server.record.state) since \(QueueDocuments.duration(now - server.record.since))"
            }
            var line = "  \(ProgressFormat.pad(name, 22)) \(ProgressFormat.pad(item.server ?? "-", 22)) \(ProgressFormat.pad(item.phase ?? item.state.rawValue, 9))"
            if let step = item.step, let steps = item.steps, item.phase == "sampling" { line += " step \(step)/\(steps)" }
            if let fraction = item.fraction { line += " \(Int(fraction * 100))%" }
            if let started = item.startedAt { line += " \(QueueDocuments.duration(now - started))" }
            return line
        default:
            return "  \(ProgressFormat.pad(name, 22)) \(item.state.rawValue)  \(item.parameters)"
        }
    }

    // MARK: JSON

    /// `status --json`: the document `/api/status` of `comfyq serve` serves too.
    static func json(_ queue: Queue, _ arguments: ParsedArguments) throws -> JSONValue {
        try QueueDocuments.status(queue, job: try selectedJob(queue, arguments), states: states(arguments))
    }
}
