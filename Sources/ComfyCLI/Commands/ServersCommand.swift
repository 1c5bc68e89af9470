import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Serve
import Runner

/// `comfyq servers [--json]`, `comfyq servers start|stop|restart NAME`
enum ServersCommand {
    static let spec = CommandSpec(
        name: "servers",
        abstract: "Show the servers' health, or start, stop or restart a supervised one.",
        discussion: """
            Without an action: every server of the servers file (and of a run going on), each with
            its state and since when, URL, ComfyUI version, GPU and free VRAM, prompts in flight
            (from the queue) and waiting in its own queue, restarts, the last error and, for a
            supervised server, the end of its log. A state comes from the run that uses the server
            when one is going, else from asking the server now (up or down).

            start|stop|restart NAME act on a supervised server (one with a command): through the
            run that supervises it when there is one, else directly (a server started here keeps
            running after this command; a later run uses it).
            """,
        arguments: [
            ArgumentSpec("action", help: "start, stop or restart (none: show the servers).", optional: true, completion: .words(["start", "stop", "restart"])),
            ArgumentSpec("name", help: "The server (an entry's name acts on all its instances).", optional: true, completion: .servers),
        ],
        options: [
            .flag("json", help: "Print one JSON document (schema 1)."),
            .flag("names", help: "Print only the servers file's server names, one a line (for shell completion)."),
            ServersConfig.option,
            JobFiles.dbOption,
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let loaded = try ServersConfig.load(arguments, console)
        if arguments.flag("names") {
            for server in loaded?.file.servers ?? [] { console.print(server.name) }
            return .success
        }
        let queue = try JobFiles.openQueue(arguments, console)
        guard let action = arguments.positionals.first else { return try await show(loaded, queue: queue, arguments, console) }
        guard ["start", "stop", "restart"].contains(action) else {
            throw UsageError("unknown action '\(action)' (actions: start, stop, restart)", command: spec)
        }
        guard arguments.positionals.count == 2 else { throw UsageError("\(action) needs the server's name", command: spec) }
        let definitions = try ServersConfig.resolve([arguments.positionals[1]], in: loaded, what: "servers \(action)")
        var failed = false
        for definition in definitions {
            guard definition.isSupervised else {
                throw CommandFailure("\(definition.name) has no command in the servers file: comfyq only watches it, and cannot \(action) it")
            }
            do {
                console.print(try await control(definition, action: action, queue: queue, console))
            } catch {
                console.printError("Error: \(error)")
                failed = true
            }
        }
        return failed ? .failure : .success
    }

    // MARK: Showing

    struct Row {
        var definition: ServerDefinition
        var view: ServerView?
        var state: String
        var stats: SystemStats?
        var queued: Int?
        var error: String?
        var logTail: [String]
        var log: String?
    }

    static func show(_ loaded: (file: ServersFile, path: String)?, queue: Queue, _ arguments: ParsedArguments, _ console: Console) async throws
        -> ExitCode
    {
        let now = JobFiles.now
        let views = try ServerView.read(queue, now: now)
        var definitions = loaded?.file.servers ?? []
        for view in views where view.isLive && !definitions.contains(where: { $0.name == view.record.name }) {
            definitions.append(ServerDefinition(name: view.record.name, url: view.record.url))
        }
        if definitions.isEmpty {
            definitions = [ServerDefinition(name: console.defaultServer, url: console.defaultServer)]
        }
        let stateFolder = ServerFiles.stateFolder(environment: console.environment, home: console.home)
        // Every server is asked at once: a dead one costs its timeout only once.
        let rows = await withTaskGroup(of: (Int, Row).self) { group in
            for (offset, definition) in definitions.enumerated() {
                let view = views.first { $0.record.name == definition.name }
                group.addTask {
                    let api = ComfyAPI(baseURL: URL(string: definition.url)!, timeout: 3)
                    var row = Row(definition: definition, view: view, state: "down", logTail: [])
                    do {
                        row.stats = try await api.systemStats()
                        row.queued = try await api.queue().pending.count
                        row.state = "up"
                    } catch {
                        // Something that answers but is not ComfyUI is not "down".
                        if case .notComfyUI? = (error as? ComfyAPIError)?.kind { row.state = "not ComfyUI" }
                        row.error = "\(error)"
                    }
                    if let view, view.isLive {
                        row.state = view.record.state
                        if !view.record.reason.isEmpty, view.record.state != "up" { row.error = view.record.reason }
                    } else if let view, view.stoppedBy != nil, row.stats == nil {
                        // Not answering because the last run stopped it on purpose: not "down".
                        row.state = "stopped"
                        row.error = nil
                    }
                    if definition.isSupervised {
                        let files = ServerFiles(stateFolder: stateFolder, name: definition.name)
                        row.log = files.log
                        row.logTail = files.logTail(5)
                    }
                    return (offset, row)
                }
            }
            var rows: [(Int, Row)] = []
            for await row in group { rows.append(row) }
            return rows.sorted { $0.0 < $1.0 }.map(\.1)
        }
        if arguments.flag("json") {
            console.print(JSONValue.object(["schema": 1, "servers": .array(rows.map { json($0, now: now) })]).serialized(pretty: true))
            return .success
        }
        for row in rows { console.writeOut(text(row, now: now)) }
        return .success
    }

    static func text(_ row: Row, now: Double) -> String {
        var out = "\(row.definition.name)  \(row.state)"
        if let view = row.view, view.isLive { out += " for \(QueueDocuments.duration(now - view.record.since))" }
        if row.state == "stopped", let stopped = row.view?.stoppedBy { out += " (\(stopped))" }
        out += "  \(row.definition.url)\(row.definition.isSupervised ? "  (supervised)" : "")\n"
        if let stats = row.stats {
            var line = "  ComfyUI \(stats.comfyUIVersion ?? "?")"
            if let device = stats.devices.first {
                line += ", \(device.name), \(gigabytes(device.vramFree)) of \(gigabytes(device.vramTotal)) free"
            }
            out += line + "\n"
        }
        let inFlight = row.view?.inFlight ?? 0
        out += "  in flight \(inFlight)" + (row.queued.map { ", queued there \($0)" } ?? "")
        if let view = row.view, view.isLive { out += ", restarts \(view.record.restarts)" }
        out += "\n"
        if let error = row.error { out += "  last error: \(error)\n" }
        if let view = row.view, !view.isLive, view.record.run != nil {
            out += "  last run: \(view.lastRunSummary)\n"
            for incident in view.record.incidents.suffix(5) { out += "    \(ServerView.incidentLine(incident))\n" }
        }
        if let log = row.log {
            out += "  log: \(log)\n"
            for line in row.logTail { out += "    | \(line)\n" }
        }
        return out
    }

    static func gigabytes(_ bytes: Int64) -> String { String(format: "%.1f GB", Double(bytes) / 1_000_000_000) }

    static func json(_ row: Row, now: Double) -> JSONValue {
        let device = row.stats?.devices.first
        var object: JSONObject = [
            "name": .string(row.definition.name), "url": .string(row.definition.url), "state": .string(row.state),
            "supervised": .bool(row.definition.isSupervised),
            "version": row.stats?.comfyUIVersion.map { .string($0) } ?? .null, "gpu": device.map { .string($0.name) } ?? .null,
            "vram_total": device.map { .int(Int($0.vramTotal)) } ?? .null, "vram_free": device.map { .int(Int($0.vramFree)) } ?? .null,
            "in_flight": .int(row.view?.inFlight ?? 0), "queued_there": row.queued.map { .int($0) } ?? .null,
            "last_error": row.error.map { .string($0) } ?? .null, "log": row.log.map { .string($0) } ?? .null,
            "log_tail": .array(row.logTail.map { .string($0) }),
        ]
        if let view = row.view, view.isLive {
            object["since"] = .double(view.record.since)
            object["runner_pid"] = view.record.runnerPID.map { .int($0) } ?? .null
        } else {
            object["since"] = row.state == "stopped" ? row.view.map { .double($0.record.since) } ?? .null : .null
            object["runner_pid"] = .null
        }
        // The count of the run that uses it, or used it last (null: no run has).
        object["restarts"] = row.view.map { .int($0.record.restarts) } ?? .null
        for (key, value) in row.view?.lastRunJSON ?? ["run": .null, "incidents": [], "stopped_by": .null, "stopped_at": .null] { object[key] = value }
        return .object(object)
    }

    // MARK: Acting

    /// Starts, stops or restarts one supervised server: through its run when one holds its lock,
    /// else here.
    static func control(_ definition: ServerDefinition, action: String, queue: Queue, _ console: Console) async throws -> String {
        let files = ServerFiles(stateFolder: ServerFiles.stateFolder(environment: console.environment, home: console.home), name: definition.name)
        guard let lock = try ServerLock.acquire(files) else {
            let request = try queue.requestServer(definition.name, action: action, now: JobFiles.now)
            _ = try await waitFor(seconds: 10) { try queue.isRequestPending(request) ? nil : true }
            if try queue.isRequestPending(request) {
                throw CommandFailure("\(definition.name): its supervisor holds \(files.lock) but did not take the request within 10 s")
            }
            return "\(definition.name): asked the run that supervises it to \(action) it"
        }
        defer { withExtendedLifetime(lock) {} }
        let process = ServerProcess(files: files)
        let api = ComfyAPI(baseURL: URL(string: definition.url)!, timeout: 3)
        let adopted = process.adopt()
        if action == "stop" || action == "restart" {
            if adopted {
                process.stop(graceful: true, now: clock())
                let gone = try await waitFor(seconds: process.gracePeriod + 5) { process.poll(now: clock()) != nil || !process.isRunning ? true : nil }
                if gone == nil { throw CommandFailure("\(definition.name): pid \(process.pid ?? 0) did not stop") }
            } else if action == "stop" {
                if try await answers(api, definition) {
                    throw CommandFailure("\(definition.name) answers at \(definition.url) but comfyq did not start it (no \(files.pid)): stop it where it was started")
                }
                return "\(definition.name): not running"
            }
            if action == "stop" { return "\(definition.name): stopped" }
        } else if adopted {
            return "\(definition.name): already running (pid \(process.pid ?? 0)) at \(definition.url)"
        }
        if try await answers(api, definition) { return "\(definition.name): already up at \(definition.url) (not started by comfyq)" }
        guard let launch = definition.launch else { throw CommandFailure("\(definition.name) has no command") }
        do {
            try process.launch(launch, name: definition.name, environment: console.environment)
        } catch {
            throw CommandFailure("\(definition.name): \(error)")
        }
        let started = clock()
        let answered = try await waitFor(seconds: launch.startTimeout) { () async -> Bool? in
            if process.poll(now: clock()) != nil { return false }
            return (try? await api.systemStats()) != nil ? true : nil
        }
        switch answered {
        case true?:
            return "\(definition.name): up at \(definition.url) in \(String(format: "%.1f", clock() - started)) s (pid \(process.pid ?? 0)), log \(files.log)"
        case false?:
            let tail = files.logTail(5).joined(separator: "\n  | ")
            throw CommandFailure("\(definition.name): its process ended before it answered; log \(files.log):\n  | \(tail)")
        case nil:
            process.stop(graceful: false, now: clock())
            throw CommandFailure("\(definition.name): did not answer within \(Int(launch.startTimeout)) s; stopped it; log \(files.log)")
        }
    }

    static let epoch = ContinuousClock.now
    static func clock() -> Double { (ContinuousClock.now - epoch).seconds }

    /// Whether ComfyUI answers at the server's URL (false: nothing does); something else holding
    /// its port is an error naming it, not "not running".
    static func answers(_ api: ComfyAPI, _ definition: ServerDefinition) async throws -> Bool {
        do {
            _ = try await api.systemStats()
            return true
        } catch {
            if case .notComfyUI = error.kind {
                let port = api.baseURL.port.map { "port \($0)" } ?? definition.url
                throw CommandFailure("\(definition.name): \(port) is held by something that is not ComfyUI (\(error))")
            }
            return false
        }
    }

    /// Polls `probe` until it gives a value or `seconds` pass (then nil).
    static func waitFor<T>(seconds: Double, _ probe: () async throws -> T?) async throws -> T? {
        let deadline = clock() + seconds
        while clock() < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await probe()
    }
}
