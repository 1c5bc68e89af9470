/// A server's state as comfyq reports it (`comfyq servers`, `status`, hooks, events).
public enum ServerState: String, Sendable, Equatable, CaseIterable {
    /// Not heard from yet.
    case checking
    /// Started by comfyq, not answering yet.
    case starting
    case up
    /// Not answering (or wedged); a watched server is waited for, a supervised one restarted.
    case down
    /// Supervised: waiting out the backoff before it is started again.
    case restarting
    /// Restarted too often, or its port is held by something else: nothing more is sent to it.
    case givenUp = "given up"
    /// Stopped on purpose (the run ended, or `comfyq servers stop`).
    case stopped

    /// Prompts may be sent to it.
    public var isAvailable: Bool { self == .up }
}

/// Decides, for one server, when to probe it, when it is down, when to kill and start its
/// process, and when to give up. Pure: it is told what happened and what time it is, and
/// returns what to do; the runner's shell probes, spawns and kills.
///
/// Down means: the process exited, or `/system_stats` has not answered for `downAfter`, or two
/// prompts in a row stalled on it (a wedged GPU answers HTTP but runs nothing). A supervised
/// server that is down is killed (its whole process group), and once its exit is seen, what was
/// in flight there goes back to the queue and it is started again after a backoff of 1, 2, 4 …
/// 60 s. More than `maxRestarts` restarts within an hour and it is given up.
public struct ServerHealth: Sendable {
    public struct Policy: Sendable, Equatable {
        /// comfyq starts (and restarts) its process.
        public var supervised: Bool
        public var downAfter: Double = 30
        public var maxRestarts: Int = 5
        public var startTimeout: Double = 120
        /// Probe intervals while up and while not.
        public var upProbeInterval: Double = 2
        public var downProbeInterval: Double = 1
        /// Restart backoff: `firstBackoff` doubling up to `maximumBackoff`.
        public var firstBackoff: Double = 1
        public var maximumBackoff: Double = 60
        /// Restarts counted for giving up within this window.
        public var restartWindow: Double = 3600
        /// Stalled prompts in a row that mean the server is wedged.
        public var stallsForDown = 2

        public init(supervised: Bool) { self.supervised = supervised }

        public init(_ definition: ServerDefinition, supervised: Bool) {
            self.supervised = supervised
            downAfter = definition.downAfter
            maxRestarts = definition.maxRestarts
            startTimeout = definition.launch?.startTimeout ?? 120
        }
    }

    public enum Action: Sendable, Equatable {
        /// Ask `/system_stats`; answer with `probeSucceeded` or `probeFailed`.
        case probe
        /// Start the process; answer with `launchFailed` if it could not be started.
        case launch
        /// Kill the process group (`graceful`: SIGTERM first, SIGKILL after 10 s); answer with
        /// `processExited` once it is gone.
        case kill(graceful: Bool)
        /// The server's process is gone, and every prompt in flight there with it: put them
        /// back in the queue. `crashed`: it died on its own or was killed for hanging, so the
        /// prompt that was running counts towards "crashed twice while running it".
        case requeueInFlight(crashed: Bool)
        /// The state changed: tell the user, the hooks and the queue.
        case changed(Change)
    }

    public struct Change: Sendable, Equatable {
        public var from: ServerState
        public var to: ServerState
        public var reason: String
        /// Restarts within the window.
        public var restarts: Int
        /// How long it had been unavailable, when it comes back up.
        public var downFor: Double?
    }

    private enum Phase: Sendable, Equatable {
        case checking
        case starting(deadline: Double)
        case up
        /// Unsupervised, or supervised but waiting for nothing (given a quarantine): probes resume at `retryAt`.
        case down(retryAt: Double)
        /// A kill was sent; `thenStop`: do not restart once it is gone.
        case killing(crashed: Bool, thenStop: Bool, restartAt: Double?)
        case restarting(at: Double)
        case givenUp
        case stopped
    }

    public private(set) var policy: Policy
    private var phase: Phase = .checking
    public private(set) var state: ServerState = .checking
    /// Why it is in its state (for `comfyq servers`).
    public private(set) var reason = ""
    /// When it entered its state.
    public private(set) var since: Double
    /// When it last answered.
    private var lastAnswer: Double?
    private var lastProbe = -Double.infinity
    /// Why the last probe failed, since the last answer.
    private var lastFailure: String?
    private var probing = false
    /// When it was last available (for `downFor`).
    private var unavailableSince: Double
    private var restartTimes: [Double] = []
    private var stalls = 0
    /// It has been up at least once (so coming back has a `downFor`).
    private var everUp = false
    /// Whether a process of ours (or one we adopted) may be running.
    private var processRunning = false
    /// Its WebSocket is open: prompts are followed on it, so only then is it given work.
    public private(set) var socketOpen = false
    /// A submission to it failed: no new work before this.
    public private(set) var coolDownUntil: Double = 0
    /// When the supervision lock another run holds was last tried.
    private var lastLockAttempt = -Double.infinity

    /// The lock of a server another run supervises is tried at most this often.
    public static let lockRetryInterval: Double = 2

    public init(policy: Policy, at now: Double) {
        self.policy = policy
        since = now
        unavailableSince = now
    }

    /// When `tick` next has something to do at a set time (a restart after its backoff, a
    /// start deadline), so a clock can wake for it instead of at its next round.
    public var nextDeadline: Double? {
        switch phase {
        case .restarting(let at): at
        case .starting(let deadline): min(deadline, max(since, lastProbe + 0.1))
        default: nil
        }
    }

    /// Restarts within the last `restartWindow` seconds.
    public var restarts: Int { restartTimes.count }

    /// Whether it may be given a new prompt now: up, its socket open, not cooling down.
    public func acceptsWork(at now: Double) -> Bool { state.isAvailable && socketOpen && coolDownUntil <= now }

    // MARK: Inputs

    /// Becomes (or stops being) the supervisor: another comfyq held the server's lock and let go.
    public mutating func setSupervised(_ supervised: Bool, at now: Double) -> [Action] {
        guard policy.supervised != supervised else { return [] }
        policy.supervised = supervised
        if supervised, case .down = phase { return startProcess(at: now, reason: "comfyq took over its supervision") }
        return []
    }

    /// A process of ours (or one found through its pid file) is running.
    public mutating func adoptedProcess() { processRunning = true }

    /// Its WebSocket opened (true) or closed (false).
    public mutating func socket(open: Bool) { socketOpen = open }

    /// A submission to it failed (its `attempts`-th try of the item): it cools down for 2, 4, 8…
    /// up to 30 s before it gets new work.
    public mutating func submissionFailed(at now: Double, attempts: Int) {
        coolDownUntil = now + min(30, Double(1 << min(max(attempts, 0), 5)))
    }

    /// Whether to try now for the supervision lock another run holds (at most every
    /// `lockRetryInterval` seconds); a yes counts as the try.
    public mutating func lockAttemptDue(at now: Double) -> Bool {
        guard now - lastLockAttempt >= Self.lockRetryInterval else { return false }
        lastLockAttempt = now
        return true
    }

    /// The process was started.
    public mutating func launched(at now: Double) { processRunning = true }

    /// The process could not be started (no such program, no such folder…).
    public mutating func launchFailed(at now: Double, reason: String) -> [Action] {
        processRunning = false
        return afterExit(at: now, reason: reason)
    }

    /// The process exited (or was killed). `description`: "exited with status 1", "killed by signal 9".
    public mutating func processExited(at now: Double, description: String) -> [Action] {
        processRunning = false
        switch phase {
        case .killing(let crashed, let thenStop, let restartAt):
            var actions: [Action] = [.requeueInFlight(crashed: crashed)]
            if thenStop {
                actions += move(to: state == .givenUp ? .givenUp : .stopped, state: state == .givenUp ? .givenUp : .stopped, at: now, reason: reason)
            } else if let restartAt {
                actions += move(to: .restarting(at: restartAt), state: .restarting, at: now, reason: reason)
                if restartAt <= now { actions += startProcess(at: now, reason: reason) }
            } else {
                actions += scheduleRestart(at: now, reason: reason)
            }
            return actions
        case .stopped, .givenUp:
            return []
        case .checking, .starting, .up, .down, .restarting:
            return [.requeueInFlight(crashed: true)] + afterExit(at: now, reason: "its process \(description)")
        }
    }

    public mutating func probeSucceeded(at now: Double) -> [Action] {
        probing = false
        lastAnswer = now
        lastFailure = nil
        switch phase {
        case .checking, .starting, .down:
            let downFor = now - unavailableSince
            defer { everUp = true }
            let firstAnswer = state == .checking
            let started = state == .starting
            stalls = 0
            let reason = firstAnswer ? "answering" : started ? "started in \(Self.seconds(now - since))" : "answering again"
            var actions = move(to: .up, state: .up, at: now, reason: reason)
            if case .changed(var change)? = actions.last, everUp {
                change.downFor = downFor
                actions[actions.count - 1] = .changed(change)
            }
            return actions
        case .up, .killing, .restarting, .givenUp, .stopped:
            return []
        }
    }

    /// `notComfyUI`: something answered on the port, but not as ComfyUI does.
    public mutating func probeFailed(at now: Double, reason: String, notComfyUI: Bool = false) -> [Action] {
        probing = false
        if notComfyUI, state != .up {
            if processRunning { return kill(at: now, reason: reason, crashed: false, thenStop: true, showing: .givenUp) }
            return move(to: .givenUp, state: .givenUp, at: now, reason: reason)
        }
        switch phase {
        case .checking:
            if policy.supervised && !processRunning { return startProcess(at: now, reason: "not answering (\(reason)): starting it") }
            return move(to: .down(retryAt: now), state: .down, at: now, reason: reason)
        case .up:
            lastFailure = reason  // down only after downAfter without an answer (`tick`)
            return []
        default:
            return []
        }
    }

    /// A prompt on this server went silent past its stall timeout.
    public mutating func promptStalled(at now: Double) -> [Action] {
        stalls += 1
        guard stalls >= policy.stallsForDown, phase == .up else { return [] }
        stalls = 0
        let reason = "\(policy.stallsForDown) prompts in a row stalled on it"
        if policy.supervised && processRunning { return kill(at: now, reason: reason, crashed: true, thenStop: false) }
        return move(to: .down(retryAt: now + policy.downAfter), state: .down, at: now, reason: reason)
    }

    /// A prompt on this server finished (the GPU works): stalls are no longer "in a row".
    public mutating func promptFinished() { stalls = 0 }

    /// The clock: probes due, servers that stopped answering, start deadlines, backoffs.
    public mutating func tick(at now: Double) -> [Action] {
        restartTimes.removeAll { now - $0 >= policy.restartWindow }
        switch phase {
        case .up:
            // Down once it has not answered for `downAfter` and a probe has failed (or timed out)
            // since: a probe that is merely late, on a loaded machine, is not the server's fault.
            if now - (lastAnswer ?? since) >= policy.downAfter, lastFailure != nil {
                let reason = "not answering for \(Self.seconds(policy.downAfter))" + (lastFailure.map { " (\($0))" } ?? "")
                if policy.supervised && processRunning { return kill(at: now, reason: reason, crashed: true, thenStop: false) }
                return move(to: .down(retryAt: now), state: .down, at: now, reason: reason)
            }
            // Often enough that a server that answers is never `downAfter` without an answer.
            return probeIfDue(at: now, interval: min(policy.upProbeInterval, policy.downAfter / 3))
        case .checking:
            return probeIfDue(at: now, interval: policy.downProbeInterval)
        case .down(let retryAt):
            guard now >= retryAt else { return [] }
            return probeIfDue(at: now, interval: policy.downProbeInterval)
        case .starting(let deadline):
            if now >= deadline {
                return kill(at: now, reason: "did not answer within \(Int(policy.startTimeout)) s of starting", crashed: false, thenStop: false)
            }
            // A server being started is asked often: the first answer is when work can resume.
            return probeIfDue(at: now, interval: min(0.1, policy.downProbeInterval))
        case .restarting(let at):
            return now >= at ? startProcess(at: now, reason: reason) : []
        case .killing, .givenUp, .stopped:
            return []
        }
    }

    /// The run is ending, or `comfyq servers stop`: stop a process of ours unless it is to keep running.
    public mutating func stop(at now: Double, keepRunning: Bool) -> [Action] {
        // A server with no process of ours, or one to keep running, is left as it is.
        guard policy.supervised && processRunning && !keepRunning else { return [] }
        return kill(at: now, reason: "stopped", crashed: false, thenStop: true, graceful: true)
    }

    /// `comfyq servers restart`: kill and start again at once, without counting a restart.
    public mutating func restart(at now: Double) -> [Action] {
        guard policy.supervised else { return [] }
        restartTimes.removeAll()
        if processRunning {
            let actions = move(to: .killing(crashed: false, thenStop: false, restartAt: now), state: .restarting, at: now, reason: "restart asked for")
            return actions + [.kill(graceful: true)]
        }
        return startProcess(at: now, reason: "restart asked for")
    }

    /// `comfyq servers start`, or a given-up server given another chance.
    public mutating func start(at now: Double) -> [Action] {
        restartTimes.removeAll()
        switch phase {
        case .givenUp, .stopped, .down:
            if policy.supervised && !processRunning { return startProcess(at: now, reason: "start asked for") }
            return move(to: .checking, state: .checking, at: now, reason: "start asked for") + [.probe]
        default:
            return []
        }
    }

    // MARK: Helpers

    static func seconds(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths)) s" : "\(tenths) s"
    }

    private mutating func probeIfDue(at now: Double, interval: Double) -> [Action] {
        guard !probing, now - lastProbe >= interval else { return [] }
        probing = true
        lastProbe = now
        return [.probe]
    }

    private mutating func kill(
        at now: Double, reason: String, crashed: Bool, thenStop: Bool, graceful: Bool = false, showing: ServerState? = nil
    ) -> [Action] {
        let visible = showing ?? (thenStop ? .stopped : .down)
        return move(to: .killing(crashed: crashed, thenStop: thenStop, restartAt: nil), state: visible, at: now, reason: reason) + [
            .kill(graceful: graceful)
        ]
    }

    /// The process is gone on its own: down (what hooks notify on), then a restart for a
    /// supervised server.
    private mutating func afterExit(at now: Double, reason: String) -> [Action] {
        let down = move(to: .down(retryAt: now), state: .down, at: now, reason: reason)
        guard policy.supervised else { return down }
        return down + scheduleRestart(at: now, reason: reason)
    }

    private mutating func scheduleRestart(at now: Double, reason: String) -> [Action] {
        guard restartTimes.count < policy.maxRestarts else {
            let given = "restarted \(restartTimes.count) time\(restartTimes.count == 1 ? "" : "s") within an hour; last: \(reason)"
            return move(to: .givenUp, state: .givenUp, at: now, reason: given)
        }
        var backoff = policy.firstBackoff
        for _ in 0..<restartTimes.count { backoff = min(policy.maximumBackoff, backoff * 2) }
        restartTimes.append(now)
        return move(to: .restarting(at: now + backoff), state: .restarting, at: now, reason: reason)
    }

    private mutating func startProcess(at now: Double, reason: String) -> [Action] {
        lastProbe = -Double.infinity
        probing = false
        return move(to: .starting(deadline: now + policy.startTimeout), state: .starting, at: now, reason: reason) + [.launch]
    }

    private mutating func move(to next: Phase, state visible: ServerState, at now: Double, reason: String) -> [Action] {
        phase = next
        let previous = state
        guard visible != previous || reason != self.reason else { return [] }
        if previous == .up && visible != .up { unavailableSince = now }
        state = visible
        self.reason = reason
        if visible != previous { since = now }
        guard visible != previous else { return [] }
        return [.changed(Change(from: previous, to: visible, reason: reason, restarts: restartTimes.count))]
    }
}
