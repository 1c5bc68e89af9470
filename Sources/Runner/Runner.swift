import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import WebSocket

/// Runs the queue: takes pending items, submits them to ComfyUI servers with bounded
/// concurrency, follows each through the progress engine, downloads outputs, and records every
/// step durably, so a crash at any moment loses nothing and runs nothing twice.
///
/// Every queue change is a guarded transition (`Queue.claimNext`, `finish`, …). On start, items
/// a previous run left in flight are reconciled with their servers: finished there → collected,
/// still queued or running → followed again, unknown → submitted again.
public actor Runner {
    /// The runner's work waits on its database and its files: it runs on a queue of its own,
    /// not on the threads every other task in the process shares (see `BlockingExecutor`).
    private nonisolated let executor = BlockingExecutor(label: "comfyq.runner")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    public nonisolated let events: AsyncStream<RunnerEvent>
    let continuation: AsyncStream<RunnerEvent>.Continuation
    let options: RunnerOptions
    let queue: Queue
    var servers: [ServerSlot] = []
    /// What the runner keeps about each prompt in flight (its graph, item, timings…).
    var inFlight: [String: InFlight] = [:]
    /// Where each prompt in flight stands, and what to do as things happen to it.
    var flights = FlightMachine() { didSet { wakeEndWaiter() } }
    /// Ctrl-C once (or twice): nothing new is claimed.
    var draining: Bool { !flights.claims }
    /// Ctrl-C twice.
    var stopped: Bool { flights.mode == .stopping }
    var done = 0
    var failed = 0
    var retried = 0
    var skipped = 0
    /// Failed items for `on_batch_done` (the first 100).
    var failures: [JSONValue] = []
    /// What the clock finds to do, and the crashes each item was running at.
    var watchdog = Watchdog()
    /// A preview could not be written (said once).
    var previewWriteFailed = false
    /// Per item: how often its server was found to have lost its uploaded inputs.
    var inputRetries: [Int64: Int] = [:]
    /// Hashing and reading input files, off the runner's executor and the cooperative pool.
    let files = FileWork()
    /// Input files hashed this run, by path, with the size and time they had (see `hash`).
    var inputHashes: [String: (size: Int64, modified: Double, sha256: String)] = [:]
    /// How this run's items name it in the queue (`host/pid#N`; see `newOwner`).
    let owner: String
    /// Where the queue is (a file, or a PostgreSQL URL).
    let queuePath: String
    /// `--watch` on PostgreSQL: hears other processes' commits.
    var listener: QueueListener?
    /// When this run last looked for items of runs that have gone.
    var lastAdoption: Double = 0
    /// A look for them is under way (clock work).
    var adopting = false
    /// Prompts with clock work under way (a verify, a cancel…): one at a time each.
    var clockBusy: Set<String> = []
    /// When server rows were last written to the queue (a heartbeat for other processes).
    var lastServerWrite: Double = 0
    /// Prompts whose POST is under way (the run waits for them before it ends, including those
    /// taken back meanwhile, which the flight machine no longer holds).
    var posting: Set<String> = [] { didSet { wakeEndWaiter() } }
    /// Set while the run is paused (a full disk, a queue that cannot be written).
    var paused: Pause?
    /// The queue failed for good (see `queueFailed`): the run ends with this reason.
    var queueBroken: String?
    /// The largest output saved so far: resuming needs room for at least this much.
    var largestOutput: Int64 = 0
    /// Forgets and wakes for the connections, run in order by one task.
    let connectionCommands: AsyncStream<ConnectionCommand>.Continuation
    private let commands: AsyncStream<ConnectionCommand>
    /// Servers whose process just exited (by index), from the processes' waiter threads.
    let processExits: AsyncStream<Int>.Continuation
    private let exits: AsyncStream<Int>
    /// `on_idle` was sent and nothing has been claimed since.
    private var idleAnnounced = false
    private let clock = ContinuousClock.now
    private var finish: CheckedContinuation<RunSummary, Never>?
    /// The run's tasks (event forwarders, lanes, probers, the clock, the clock's work, output
    /// collections) are children of one task group, started with `spawn`; the run awaits them
    /// before it returns. None is cancelled: each ends when its stream finishes or, for the
    /// clock, when the run has ended. (Cancelling a task inside a URLSession call can deadlock
    /// swift-corelibs-foundation: the cancellation handler waits on the session's queue while
    /// the session, completing the same request, waits on the task's status lock. Seen in the
    /// stop tests.)
    nonisolated let children: AsyncStream<@Sendable () async -> Void>.Continuation
    private let spawned: AsyncStream<@Sendable () async -> Void>
    /// Every child of the run has ended (see `children`).
    var childrenDone = false
    /// The run's end waits for this (see `waitForEnd`).
    var endWaiter: (condition: EndCondition, continuation: CheckedContinuation<Void, Never>)?
    /// Where the run is in its life (see `RunPhase`).
    var phase = RunPhase.starting
    /// Items of the run's jobs held by pre-flight (no server can run them), as last counted.
    var heldItems = 0
    /// When the servers' definitions were last fetched again for the held items.
    var lastDefinitionsRefresh: Double = 0

    public init(queuePath: String, options: RunnerOptions) throws {
        self.options = options
        self.queuePath = queuePath
        queue = try Queue(path: queuePath)
        owner = Self.newOwner()
        queue.owner = owner
        (events, continuation) = AsyncStream.makeStream(of: RunnerEvent.self)
        (commands, connectionCommands) = AsyncStream.makeStream(of: ConnectionCommand.self)
        (exits, processExits) = AsyncStream.makeStream(of: Int.self)
        (spawned, children) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
    }

    /// Starts a child of the run's task group (see `children`).
    nonisolated func spawn(_ child: @escaping @Sendable () async -> Void) { children.yield(child) }

    var now: Double {
        let elapsed = ContinuousClock.now - clock
        return elapsed.seconds
    }

    var wallClock: Double { Date().timeIntervalSince1970 }

    // MARK: Life

    /// Runs until the queue is empty (or forever with `watch`), then returns what happened.
    public func run() async -> RunSummary {
        Self.setRunning(owner, true)
        defer { Self.setRunning(owner, false) }
        Self.removeStalePreviews(in: options.stateFolder + "/previews", now: wallClock)
        let spawned = spawned
        Task { [weak self] in
            await withDiscardingTaskGroup { group in
                for await child in spawned { group.addTask(operation: child) }
            }
            await self?.childrenEnded()
        }
        makeSlots()
        let exits = exits
        spawn { [weak self] in for await index in exits { await self?.processEnded(index) } }
        let commands = commands
        spawn {
            for await command in commands {
                switch command {
                case .forget(let promptID, let connection): await connection.forget(promptID)
                case .confirm(let promptID, let connection): await connection.confirm(promptID)
                case .wake(let connection): await connection.wake()
                case .useJobsAPI(let available, let connection): await connection.useJobsAPI(available)
                }
            }
        }
        // Health first: a server that does not answer gets nothing until it does.
        guard await firstLook() else {
            return await finishRun(RunSummary(done: 0, failed: 0, retried: 0, seconds: now, stopReason: .noServerAnswers(servers.map(\.definition.url))))
        }
        for (index, slot) in servers.enumerated() {
            await slot.connection.start()
            let events = slot.connection.events
            spawn { [weak self] in
                for await event in events { await self?.handle(event, server: index) }
            }
        }
        var pending = 0
        do {
            pending = try queue.pendingGroups(jobIDs: options.jobIDs).reduce(0) { $0 + $1.waiting }
        } catch {
            queueFailed(error, doing: "read")
        }
        continuation.yield(.started(pending: pending, servers: servers.map(\.name)))
        persistRunner()  // the run is in the queue from its start (status, drain), then beats every 5 s
        options.hooks?.deliver(
            .batch(
                .batchStart,
                [
                    "pending": .int(pending), "servers": .array(servers.map { .string($0.name) }), "concurrency": .int(options.concurrency),
                    "watch": .bool(options.watch), "started_at": .double(wallClock),
                ]))
        await reconcile()
        preflightAtStart()
        lastDefinitionsRefresh = now
        if options.watch && queue.database.dialect == .postgres {
            let listener = QueueListener(url: queuePath)
            self.listener = listener
            spawn { [weak self] in for await _ in listener.changes { await self?.queueChanged() } }
        }
        spawn { [weak self] in
            // The next tick, or sooner when a server's restart or start deadline is due. The tick
            // decides; what it decided that needs a server runs beside the clock, as a child of
            // the run's group.
            while let delay = await self?.nextTickDelay() {
                try? await Task.sleep(for: .seconds(delay))
                guard let runner = self else { break }
                let work = await runner.tick()
                for item in work { runner.spawn { [weak runner] in await runner?.perform(item) } }
            }
        }
        refill()
        let summary = await withCheckedContinuation { (continuation: CheckedContinuation<RunSummary, Never>) in
            self.finish = continuation
            self.checkFinished()
        }
        // A POST still under way is let finish, so what gets through is recorded or cancelled;
        // what is being taken off a server or collected is let end (within 15 s).
        for slot in servers { slot.lane.finish() }
        await waitForEnd(.settled, timeout: 15)
        for slot in servers { await slot.connection.stop() }
        return await finishRun(summary)
    }

    /// `on_batch_done`, then a bounded wait for every script to finish what it was sent.
    func finishHooks(_ summary: RunSummary) async {
        let reports = await options.reports?.finish() ?? []
        guard let hooks = options.hooks else { return }
        var table = batchTable(summary)
        table["reports"] = .array(
            reports.map { report in
                var entry: JSONObject = ["job": .string(report.job), "page": .string(report.page)]
                if let sheet = report.contactSheet { entry["contact_sheet"] = .string(sheet) }
                entry["contact_sheets"] = .array(report.contactSheets.map { .string($0) })
                return .object(entry)
            })
        hooks.deliver(.batch(.batchDone, table))
        let busy = await hooks.finish(timeout: options.hookDrainTimeout)
        for name in busy {
            continuation.yield(.message("hook \(name): still busy after \(String(format: "%g", options.hookDrainTimeout)) s; its remaining events are dropped"))
        }
    }

    /// Ctrl-C while draining (or a second time): stop now.
    public func interrupt() async {
        if draining { await stop() } else { drain() }
    }

    /// Ctrl-C once (or `comfyq drain`): finish what is in flight, submit nothing new.
    public func drain(askedBy who: String = "Ctrl-C") {
        _ = flights.handle(.drain)
        let count = "\(inFlight.count) prompt\(inFlight.count == 1 ? "" : "s")"
        continuation.yield(.message("draining (\(who)): finishing \(count) in flight, submitting nothing new (Ctrl-C to stop now)"))
        checkFinished()
    }

    /// Ctrl-C twice: what was not sent yet goes back to the queue at once; what the servers
    /// have is taken off them and settled (see `FlightMachine`): collected if it finished first,
    /// put back if not, left for the next run to reconcile if its server does not answer.
    public func stop() async {
        await perform(flights.handle(.stop))
        checkFinished(reason: .stoppedByUser)
    }

    /// Asks `RunEnd` whether the run ends now, and does what it says. `reason`, when given,
    /// is the one to report if it does (Ctrl-C twice).
    func checkFinished(reason: StopReason? = nil) {
        guard finish != nil else { return }
        // Whether items wait matters only once nothing is in flight: asked then, not after every prompt.
        let pending = queueBroken == nil && inFlight.isEmpty && hasPending()
        // Asking the queue may have ended the run already (a queue that failed for good).
        guard let finish else { return }
        let left = serversLeft
        let end = RunEnd(
            inFlight: inFlight.count, watch: options.watch, mode: flights.mode, pending: pending,
            serversGone: left.any ? nil : left.reasons, queueBroken: queueBroken, idleAnnounced: idleAnnounced)
        switch end.decide() {
        case .keepGoing:
            return
        case .announceIdle:
            idleAnnounced = true
            if let hooks = options.hooks, hooks.wants(.idle) { hooks.deliver(.batch(.idle, batchCounts())) }
        case .finish(let why):
            self.finish = nil
            phase = max(phase, .ending)
            countHeld()
            finish.resume(
                returning: RunSummary(
                    done: done, failed: failed, retried: retried, skipped: skipped, held: heldItems, seconds: now, stopReason: reason ?? why))
        }
    }

    private func hasPending() -> Bool {
        do {
            // Items waiting, or items a run that looks gone holds until its lease runs out: this
            // run takes those over then, rather than end and leave them in flight. (Held items,
            // which no server can run, are not waiting: a run without --watch ends with them.)
            return try queue.hasPending(jobIDs: options.jobIDs)
                || queue.hasOrphansSoon(quiet: Self.quiet, now: wallClock, isAlive: Self.isAlive, local: Self.isRunning)
        } catch {
            // Unknown is not "nothing pending" (the run would end with items queued).
            queueFailed(error, doing: "read")
            return true
        }
    }

    // MARK: Submitting

    /// How old the pending summary dispatch plans from may be when other runs have written
    /// since: with several runs on one queue, each committing all the time, reading it after
    /// every one of their commits costs a scan of the pending items per prompt. Claims stay
    /// exact; a job another process adds is seen within this long.
    static let othersMaxAge: Double = 0.25

    /// Fills every available server's free slots from the queue, as the dispatch policy
    /// chooses (priority, then what each server has loaded; see `DispatchPolicy`).
    func refill() {
        guard !draining, paused == nil else { return }
        // A claim can find its group emptied by another runner: plan again, a few times at most.
        for _ in 0..<4 {
            // A server whose node definitions are still to come (pre-flight) gets nothing yet.
            var slots = servers.indices.map { index in
                DispatchPolicy.Server(
                    freeSlots: servers[index].health.acceptsWork(at: now) && !needsDefinitions(index)
                        ? max(0, freeSlots(index)) : 0,
                    loaded: servers[index].loaded)
            }
            guard slots.contains(where: { $0.freeSlots > 0 }) else { return }
            let plan: [DispatchPolicy.Assignment]
            do {
                let groups = try queue.pendingGroups(jobIDs: options.jobIDs, othersMaxAge: Self.othersMaxAge)
                for index in slots.indices where slots[index].freeSlots > 0 { slots[index].excluded = excludedGroups(groups, for: index) }
                plan = options.dispatch.plan(groups: groups, servers: &slots, now: wallClock)
            } catch {
                // Unknown is not "nothing to claim".
                queueFailed(error, doing: "read")
                return
            }
            var missed = false
            for assignment in plan {
                let claimed: ClaimedItem?
                do {
                    claimed = try queue.claim(
                        assignment.group, server: servers[assignment.server].name, promptID: UUID().uuidString.lowercased(), now: wallClock)
                } catch {
                    // A claim that fails is not "nothing to claim".
                    queueFailed(error, doing: "written")
                    return
                }
                guard let claimed else {
                    missed = true
                    continue
                }
                servers[assignment.server].loaded = assignment.group.modelKey
                start(claimed, on: assignment.server)
                idleAnnounced = false
            }
            guard missed else { return }
        }
    }

    private func freeSlots(_ server: Int) -> Int {
        (servers[server].definition.concurrency ?? options.concurrency) - inFlight.values.filter { $0.server == server }.count
    }

    private func start(_ claimed: ClaimedItem, on server: Int) {
        let item = claimed.item
        guard let promptID = item.promptID else { return }
        let flight: InFlight
        do {
            flight = try makeInFlight(claimed, on: server)
        } catch {
            record { try queue.finish(item.id, promptID: promptID, state: .failed, error: error.description, now: wallClock) }
            failed += 1
            continuation.yield(.failed(item: "\(item.jobName)/\(item.index)", server: servers[server].name, error: error.description, willRetry: false))
            return
        }
        inFlight[promptID] = flight
        continuation.yield(.submitted(item: flight.label, server: servers[server].name, attempt: item.attempts))
        // Submissions to one server leave in the order they were chosen: one lane per server.
        apply(flights.handle(.claimed(promptID, server: server)))
    }

    // MARK: Hooks

    func hookPrompt(_ flight: InFlight) -> HookPrompt {
        HookPrompt(
            job: flight.jobName, item: flight.index, promptID: flight.promptID, server: servers[flight.server].name, params: flight.parameters,
            attempt: flight.attempts, preview: flight.preview)
    }

    /// Why a table of `on_submit` overrides cannot apply to the graph (nil when it can).
    static func problem(in overrides: JSONObject, resolver: AddressResolver) -> String? {
        for (written, value) in overrides {
            switch resolver.resolve(written) {
            case .failure(let problem): return "override \(JSONValue.string(written).serialized()): \(problem.message)"
            case .success(let address):
                if let reason = resolver.typeProblem(value, for: address) { return "override \(JSONValue.string(written).serialized()): \(reason)" }
            }
        }
        return nil
    }

    /// Prompts the run holds anything about: in flight here, in the flight machine, or followed
    /// by a connection. Zero once a batch is done, however long the run.
    func retainedPromptCount() async -> Int {
        var count = inFlight.count + flights.flights.count
        for slot in servers { count += await slot.connection.retainedPromptCount }
        return count
    }

    /// Its outputs are being collected (history, downloads), or wait to be: the engine's job is done.
    func isCollecting(_ promptID: String) -> Bool { flights.isPastTheEngine(promptID) }

    /// Ends a prompt's flight here and in the machine; returns what was kept about it.
    @discardableResult
    func removeFlight(_ promptID: String) -> InFlight? {
        _ = flights.handle(.ended(promptID))
        let flight = inFlight.removeValue(forKey: promptID)
        if let preview = flight?.preview { Self.removePreview(preview) }
        return flight
    }

    /// Keeps a failed item for `on_batch_done` (the first 100).
    func listFailure(_ flight: InFlight, _ failure: String) {
        options.reports?.itemFinished(job: flight.jobName, index: flight.index)
        guard failures.count < 100 else { return }
        failures.append(["job": .string(flight.jobName), "item": .int(flight.index), "prompt_id": .string(flight.promptID), "error": .string(failure)])
    }

    private func batchCounts() -> JSONObject {
        var held: [HeldItems] = []
        do {
            held = try queue.held().sorted { $0.key < $1.key }.filter { options.jobIDs?.contains($0.key) ?? true }.map(\.value)
        } catch {
            queueFailed(error, doing: "read")
        }
        return [
            "done": .int(done), "failed": .int(failed), "retried": .int(retried), "skipped": .int(skipped),
            "held": .int(held.reduce(0) { $0 + $1.count }),
            "held_jobs": .array(held.map { ["job": .string($0.job), "items": .int($0.count), "reason": .string($0.reason)] }),
            "elapsed": .double(HookEvent.rounded(now)),
        ]
    }

    private func batchTable(_ summary: RunSummary) -> JSONObject {
        var table = batchCounts()
        table["failures"] = .array(failures)
        table["servers"] = .array(servers.map { .string($0.name) })
        table["finished_at"] = .double(wallClock)
        if let reason = summary.stopReason { table["stop_reason"] = .string(reason.description) }
        return table
    }


    /// Ends a prompt that did not succeed: back to the queue while retries last, else failed.
    func end(_ promptID: String, _ why: ItemFailure) {
        guard let flight = removeFlight(promptID) else { return }
        let failure = why.description
        // A transient failure as the run stops goes back to the queue whatever the retries say:
        // the stop caused it, not the item.
        if why.isTransient && (flight.attempts <= flight.retries || stopped) {
            requeue(flight, reason: failure, hookFailure: why.hookFailure)
        } else {
            failForGood(flight, reason: failure, hookFailure: why.hookFailure)
        }
        refill()
        checkFinished()
    }

    /// A finished prompt: wait for its history (written just before the end message), download
    /// every output, write the sidecars, then mark the item done.
    func collect(_ promptID: String, api: ComfyAPI) async {
        var history: HistoryRecord?
        var unanswered: ComfyAPIError?
        var step = Watchdog.HistoryStep.readAgain(after: 0)
        for attempt in 0... {
            do {
                history = try await api.history(promptID)
                unanswered = nil
            } catch {
                unanswered = error
            }
            step = Watchdog.afterHistoryRead(attempt: attempt, hasOutcome: history?.outcome != nil, answered: unanswered == nil)
            guard case .readAgain(let delay) = step else { break }
            try? await Task.sleep(for: .seconds(delay))
        }
        guard let flight = inFlight[promptID] else { return }
        let files: [OutputFile]
        switch (step, history?.outcome) {
        case (.collect, .success(let outputs)?):
            files = outputs
        case (.awaitServer, _):
            // The server stopped answering with the outputs on it: collected once it is back.
            apply(flights.handle(.collectLater(promptID, .server)))
            servers[flight.server].probes.yield()
            continuation.yield(.message("\(flight.label): cannot read its history (\(unanswered.map { "\($0)" } ?? "no answer")); collecting it again when \(api.name) answers"))
            return
        default:
            end(promptID, .noHistory(server: api.name, promptID: promptID))
            return
        }
        // Paused (a full disk): it waits, done on its server, to be collected on resuming.
        guard paused == nil else {
            apply(flights.handle(.collectLater(promptID, .pause)))
            return
        }
        // Another run took it over (this one was silent past its lease): that run collects it,
        // and this one writes nothing of it.
        guard stillHeld(flight) else {
            refill()
            checkFinished()
            return
        }
        do {
            let saved = try await OutputWriter.save(files, for: flight, api: api, overwrite: options.overwrite, server: api.name)
            guard inFlight[promptID] != nil else { return }
            largestOutput = max(largestOutput, saved.map(\.size).max() ?? 0)
            // Which machine wrote each file: with a shared queue, outputs are where their run is.
            let host = ProcessInfo.processInfo.hostName
            let outputs: [JSONValue] = saved.map { ["path": .string($0.path), "size": .int(Int($0.size)), "host": .string(host)] }
            switch settle(flight, { try queue.finish(flight.itemID, promptID: promptID, state: .done, outputs: .array(outputs), timings: timingsJSON(flight), now: wallClock) }) {
            case .written: break
            case .unwritten:
                apply(flights.handle(.collectLater(promptID, .pause)))  // the queue could not say so: collected again on resuming
                return
            case .notOurs:
                refill()
                checkFinished()
                return
            }
            guard let current = removeFlight(promptID) else { return }
            done += 1
            options.reports?.itemFinished(job: current.jobName, index: current.index)
            servers[current.server].health.promptFinished()
            continuation.yield(.completed(item: current.label, server: api.name, outputs: saved.map(\.path), seconds: now - current.startedAt))
            if let hooks = options.hooks, hooks.wants(.complete) {
                hooks.deliver(
                    .prompt(
                        .complete, hookPrompt(current), snapshot: current.lastSnapshot, elapsed: now - current.startedAt, outputs: saved.map(\.path),
                        thumbnails: saved.compactMap(\.thumbnail), timings: current.timings))
            }
        } catch let error as OutputError where error.serverGone {
            // The server went away with the outputs on it: no fault of the item. Collected again
            // once it answers (or, if it lost its history, submitted again).
            apply(flights.handle(.collectLater(promptID, .server)))
            servers[flight.server].probes.yield()
            continuation.yield(.message("\(flight.label): \(error.message); collecting it again when \(api.name) answers"))
            return
        } catch let error as OutputError where error.outOfSpace {
            // A full disk pauses the night; it does not fail the item.
            apply(flights.handle(.collectLater(promptID, .pause)))
            pause(reason: error.message, folder: flight.outputFolder)
            return
        } catch {
            // A failed download fails the item with the path and the reason; the others go on.
            end(promptID, .output("\(error)"))
            return
        }
        refill()
        checkFinished()
    }

    /// Runs a queue write; a failure (a full disk, a locked database) is reported, not hidden,
    /// and pauses the run until the queue can be written again. Returns whether it was written.
    @discardableResult
    func record(_ write: () throws -> Bool) -> Bool {
        do {
            _ = try write()
            return true
        } catch {
            queueFailed(error, doing: "written")
            return false
        }
    }

    func timingsJSON(_ flight: InFlight) -> JSONValue {
        var object = JSONObject()
        for (phase, seconds) in flight.timings.sorted(by: { $0.key < $1.key }) { object[phase] = .double((seconds * 1000).rounded() / 1000) }
        return .object(object)
    }
}
