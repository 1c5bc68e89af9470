/// Where a run is in its life, in order: one value instead of a flag per step.
enum RunPhase: Int, Sendable, Comparable {
    /// Servers looked at, prompts left in flight reconciled; nothing judged against the servers'
    /// definitions yet (pre-flight's first check is next).
    case starting
    /// Claiming, submitting, following.
    case running
    /// `RunEnd` said finish: what is under way settles, connections close.
    case ending
    /// The servers this run started are being stopped: their news is no longer acted on.
    case stoppingServers
    /// The run has returned: the clock stops.
    case ended

    static func < (lhs: RunPhase, rhs: RunPhase) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Whether the run ends now, and why: a pure decision over what the runner knows at a moment.
/// The runner asks after everything that can end a run (a prompt ending, Ctrl-C, a server given
/// up, a queue failure, the clock) and runs what it returns.
struct RunEnd: Sendable, Equatable {
    /// Prompts in flight.
    var inFlight: Int
    /// `--watch`: an empty queue does not end the run.
    var watch: Bool
    var mode: FlightMachine.Mode
    /// Items wait in the queue (for this run's jobs).
    var pending: Bool
    /// Nil while some server may still take work; else why each is gone.
    var serversGone: [String]?
    /// The queue failed for good (see `Runner.queueFailed`).
    var queueBroken: String?
    /// `on_idle` was already sent since the last claim.
    var idleAnnounced: Bool

    enum Decision: Sendable, Equatable {
        case keepGoing
        /// `--watch` with nothing in flight and nothing waiting: say so once (`on_idle`).
        case announceIdle
        /// The run ends, with the reason when it ends before the queue is done.
        case finish(StopReason?)
    }

    func decide() -> Decision {
        // Nothing more can be recorded: end now; what is in flight stays in flight for the next run.
        if let queueBroken { return .finish(.queueFailed(queueBroken)) }
        guard inFlight == 0 else { return .keepGoing }
        switch mode {
        case .stopping:
            return .finish(.stoppedByUser)
        case .draining:
            return .finish(pending ? .drained : nil)
        case .running:
            if let gone = serversGone { return .finish(pending ? .noServerLeft(gone) : nil) }
            if !pending { return watch ? (idleAnnounced ? .keepGoing : .announceIdle) : .finish(nil) }
            return .keepGoing
        }
    }
}
