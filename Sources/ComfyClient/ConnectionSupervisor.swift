/// Decides, for one server connection, when to connect, when to reconnect, when to resync and
/// when to poll `/history` as a safety net. Pure: it is told what happened and what time it is
/// (and given randomness for jitter), and returns what to do.
public struct ConnectionSupervisor: Sendable {
    public struct Policy: Sendable, Equatable {
        /// Reconnect delays: `initialDelay`, doubling up to `maximumDelay`, each ± `jitter` × delay.
        public var initialDelay: Double = 0.5
        public var maximumDelay: Double = 30
        public var multiplier: Double = 2
        public var jitter: Double = 0.2
        /// A tracked prompt without any message for this long gets its history polled…
        public var silenceBeforePolling: Double = 30
        /// …at most this often (per prompt).
        public var pollInterval: Double = 15

        public init() {}
    }

    public enum Action: Sendable, Equatable {
        /// Open the WebSocket (after the previous one is fully closed).
        case connect(attempt: Int)
        /// Wait, then call `timerFired`.
        case scheduleReconnect(after: Double)
        /// The connection is back: check every tracked prompt against `/queue` and `/history`,
        /// since messages sent while we were away are lost (ComfyUI does not buffer them).
        case resync
        /// These prompts have been silent: ask `/history` whether they finished, then call
        /// `pollAnswered` (each has one poll at a time: a server that hangs does not collect a
        /// pile of them).
        case pollHistory([String])
    }

    private enum State: Sendable, Equatable {
        case idle
        case connecting(attempt: Int)
        case open
        case waiting(attempt: Int, until: Double)
        case stopped
    }

    public let policy: Policy
    private var state: State = .idle
    private var everConnected = false
    /// Per tracked prompt: when we last heard of it, when we last polled its history (or its
    /// poll is under way: `polling`), and, for a prompt whose messages go to another client, how
    /// often to poll instead of waiting.
    private var prompts: [String: (heard: Double, polled: Double, quietInterval: Double?, polling: Bool)] = [:]

    public init(policy: Policy = Policy()) { self.policy = policy }

    public var isOpen: Bool { state == .open }
    public var trackedPromptIDs: [String] { Array(prompts.keys) }

    public mutating func start() -> [Action] {
        guard state == .idle else { return [] }
        state = .connecting(attempt: 1)
        return [.connect(attempt: 1)]
    }

    /// The handshake succeeded.
    public mutating func connected(at now: Double) -> [Action] {
        guard case .connecting = state else { return [] }
        state = .open
        defer { everConnected = true }
        for id in prompts.keys { prompts[id]?.heard = now }
        return everConnected || !prompts.isEmpty ? [.resync] : []
    }

    /// The connection failed or dropped. `random` is uniform in 0…1, for jitter.
    public mutating func disconnected(at now: Double, random: Double) -> [Action] {
        let attempt: Int
        switch state {
        case .connecting(let current): attempt = current + 1
        case .open: attempt = 1
        case .idle, .waiting, .stopped: return []
        }
        let delay = delay(forAttempt: attempt, random: random)
        state = .waiting(attempt: attempt, until: now + delay)
        return [.scheduleReconnect(after: delay)]
    }

    /// The reconnect timer fired.
    public mutating func timerFired(at now: Double) -> [Action] {
        guard case .waiting(let attempt, let until) = state, now >= until - 1e-9 else { return [] }
        state = .connecting(attempt: attempt)
        return [.connect(attempt: attempt)]
    }

    /// The server is known to be back (its health probe answered): reconnect now instead of
    /// waiting out the backoff. The attempt count starts again.
    public mutating func wake(at now: Double) -> [Action] {
        guard case .waiting = state else { return [] }
        state = .connecting(attempt: 1)
        return [.connect(attempt: 1)]
    }

    /// The delay before reconnect attempt `attempt` (2 = the first retry after a failure).
    public func delay(forAttempt attempt: Int, random: Double) -> Double {
        var base = policy.initialDelay
        for _ in 1..<max(1, attempt) { base = min(policy.maximumDelay, base * policy.multiplier) }
        let spread = base * policy.jitter * (random * 2 - 1)
        return max(0, min(policy.maximumDelay, base + spread))
    }

    /// Follows a prompt. `quietInterval` is for a prompt whose messages go to another client (one
    /// submitted by a run that crashed): its history is polled at that interval from the start.
    public mutating func track(_ promptID: String, at now: Double, quietInterval: Double? = nil) {
        prompts[promptID] = (now, quietInterval == nil ? now : -.infinity, quietInterval, false)
    }
    public mutating func forget(_ promptID: String) { prompts[promptID] = nil }

    /// A message about `promptID` arrived.
    public mutating func heard(_ promptID: String, at now: Double) {
        if prompts[promptID] != nil { prompts[promptID]!.heard = now }
    }

    /// Periodic check: which silent prompts to poll (WebSockets can go quiet while prompts finish).
    public mutating func tick(at now: Double) -> [Action] {
        guard state != .stopped else { return [] }
        var due: [String] = []
        for (id, times) in prompts {
            let quietEnough = times.quietInterval != nil || now - times.heard >= policy.silenceBeforePolling
            guard quietEnough && !times.polling && now - times.polled >= (times.quietInterval ?? policy.pollInterval) else { continue }
            due.append(id)
            prompts[id]!.polled = now
            prompts[id]!.polling = true
        }
        return due.isEmpty ? [] : [.pollHistory(due.sorted())]
    }

    /// The poll of these prompts is over (answered or not): the next is due an interval later.
    public mutating func pollAnswered(_ ids: [String], at now: Double) {
        for id in ids where prompts[id] != nil {
            prompts[id]!.polling = false
            prompts[id]!.polled = now
        }
    }

    public mutating func stop() { state = .stopped }
}
