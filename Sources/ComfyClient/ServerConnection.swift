import ComfyCore
import Foundation
import WebSocket

/// What a server connection reports to its owner (the runner).
public enum ConnectionEvent: Sendable, Equatable {
    /// A followed prompt changed.
    case progress(ProgressUpdate)
    /// After a reconnect the server knows nothing of this prompt (it restarted and lost its
    /// queue): the owner decides whether to submit it again.
    case lost(promptID: String)
    case connected(attempt: Int)
    /// The WebSocket failed or dropped; the next attempt comes after `retryIn` seconds.
    case disconnected(reason: String, retryIn: Double)
    /// A preview of the image a prompt is sampling (servers started with `--preview-method`):
    /// event 4 names its prompt and node; an event 1 preview is the running prompt's.
    case preview(promptID: String, nodeID: String?, mimeType: String, image: [UInt8])
}

/// One ComfyUI server: the WebSocket, kept alive, feeding one `ProgressEngine` for every prompt
/// submitted through it. The shell around `ConnectionSupervisor` and the engine.
///
/// It keeps one clientId for its whole life and reconnects only after the old socket is fully
/// closed (ComfyUI drops a new socket whose predecessor with the same clientId closes after it).
/// After a reconnect it resyncs every followed prompt from `/queue` and `/history`, and it polls
/// `/history` for prompts that go silent, so a completion the WebSocket missed is still seen.
public actor ServerConnection {
    public let api: ComfyAPI
    /// Whether the server has the jobs API (set by the owner once it knows): a silent prompt's
    /// state is then asked with one `GET /api/jobs/{id}` instead of `/history/{id}`.
    private var jobs = false

    public func useJobsAPI(_ available: Bool) { jobs = available }
    public let clientID: String
    public nonisolated let events: AsyncStream<ConnectionEvent>

    private let continuation: AsyncStream<ConnectionEvent>.Continuation
    private let options: WebSocketOptions
    private var supervisor: ConnectionSupervisor
    private var engine = ProgressEngine()
    /// Prompts the server has accepted (their POST answered). Only these can be declared lost:
    /// a prompt tracked while its POST is still on the way is in neither /queue nor /history yet.
    private var confirmed: Set<String> = []
    private var decoder = EventStreamDecoder()
    private var socket: WebSocketClient?
    /// The clock task; one-shot work (connects, reconnect timers, resyncs, polls) is not kept,
    /// and checks `stopped` itself.
    private var ticker: Task<Void, Never>?
    private let epoch = ContinuousClock.now
    private var stopped = false

    public init(
        api: ComfyAPI, clientID: String = UUID().uuidString.lowercased(),
        policy: ConnectionSupervisor.Policy = ConnectionSupervisor.Policy(), webSocket options: WebSocketOptions = WebSocketOptions()
    ) {
        self.api = api
        self.clientID = clientID
        self.options = options
        supervisor = ConnectionSupervisor(policy: policy)
        (events, continuation) = AsyncStream.makeStream(of: ConnectionEvent.self)
    }

    /// Seconds since this connection was made: the engine's and the supervisor's clock.
    private var now: Double {
        let elapsed = ContinuousClock.now - epoch
        return elapsed.seconds
    }

    /// Connects and keeps the connection alive until `stop()`.
    public func start() {
        perform(supervisor.start())
        let interval = max(0.05, min(0.5, supervisor.policy.pollInterval, supervisor.policy.silenceBeforePolling) / 2)
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(interval))
                await self?.tick()
            }
        }
    }

    /// Starts following a prompt submitted to this server. `expectsMessages` is false for a
    /// prompt another client submitted (a run that crashed): its messages go to that client, so
    /// it is followed by polling `/history` every half second.
    @discardableResult
    public func track(
        _ promptID: String, plan: PromptPlan, weights: PhaseWeights = .default, expectsMessages: Bool = true
    ) -> ProgressSnapshot {
        supervisor.track(promptID, at: now, quietInterval: expectsMessages ? nil : 0.5)
        return engine.track(promptID, plan: plan, weights: weights, at: now)
    }

    /// The server accepted the prompt (`POST /prompt` answered 200), or it is known to be there.
    public func confirm(_ promptID: String) {
        if engine.isTracking(promptID) { confirmed.insert(promptID) }
    }

    /// Stops following a prompt (its item was given up or handled elsewhere).
    public func forget(_ promptID: String) {
        engine.forget(promptID)
        supervisor.forget(promptID)
        confirmed.remove(promptID)
    }

    /// The prompt was removed from the server's queue before it ran.
    public func cancelled(_ promptID: String) {
        if let update = engine.cancel(promptID, at: now) { emit(update) }
    }

    public func snapshot(of promptID: String) -> ProgressSnapshot? { engine.snapshot(of: promptID) }

    public var isConnected: Bool { supervisor.isOpen }

    /// Prompts followed now (by the engine, the supervisor, or as confirmed): nothing is kept
    /// once a prompt ends, so a run of weeks holds only what is in flight.
    public var retainedPromptCount: Int { Set(engine.trackedPromptIDs + supervisor.trackedPromptIDs + confirmed).count }

    /// Closes the WebSocket and ends `events`.
    public func stop() {
        stopped = true
        supervisor.stop()
        ticker?.cancel()
        ticker = nil
        socket?.close()
        socket = nil
        continuation.finish()
    }

    // MARK: Actions

    private func perform(_ actions: [ConnectionSupervisor.Action]) {
        for action in actions {
            switch action {
            case .connect(let attempt):
                Task { await self.connectAndRead(attempt: attempt) }
            case .scheduleReconnect(let delay):
                Task {
                    try? await Task.sleep(for: .seconds(delay))
                    await self.reconnectTimerFired()
                }
            case .resync:
                Task { await self.resync() }
            case .pollHistory(let ids):
                Task { await self.poll(ids) }
            }
        }
    }

    private func connectAndRead(attempt: Int) async {
        guard !stopped else { return }
        let reason: String
        do {
            let url = try api.webSocketURL(clientID: clientID)
            let socket = try await WebSocketClient.connect(to: url, options: options)
            guard !stopped else {
                socket.close()
                return
            }
            self.socket = socket
            decoder.reset()
            // First frame: ask for previews that say which prompt and node they are of. A socket
            // that cannot take it is broken: the read loop below finds out and reconnects.
            try? socket.send(.text(#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#))
            continuation.yield(.connected(attempt: attempt))
            perform(supervisor.connected(at: now))
            for try await message in socket.messages { receive(message) }
            reason = "the server closed the WebSocket"
        } catch {
            reason = "\(api.name): WebSocket: \(error)"
        }
        socket = nil
        guard !stopped else { return }
        let actions = supervisor.disconnected(at: now, random: Double.random(in: 0...1))
        for case .scheduleReconnect(let delay) in actions {
            continuation.yield(.disconnected(reason: reason, retryIn: delay))
        }
        perform(actions)
    }

    private func reconnectTimerFired() { perform(supervisor.timerFired(at: now)) }

    /// The server answers again: reconnect now rather than after the backoff.
    public func wake() { perform(supervisor.wake(at: now)) }

    private func tick() { perform(supervisor.tick(at: now)) }

    private func receive(_ message: WebSocketMessage) {
        if case .binary(let bytes) = message {
            preview(bytes)
            return
        }
        guard case .text(let text) = message else { return }
        guard let event = try? decoder.decode(text) else { return }  // a malformed message is skipped
        let time = now
        if let id = event.promptID ?? engine.runningPromptID { supervisor.heard(id, at: time) }
        if let update = engine.receive(event, at: time) { emit(update) }
    }

    /// A binary frame: a preview is passed on with its prompt; anything else is dropped.
    private func preview(_ bytes: [UInt8]) {
        switch BinaryMessage.parse(bytes) {
        case .previewImageWithMetadata(let metadata, let offset)?:
            guard let promptID = metadata["prompt_id"]?.stringValue, engine.isTracking(promptID), offset < bytes.count else { return }
            continuation.yield(
                .preview(
                    promptID: promptID, nodeID: metadata["node_id"]?.stringValue, mimeType: metadata["image_type"]?.stringValue ?? "image/jpeg",
                    image: Array(bytes[offset...])))
        case .previewImage(let type, let offset)?:
            guard let promptID = engine.runningPromptID, offset < bytes.count else { return }
            continuation.yield(.preview(promptID: promptID, nodeID: nil, mimeType: type == 2 ? "image/png" : "image/jpeg", image: Array(bytes[offset...])))
        default:
            return
        }
    }

    private func emit(_ update: ProgressUpdate) {
        if update.snapshot.phase.isTerminal {
            supervisor.forget(update.snapshot.promptID)
            confirmed.remove(update.snapshot.promptID)
        }
        continuation.yield(.progress(update))
    }

    /// After a reconnect: what happened to each prompt while we were away?
    private func resync() async {
        // Only prompts accepted before the queue is read can be missing from it for real.
        let candidates = confirmed
        // The queue first: ComfyUI writes history before it takes a prompt off the queue, so a
        // prompt in neither place, checked in this order, is really gone.
        guard let queue = try? await api.queue() else { return }
        for id in engine.trackedPromptIDs.sorted() {
            let record: HistoryRecord?
            do {
                record = try await api.history(id)
            } catch {
                // No answer is not "not in the history": it may have finished while the socket was
                // down. Never declared lost on a failed read; its polls ask again.
                continue
            }
            if let outcome = record?.outcome {
                if let update = engine.receive(.history(promptID: id, outcome: outcome), at: now) { emit(update) }
            } else if !queue.contains(id), candidates.contains(id), engine.isTracking(id) {
                forget(id)
                continuation.yield(.lost(promptID: id))
            }
        }
    }

    private func poll(_ ids: [String]) async {
        defer { supervisor.pollAnswered(ids, at: now) }
        for id in ids where engine.isTracking(id) {
            // A poll that fails is asked again at the next one; the WebSocket may say first.
            let state: PromptState
            do { state = try await api.state(of: id, jobs: jobs) } catch { continue }
            guard case .ended(let outcome) = state, engine.isTracking(id) else { continue }
            if let update = engine.receive(.history(promptID: id, outcome: outcome), at: now) { emit(update) }
        }
    }
}
