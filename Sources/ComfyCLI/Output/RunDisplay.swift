import ComfyCore
import Foundation
import Serve
import Hooks
import Runner

/// Shows a run: a live block redrawn in place on a terminal, one line per event otherwise, or
/// JSON lines with `--json-events`.
final class RunDisplay: @unchecked Sendable {
    let console: Console
    let json: Bool
    /// Runner events and hook log lines arrive from different threads.
    private let lock = NSLock()
    private var live: [String: (server: String, snapshot: ProgressSnapshot)] = [:]
    private var done = 0
    private var failed = 0
    /// Items pending when the run started (the live view's total).
    private var total = 0
    private var serverStates: [String: ServerState] = [:]
    private var pausedReason: String?
    private var drawnLines = 0
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private let started = ContinuousClock.now

    init(console: Console, json: Bool) {
        self.console = console
        self.json = json
    }

    /// A line a hook script logged (or the host about a script), above the live block.
    func hookLog(_ line: HookLogLine) {
        lock.lock()
        defer { lock.unlock() }
        if json {
            console.printError(HookFiles.line(line))
        } else {
            log(HookFiles.line(line))
            redraw()
        }
    }

    func show(_ event: RunnerEvent) {
        lock.lock()
        defer { lock.unlock() }
        if json {
            if let line = jsonLine(event) { console.print(line) }
            switch event {
            case .finished(let summary): console.printError(Self.summaryLine(summary))
            // What the run has to say beyond the events (took over, lost, pre-flight…) goes to
            // standard error, as hook logs do: standard output stays one event a line.
            case .message(let text): console.printError(text)
            default: break
            }
            return
        }
        switch event {
        case .transition(let item, let server, let update):
            live[item] = update.snapshot.phase.isTerminal ? nil : (server, update.snapshot)
            if !console.outputIsTerminal, let transition = update.transition {
                var line = "\(item)  \(transition.from) → \(transition.to)  (\(server))"
                if case .failed(let failure)? = update.snapshot.outcome { line += "  \(failure)" }
                log(line)
            }
        case .progress(let item, let server, let update):
            live[item] = (server, update.snapshot)
        case .completed(let item, _, let outputs, let seconds):
            live[item] = nil
            done += 1
            log("\(item)  done in \(String(format: "%.1f", seconds)) s: \(outputs.joined(separator: ", "))")
        case .failed(let item, _, let error, let willRetry):
            live[item] = nil
            if !willRetry { failed += 1 }
            log("\(item)  \(willRetry ? "will retry" : "failed"): \(error)")
        case .skipped(let item, let script):
            live[item] = nil
            log("\(item)  skipped by \(script)")
        case .held(let job, let items, let reason):
            log("\(job): \(items) item\(items == 1 ? "" : "s") held, no server can run \(items == 1 ? "it" : "them"): \(reason)")
        case .released(let job, let items):
            log("\(job): \(items) held item\(items == 1 ? "" : "s") released: a server can run \(items == 1 ? "it" : "them") now")
        case .submitted(let item, let server, let attempt):
            if !console.outputIsTerminal { log("\(item)  submitted to \(server)\(attempt > 1 ? " (attempt \(attempt))" : "")") }
        case .inputs(let item, let server, let inputs):
            let fresh = inputs.filter { $0["uploaded"]?.boolValue == true }.compactMap { $0["path"]?.stringValue }
            if !fresh.isEmpty { log("\(item)  uploaded to \(server): \(fresh.joined(separator: ", "))") }
        case .serverState(let server, let state): log("\(server): \(state)")
        case .server(let report):
            serverStates[report.server] = report.state
            log(report.line)
            if report.state == .givenUp || report.state == .restarting || report.state == .down, let tail = report.logTail, !tail.isEmpty {
                for line in tail.suffix(3) { log("    | \(line)") }
            }
        case .message(let text): log(text)
        case .paused(let reason, let folder, let needed):
            pausedReason = reason
            log("PAUSED: \(reason); nothing more is submitted, and what is done waits on its server. Resumes by itself once \(ServersCommand.gigabytes(needed)) are free in \(folder).")
        case .resumed(let seconds):
            pausedReason = nil
            log("resumed after \(QueueDocuments.duration(seconds)) paused")
        case .started(let pending, let servers):
            total = pending
            for server in servers where serverStates[server] == nil { serverStates[server] = .checking }
            log("running \(pending) pending item\(pending == 1 ? "" : "s") on \(servers.joined(separator: ", "))")
        case .finished(let summary):
            clearLive()
            console.printError(Self.summaryLine(summary))
            return
        }
        redraw()
    }

    /// `done 12/40, failed 1, in flight 2, 9.5 items/min, ETA 3 min, servers up 2/3`
    var totalLine: String {
        let elapsed = ContinuousClock.now - started
        let minutes = max(1e-9, elapsed.seconds / 60)
        let rate = Double(done) / minutes
        let up = serverStates.values.filter { $0 == .up }.count
        var line = "done \(done)/\(max(total, done + failed)), failed \(failed), in flight \(live.count), \(String(format: "%.1f", rate)) items/min"
        let remaining = max(0, total - done - failed)
        if up == 0 && !serverStates.isEmpty {
            line += ", ETA: waiting for a server"
        } else if rate > 0 && remaining > 0 {
            line += ", ETA " + QueueDocuments.duration(Double(remaining) / rate * 60)
        }
        line += ", servers up \(up)/\(serverStates.count)"
        if pausedReason != nil { line = "PAUSED (disk full)  " + line }
        return line
    }

    static func summaryLine(_ summary: RunSummary) -> String {
        var line = "finished: \(summary.done) done, \(summary.failed) failed"
        if summary.retried > 0 { line += ", \(summary.retried) retried" }
        if summary.skipped > 0 { line += ", \(summary.skipped) skipped by hooks" }
        if summary.held > 0 { line += ", \(summary.held) held (no server can run them)" }
        line += " in \(String(format: "%.1f", summary.seconds)) s"
        if let reason = summary.stopReason { line += " (\(reason))" }
        return line
    }

    /// A line above the live block.
    private func log(_ line: String) {
        if console.outputIsTerminal {
            clearLive()
            console.print(line)
        } else {
            console.print(line)
        }
    }

    private func clearLive() {
        guard console.outputIsTerminal, drawnLines > 0 else { return }
        console.writeOut(String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawnLines))
        drawnLines = 0
    }

    private func redraw() {
        guard console.outputIsTerminal, ContinuousClock.now - lastDraw > .milliseconds(100) else { return }
        lastDraw = ContinuousClock.now
        clearLive()
        var lines: [String] = []
        for (item, entry) in live.sorted(by: { $0.key < $1.key }) {
            let snapshot = entry.snapshot
            let width = 20
            let filled = Int(snapshot.fraction * Double(width))
            var line = "  \(ProgressFormat.pad(item, 20)) \(ProgressFormat.pad(entry.server, 24)) \(ProgressFormat.pad(snapshot.phase.rawValue, 9))"
            if snapshot.phase == .sampling { line += " sampler \(snapshot.sampler)/\(snapshot.samplers) step \(snapshot.step)/\(snapshot.steps)" }
            line += " [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] \(snapshot.percent)%"
            lines.append(line)
        }
        lines.append("  " + totalLine)
        console.writeOut(lines.joined(separator: "\n") + "\n")
        drawnLines = lines.count
    }

    private func jsonLine(_ event: RunnerEvent) -> String? {
        var object: JSONObject = ["schema": 1]
        switch event {
        case .transition(let item, let server, let update):
            object["event"] = "transition"
            object["item"] = .string(item)
            object["server"] = .string(server)
            object["prompt_id"] = .string(update.snapshot.promptID)
            object["from"] = .string(update.transition?.from.rawValue ?? "")
            object["to"] = .string(update.snapshot.phase.rawValue)
            object["fraction"] = .double(update.snapshot.fraction)
            if case .failed(let failure)? = update.snapshot.outcome { object["error"] = .string("\(failure)") }
        case .completed(let item, let server, let outputs, let seconds):
            object["event"] = "completed"
            object["item"] = .string(item)
            object["server"] = .string(server)
            object["outputs"] = .array(outputs.map { .string($0) })
            object["seconds"] = .double(seconds)
        case .inputs(let item, let server, let inputs):
            object["event"] = "inputs"
            object["item"] = .string(item)
            object["server"] = .string(server)
            object["inputs"] = .array(inputs)
        case .failed(let item, let server, let error, let willRetry):
            object["event"] = "failed"
            object["item"] = .string(item)
            object["server"] = server.map { .string($0) } ?? .null
            object["error"] = .string(error)
            object["will_retry"] = .bool(willRetry)
        case .skipped(let item, let script):
            object["event"] = "skipped"
            object["item"] = .string(item)
            object["by"] = .string(script)
        case .server(let report):
            object["event"] = "server"
            object["server"] = .string(report.server)
            object["url"] = .string(report.url)
            object["state"] = .string(report.state.rawValue)
            object["previous_state"] = .string(report.previousState.rawValue)
            object["reason"] = .string(report.reason)
            object["restarts"] = .int(report.restarts)
            if let downFor = report.downFor { object["down_for"] = .double((downFor * 1000).rounded() / 1000) }
            if let tail = report.logTail { object["log_tail"] = .array(tail.map { .string($0) }) }
            if let log = report.log { object["log"] = .string(log) }
        case .paused(let reason, let folder, let needed):
            object["event"] = "pause"
            object["reason"] = .string(reason)
            object["folder"] = .string(folder)
            object["needed_bytes"] = .int(Int(needed))
        case .resumed(let seconds):
            object["event"] = "resume"
            object["paused_for"] = .double((seconds * 1000).rounded() / 1000)
        case .held(let job, let items, let reason):
            object["event"] = "held"
            object["job"] = .string(job)
            object["items"] = .int(items)
            object["reason"] = .string(reason)
        case .released(let job, let items):
            object["event"] = "released"
            object["job"] = .string(job)
            object["items"] = .int(items)
        case .finished(let summary):
            object["event"] = "finished"
            object["skipped"] = .int(summary.skipped)
            object["done"] = .int(summary.done)
            object["failed"] = .int(summary.failed)
            object["retried"] = .int(summary.retried)
            object["held"] = .int(summary.held)
            object["seconds"] = .double(summary.seconds)
        default:
            return nil
        }
        return JSONValue.object(object).serialized()
    }
}
