import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import WebSocket

/// One server of the run: its API, its WebSocket, its health machine and, when this run
/// supervises it, its process and lock.
struct ServerSlot {
    var definition: ServerDefinition
    var api: ComfyAPI
    /// The same server with a short timeout, for health probes.
    var probeAPI: ComfyAPI
    var connection: ServerConnection
    var health: ServerHealth
    /// Held while this run supervises the server; nil for a watched one.
    var lock: ServerLock?
    var process: ServerProcess?
    var files: ServerFiles?
    /// Wakes the server's prober task (one long-lived task per server).
    var probes: AsyncStream<Void>.Continuation
    /// Prompts to submit, in order: one long-lived task per server takes them one at a time.
    var lane: AsyncStream<String>.Continuation
    /// What `/system_stats` said last.
    var stats: SystemStats?
    /// What the last prompt sent to it loads (nil: nothing yet, or it went away since).
    var loaded: ModelKey?
    /// `max_upload_size` from its `/features`, asked before its first upload.
    var maxUploadSize: Int64?
    /// Its version and API (the jobs API of ComfyUI 0.38), probed each time it comes up.
    var features: ServerFeatures?
    /// Its node definitions and what it cannot run (pre-flight).
    var preflight = ServerPreflight.waiting
    /// Its definitions are to be fetched again with the next probe (items are held; it came back).
    var definitionsDue = false
    /// What happened to it in this run (restarts, given up, poison prompts), kept in the queue
    /// for `servers` and `status` after the run.
    var incidents: [ServerIncident] = []
    /// Whether to use the jobs API with it.
    var jobs: Bool { features?.jobs ?? false }

    var name: String { definition.name }

}

/// What the runner asks of a connection without waiting for it (one task runs these in order).
enum ConnectionCommand: Sendable {
    case forget(String, ServerConnection)
    /// The server has the prompt (a resync after a reconnect may look for it).
    case confirm(String, ServerConnection)
    case wake(ServerConnection)
    case useJobsAPI(Bool, ServerConnection)
}

/// What one health probe found.
enum ProbeResult: Sendable {
    /// With what it offers when that was asked too (once per time it comes up).
    case answered(SystemStats, ServerFeatures?, definitions: Result<NodeDefinitionsSource, ComfyAPIError>?)
    case failed(String, notComfyUI: Bool)
}

extension Runner {
    /// Makes a slot per server: supervised ones take their lock (another run on this machine
    /// may hold it: then this run only watches) and adopt a process a previous run left.
    func makeSlots() {
        var webSocket = WebSocketOptions()
        webSocket.headers = options.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        webSocket.tls = options.tls
        for definition in options.servers {
            let url = URL(string: definition.url)!
            let api = ComfyAPI(baseURL: url, headers: options.headers, timeout: 60)
            // Probes have a connection pool of their own (ComfyAPI keeps one session per
            // timeout): on a hung server, the run's other requests hold every pooled connection,
            // and a probe queued behind them would wait for their timeout instead of its own.
            let probeAPI = ComfyAPI(baseURL: url, headers: options.headers, timeout: min(10, max(1, definition.downAfter / 3)))
            let connection = ServerConnection(api: api, policy: options.policy, webSocket: webSocket)
            var lock: ServerLock?
            var process: ServerProcess?
            var files: ServerFiles?
            if definition.isSupervised {
                let serverFiles = ServerFiles(stateFolder: options.stateFolder, name: definition.name)
                files = serverFiles
                do {
                    lock = try ServerLock.acquire(serverFiles)
                } catch {
                    continuation.yield(.message("\(definition.name): \(error)"))
                }
                if lock != nil { process = ServerProcess(files: serverFiles) }
                let exits = processExits
                let index = servers.count
                process?.onExit = { exits.yield(index) }
            }
            var health = ServerHealth(policy: ServerHealth.Policy(definition, supervised: lock != nil), at: now)
            if let process, process.adopt() {
                health.adoptedProcess()
                continuation.yield(.message("\(definition.name): found its process (pid \(process.pid ?? 0)) from an earlier run"))
            } else if definition.isSupervised && lock == nil {
                continuation.yield(.message("\(definition.name): another comfyq on this machine supervises it; this run uses it as it is"))
            }
            let (requests, probes) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let (submissions, lane) = AsyncStream.makeStream(of: String.self)
            let index = servers.count
            servers.append(
                ServerSlot(
                    definition: definition, api: api, probeAPI: probeAPI, connection: connection, health: health, lock: lock, process: process,
                    files: files, probes: probes, lane: lane))
            spawn { [weak self] in for await promptID in submissions { await self?.submit(promptID, on: index) } }
            spawn { [weak self] in
                for await _ in requests {
                    let cache = await self?.definitionsCache(for: index)
                    let result = await Self.probe(
                        probeAPI, features: await self?.needsFeatures(index) ?? false, definitions: cache.map { ($0, definition.name, api) })
                    await self?.probed(index, result)
                }
            }
        }
    }

    /// `/system_stats`; with `features` whether the jobs API answers; with `definitions` the
    /// server's node definitions (fetched afresh, for the models on its disk tonight, and cached
    /// for when it does not answer; with the full timeout: 300 KB and more).
    static func probe(_ api: ComfyAPI, features: Bool, definitions: (cache: ObjectInfoCache, name: String, api: ComfyAPI)? = nil) async -> ProbeResult {
        do {
            let stats = try await api.systemStats()
            var fetched: Result<NodeDefinitionsSource, ComfyAPIError>?
            if let definitions {
                do {
                    fetched = .success(try await definitions.cache.definitions(name: definitions.name, api: definitions.api, refresh: true))
                } catch {
                    fetched = .failure(error)
                }
            }
            guard features else { return .answered(stats, nil, definitions: fetched) }
            return .answered(stats, ServerFeatures(version: stats.comfyUIVersion, jobs: try await api.hasJobsAPI()), definitions: fetched)
        } catch {
            if case .notComfyUI = error.kind {
                let port = api.baseURL.port.map { "port \($0)" } ?? api.name
                return .failed("\(port) is held by something that is not ComfyUI (\(error))", notComfyUI: true)
            }
            return .failed("\(error)", notComfyUI: false)
        }
    }

    /// The first look at every server, before anything is claimed: each is probed once (and a
    /// supervised one that does not answer is started). False when no server can ever run
    /// anything: every one is watched, and none answers.
    func firstLook() async -> Bool {
        for index in servers.indices {
            _ = servers[index].health.tick(at: now)  // the machine asks for its first probe
            let definitions = definitionsCache(for: index).map { ($0, servers[index].name, servers[index].api) }
            let result = await Self.probe(servers[index].probeAPI, features: true, definitions: definitions)
            probed(index, result)
        }
        return servers.contains { $0.health.state == .up || $0.health.state == .starting || $0.definition.isSupervised }
    }

    /// Whether the next probe should ask what the server offers too.
    func needsFeatures(_ index: Int) -> Bool { servers[index].features == nil }

    func probed(_ index: Int, _ result: ProbeResult) {
        guard phase < .stoppingServers else { return }
        switch result {
        case .answered(let stats, let features, let definitions):
            servers[index].stats = stats
            if let definitions { received(definitions, on: index) }
            if let features {
                if servers[index].features == nil {
                    continuation.yield(.message("\(servers[index].name): ComfyUI \(features.version ?? "of unknown version"), \(features.apiDescription)"))
                }
                servers[index].features = features
                let connection = servers[index].connection
                connectionCommands.yield(.useJobsAPI(features.jobs, connection))
            }
            perform(servers[index].health.probeSucceeded(at: now), on: index)
        case .failed(let reason, let notComfyUI):
            perform(servers[index].health.probeFailed(at: now, reason: reason, notComfyUI: notComfyUI), on: index)
        }
    }

    /// Seconds until the clock should look again: the tick, or a server's deadline if sooner.
    /// Seconds to the next tick; nil once the run has ended (the clock stops).
    func nextTickDelay() -> Double? {
        guard phase < .ended else { return nil }
        let deadlines = servers.compactMap(\.health.nextDeadline)
        guard let soonest = deadlines.min() else { return options.tick }
        return max(0.005, min(options.tick, soonest - now))
    }

    /// A process this run started has exited (its waiter thread says so at once).
    func processEnded(_ index: Int) {
        guard phase < .stoppingServers, let process = servers[index].process, process.isRunning, let exit = process.poll(now: now) else { return }
        perform(servers[index].health.processExited(at: now, description: exit), on: index)
    }

    /// The clock for servers: processes that exited, probes due, backoffs, start deadlines,
    /// locks another run let go of, log rotation and the heartbeat written to the queue.
    func superviseServers() {
        guard phase < .stoppingServers else { return }
        for index in servers.indices {
            if let process = servers[index].process, process.isRunning, let exit = process.poll(now: now) {
                perform(servers[index].health.processExited(at: now, description: exit), on: index)
            }
            if servers[index].definition.isSupervised, servers[index].lock == nil, let files = servers[index].files,
                servers[index].health.lockAttemptDue(at: now)
            {
                takeOverSupervision(index, files: files)
            }
            perform(servers[index].health.tick(at: now), on: index)
        }
        // `comfyq servers start|stop|restart` from another process, for servers this run supervises.
        let supervised = servers.filter { $0.lock != nil }.map(\.name)
        do {
            for request in try queue.takeServerRequests(for: supervised) {
                guard let index = servers.firstIndex(where: { $0.name == request.name }) else { continue }
                continuation.yield(.message("\(request.name): \(request.action) asked for"))
                switch request.action {
                case "start": perform(servers[index].health.start(at: now), on: index)
                case "stop": perform(servers[index].health.stop(at: now, keepRunning: false), on: index)
                case "restart": perform(servers[index].health.restart(at: now), on: index)
                default: continuation.yield(.message("\(request.name): unknown request \(request.action)"))
                }
            }
            // `comfyq drain` or serve's drain button, from another process.
            if !draining, try queue.takeDrainRequest(host: ProcessInfo.processInfo.hostName, pid: Int(getpid())) {
                drain(askedBy: "comfyq drain")
            }
        } catch {
            continuation.yield(.message("queue: \(error)"))
        }
        // The heartbeat: every 5 s, or a third of a shorter lease, so a live run is never taken for gone.
        if now - lastServerWrite >= min(5, options.lease / 3) {
            lastServerWrite = now
            for index in servers.indices {
                servers[index].process?.rotateLogIfNeeded()
                persist(index)
            }
            if paused?.queue != true { persistRunner() }
        }
    }

    /// The run that supervised this server has ended (or died): take its lock, and the
    /// process it left running, so the server is still looked after and stopped at the end.
    func takeOverSupervision(_ index: Int, files: ServerFiles) {
        let lock: ServerLock?
        do {
            lock = try ServerLock.acquire(files)
        } catch {
            continuation.yield(.message("\(servers[index].name): \(error)"))
            return
        }
        guard let lock else { return }
        let process = ServerProcess(files: files)
        let exits = processExits
        process.onExit = { exits.yield(index) }
        servers[index].lock = lock
        servers[index].process = process
        if process.adopt() { servers[index].health.adoptedProcess() }
        continuation.yield(.message("\(servers[index].name): its supervisor is gone; this run supervises it now"))
        perform(servers[index].health.setSupervised(true, at: now), on: index)
        persist(index)
    }

    /// Runs what a server's health machine decided.
    func perform(_ actions: [ServerHealth.Action], on index: Int) {
        for action in actions {
            switch action {
            case .probe:
                servers[index].probes.yield()
            case .launch:
                guard let process = servers[index].process, let launch = servers[index].definition.launch else {
                    perform(servers[index].health.launchFailed(at: now, reason: "this run does not supervise it"), on: index)
                    continue
                }
                do {
                    try process.launch(launch, name: servers[index].name, environment: options.environment)
                    servers[index].health.launched(at: now)
                } catch {
                    perform(servers[index].health.launchFailed(at: now, reason: error.description), on: index)
                }
            case .kill(let graceful):
                if let process = servers[index].process, process.isRunning {
                    process.stop(graceful: graceful, now: now)
                } else {
                    perform(servers[index].health.processExited(at: now, description: "was not running"), on: index)
                }
            case .requeueInFlight(let crashed):
                putBackInFlight(on: index, crashed: crashed)
            case .changed(let change):
                announce(change, on: index)
            }
        }
    }

    /// The server's process is gone with everything queued or running in it: back to the
    /// queue, not failed, since a server going away is no fault of the item; the item it was
    /// running at its second crash fails as a poison prompt, with the log's end (see `Watchdog`).
    func putBackInFlight(on index: Int, crashed: Bool) {
        let name = servers[index].name
        let stranded = inFlight.values.filter { $0.server == index }.map { flight in
            Watchdog.Stranded(
                id: flight.promptID, itemID: flight.itemID, startedAt: flight.startedAt,
                started: (flight.lastSnapshot?.phase ?? .queued) != .queued, collecting: isCollecting(flight.promptID))
        }
        for verdict in watchdog.serverWentAway(stranded, crashed: crashed) {
            switch verdict {
            case .submitAgain(let promptID):
                guard let flight = removeFlight(promptID) else { continue }
                connectionCommands.yield(.forget(promptID, servers[index].connection))
                requeue(flight, reason: "server \(name) went away (\(servers[index].health.reason)): submitting again")
            case .poison(let promptID):
                guard let flight = removeFlight(promptID) else { continue }
                connectionCommands.yield(.forget(promptID, servers[index].connection))
                let tail = servers[index].files?.logTail(5).filter { !$0.hasPrefix("==== comfyq") } ?? []
                var failure = "server \(name) crashed twice while running it"
                if !tail.isEmpty { failure += "; its log ends: " + tail.joined(separator: " | ") }
                noteIncident(.poison, failure, item: flight.label, on: index)
                failForGood(flight, reason: failure, hookFailure: HookFailure(message: failure))
            }
        }
    }

    /// A change of health: the run's output, `on_server`, the queue, and whatever it unblocks.
    func announce(_ change: ServerHealth.Change, on index: Int) {
        // A server that went away (or restarts) has nothing loaded when it is back.
        if change.to != .up {
            servers[index].loaded = nil
            // It may come back as another version: asked again then.
            servers[index].features = nil
            servers[index].maxUploadSize = nil
            // And other models or nodes: its definitions are fetched again by the probe that finds it up.
            if case .checked = servers[index].preflight { servers[index].definitionsDue = true }
        }
        switch change.to {
        case .restarting: noteIncident(.restart, change.reason, on: index)
        case .givenUp: noteIncident(.givenUp, change.reason, on: index)
        default: break
        }
        let slot = servers[index]
        let tail = slot.definition.isSupervised && change.to != .up ? slot.files?.logTail(10) : nil
        let report = ServerReport(
            server: slot.name, url: slot.definition.url, state: change.to, previousState: change.from, reason: change.reason,
            restarts: change.restarts, downFor: change.downFor, logTail: tail, log: slot.files?.log)
        continuation.yield(.server(report))
        if let hooks = options.hooks, hooks.wants(.server) {
            hooks.deliver(
                .server(
                    name: slot.name, url: slot.definition.url, state: change.to.rawValue, previousState: change.from.rawValue,
                    reason: change.reason, restarts: change.restarts, downFor: change.downFor, logTail: tail))
        }
        persist(index)
        if change.to == .up {
            connectionCommands.yield(.wake(slot.connection))
            refill()
        }
        checkFinished()
    }

    /// Keeps an incident of this run's on the server (the last 50).
    func noteIncident(_ kind: ServerIncident.Kind, _ reason: String, item: String? = nil, on index: Int) {
        servers[index].incidents.append(ServerIncident(at: wallClock, kind: kind, reason: reason, item: item))
        if servers[index].incidents.count > 50 { servers[index].incidents.removeFirst() }
    }

    /// Writes the server's row for `status` and `servers` in other processes; `restarts` is
    /// this run's count.
    func persist(_ index: Int) {
        let slot = servers[index]
        let device = slot.stats?.devices.first
        var row = ServerRecord(
            name: slot.name, url: slot.definition.url, state: slot.health.state.rawValue, since: wallClock - (now - slot.health.since),
            reason: slot.health.reason, restarts: slot.incidents.filter { $0.kind == .restart }.count, supervised: slot.lock != nil,
            log: slot.files?.log, version: slot.stats?.comfyUIVersion, gpu: device?.name, vramTotal: device?.vramTotal, vramFree: device?.vramFree,
            runnerPID: Int(getpid()), updatedAt: wallClock)
        row.run = owner
        row.incidents = slot.incidents
        record {
            try queue.record(row)
            return true
        }
    }

    /// Servers that can still run something; when none is left, why each is gone.
    var serversLeft: (any: Bool, reasons: [String]) {
        var reasons: [String] = []
        for slot in servers {
            switch slot.health.state {
            case .givenUp, .stopped:
                var reason = "\(slot.name) \(slot.health.state.rawValue): \(slot.health.reason)"
                if let log = slot.files?.log { reason += " (log: \(log))" }
                reasons.append(reason)
            default:
                return (true, [])
            }
        }
        return (false, reasons)
    }

    /// The end of the run: stop the processes this run started (unless `keep_running`), and
    /// wait for them to exit.
    func stopServers() async {
        phase = max(phase, .stoppingServers)
        // Prompts other runs have on a server are theirs to finish: it is left running for them
        // (the one that takes over its lock stops it when it ends).
        let elsewhere: [String: Int]
        do {
            elsewhere = try queue.inFlightCounts()
        } catch {
            continuation.yield(.message("queue: \(error)"))
            elsewhere = [:]
        }
        for index in servers.indices where servers[index].definition.isSupervised && servers[index].lock == nil {
            // A run that only watched may be the last one using the server: it looks after it now.
            if let files = servers[index].files, FileManager.default.fileExists(atPath: files.pid) {
                for _ in 0..<30 where servers[index].lock == nil {
                    takeOverSupervision(index, files: files)
                    if servers[index].lock == nil { try? await Task.sleep(for: .milliseconds(100)) }
                }
            }
        }
        var stopping: Set<Int> = []
        for index in servers.indices {
            let othersUseIt = (elsewhere[servers[index].name] ?? 0) > 0 && servers[index].process?.isRunning == true
            if othersUseIt { continuation.yield(.message("\(servers[index].name): left running: another run has prompts on it")) }
            let keep = (servers[index].definition.launch?.keepRunning ?? false) || othersUseIt
            let actions = servers[index].health.stop(at: now, keepRunning: keep)
            for action in actions {
                switch action {
                case .kill(let graceful):
                    servers[index].process?.stop(graceful: graceful, now: now)
                    stopping.insert(index)
                case .changed(let change): announce(change, on: index)
                default: break
                }
            }
            servers[index].probes.finish()
        }
        let deadline = now + 15
        while now < deadline, stopping.contains(where: { servers[$0].process?.isRunning == true }) {
            for index in stopping {
                if let process = servers[index].process, process.isRunning, process.poll(now: now) != nil { persist(index) }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        for index in servers.indices { persist(index) }
        do {
            try queue.removeRunner(host: ProcessInfo.processInfo.hostName, pid: Int(getpid()))
        } catch {
            continuation.yield(.message("queue: \(error)"))
        }
    }
}
