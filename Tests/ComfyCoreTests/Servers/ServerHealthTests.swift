import ComfyCore
import Testing

/// Transcripts: each line an input at a time, and the actions it returned, written short
/// (`probe`, `launch`, `kill`, `kill(graceful)`, `requeue`, `requeue(crashed)`, `from→to`).
@Suite struct ServerHealthTests {
    enum Input {
        case tick(Double)
        case ok(Double)
        case fail(Double)
        case notComfy(Double)
        case exited(Double)
        case launchFailed(Double)
        case stalled(Double)
        case finished
        case stop(Double, keep: Bool)
        case restart(Double)
        case start(Double)
        case supervise(Double)
    }

    struct Machine {
        var health: ServerHealth

        init(supervised: Bool, _ configure: (inout ServerHealth.Policy) -> Void = { _ in }) {
            var policy = ServerHealth.Policy(supervised: false)
            policy.supervised = supervised
            configure(&policy)
            health = ServerHealth(policy: policy, at: 0)
        }

        mutating func feed(_ input: Input) -> [String] {
            let actions: [ServerHealth.Action]
            switch input {
            case .tick(let t): actions = health.tick(at: t)
            case .ok(let t): actions = health.probeSucceeded(at: t)
            case .fail(let t): actions = health.probeFailed(at: t, reason: "connection refused")
            case .notComfy(let t): actions = health.probeFailed(at: t, reason: "port 8190 is held by something that is not ComfyUI", notComfyUI: true)
            case .exited(let t): actions = health.processExited(at: t, description: "exited with status 1")
            case .launchFailed(let t): actions = health.launchFailed(at: t, reason: "no such program")
            case .stalled(let t): actions = health.promptStalled(at: t)
            case .finished:
                health.promptFinished()
                actions = []
            case .stop(let t, let keep): actions = health.stop(at: t, keepRunning: keep)
            case .restart(let t): actions = health.restart(at: t)
            case .start(let t): actions = health.start(at: t)
            case .supervise(let t): actions = health.setSupervised(true, at: t)
            }
            var lines: [String] = []
            for action in actions {
                switch action {
                case .probe: lines.append("probe")
                case .launch:
                    lines.append("launch")
                    health.launched(at: 0)
                case .kill(let graceful): lines.append(graceful ? "kill(graceful)" : "kill")
                case .requeueInFlight(let crashed): lines.append(crashed ? "requeue(crashed)" : "requeue")
                case .changed(let change): lines.append("\(change.from.rawValue)→\(change.to.rawValue)")
                }
            }
            return lines
        }

        /// Feeds every line and checks what came back; a mismatch names the line.
        mutating func expect(_ transcript: [(Input, [String])], sourceLocation: SourceLocation = #_sourceLocation) {
            for (number, (input, expected)) in transcript.enumerated() {
                let got = feed(input)
                #expect(got == expected, "line \(number + 1): \(input)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Whether a server gets new work: up, its socket open and not cooling down after a failed
    /// submission (2, 4, 8… up to 30 s by the item's attempt); and the supervision lock another
    /// run holds is tried at most every 2 s.
    @Test func workGoesToAnUpServerWithItsSocketOpenAndNotCoolingDown() {
        var machine = Machine(supervised: false)
        _ = machine.health.tick(at: 0)
        _ = machine.health.probeSucceeded(at: 0.1)
        #expect(machine.health.state == .up && !machine.health.acceptsWork(at: 0.2), "no socket yet")
        machine.health.socket(open: true)
        #expect(machine.health.acceptsWork(at: 0.2))
        let cases: [(attempts: Int, coolDown: Double)] = [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (9, 30)]
        for (attempts, coolDown) in cases {
            machine.health.submissionFailed(at: 100, attempts: attempts)
            #expect(!machine.health.acceptsWork(at: 100 + coolDown - 0.01), "attempt \(attempts): cooling down")
            #expect(machine.health.acceptsWork(at: 100 + coolDown), "attempt \(attempts): cooled down after \(coolDown) s")
        }
        machine.health.socket(open: false)
        #expect(!machine.health.acceptsWork(at: 1000), "socket closed")
        let tries = [5, 6.9, 7].map { machine.health.lockAttemptDue(at: $0) }
        #expect(tries == [true, false, true])
    }

    @Test func aWatchedServerGoesDownAfterSilenceAndComesBack() {
        var machine = Machine(supervised: false) { $0.downAfter = 10 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.ok(0.1), ["checking→up"]),
            (.tick(1), []),  // probed 1 s ago; up servers every 2 s
            (.tick(2.1), ["probe"]),
            (.fail(2.2), []),  // one failure is not down
            (.tick(5), ["probe"]),
            (.fail(5.1), []),
            (.tick(10.2), ["up→down"]),  // 10 s since the last answer
            (.tick(10.3), ["probe"]),
            (.fail(10.4), []),
            (.tick(12), ["probe"]),
            (.ok(12.1), ["down→up"]),
        ])
        #expect(machine.health.state == .up)
    }

    @Test func aWatchedServerThatNeverAnswersIsDownNotRestarted() {
        var machine = Machine(supervised: false)
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0.1), ["checking→down"]),
            (.tick(1.2), ["probe"]),
            (.exited(2), ["requeue(crashed)"]),  // (a watched server has no process of ours; ignored states stay)
        ])
        #expect(machine.health.state == .down)
    }

    @Test func aSupervisedServerIsStartedWhenItDoesNotAnswer() {
        var machine = Machine(supervised: true) { $0.startTimeout = 20 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0.1), ["checking→starting", "launch"]),
            (.tick(0.2), ["probe"]),
            (.fail(0.3), []),
            (.tick(0.8), ["probe"]),
            (.ok(0.9), ["starting→up"]),
        ])
    }

    @Test func aCrashRequeuesRestartsWithBackoffAndGivesUp() {
        var machine = Machine(supervised: true) { $0.maxRestarts = 3 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(0), ["probe"]),
            (.ok(0), ["starting→up"]),
            (.exited(10), ["requeue(crashed)", "up→down", "down→restarting"]),
            (.tick(10.5), []),  // backoff 1 s
            (.tick(11), ["restarting→starting", "launch"]),
            (.exited(12), ["requeue(crashed)", "starting→down", "down→restarting"]),
            (.tick(13), []),  // backoff 2 s
            (.tick(14), ["restarting→starting", "launch"]),
            (.exited(15), ["requeue(crashed)", "starting→down", "down→restarting"]),
            (.tick(18.9), []),  // backoff 4 s
            (.tick(19), ["restarting→starting", "launch"]),
            (.exited(20), ["requeue(crashed)", "starting→down", "down→given up"]),
            (.tick(100), []),
        ])
        #expect(machine.health.reason.contains("restarted 3 times within an hour"))
    }

    @Test func restartsOlderThanTheWindowDoNotCount() {
        var machine = Machine(supervised: true) {
            $0.maxRestarts = 1
            $0.restartWindow = 100
            $0.downAfter = 1000
        }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.exited(1), ["requeue(crashed)", "starting→down", "down→restarting"]),
            (.tick(2), ["restarting→starting", "launch"]),
            (.tick(2.5), ["probe"]),
            (.ok(2.6), ["starting→up"]),
            (.tick(200), ["probe"]),  // the restart at 1 s has left the window
            (.exited(201), ["requeue(crashed)", "up→down", "down→restarting"]),
        ])
    }

    @Test func aHungSupervisedServerIsKilledThenRestarted() {
        var machine = Machine(supervised: true) { $0.downAfter = 30 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(0), ["probe"]),
            (.ok(1), ["starting→up"]),
            (.tick(3), ["probe"]),  // this probe hangs: no answer at all…
            (.tick(30.9), []),
            (.tick(31), []),  // …and has not failed yet: a late probe is not a dead server
            (.fail(31.5), []),  // it times out
            (.tick(31.6), ["up→down", "kill"]),
            (.tick(40), []),  // waiting for the exit
            (.exited(40.1), ["requeue(crashed)", "down→restarting"]),
            (.tick(41.1), ["restarting→starting", "launch"]),
        ])
    }

    @Test func twoStallsInARowMeanWedged() {
        var machine = Machine(supervised: true)
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(0), ["probe"]),
            (.ok(1), ["starting→up"]),
            (.stalled(2), []),
            (.finished, []),  // a prompt finished in between: not in a row
            (.stalled(3), []),
            (.stalled(4), ["up→down", "kill"]),
            (.exited(5), ["requeue(crashed)", "down→restarting"]),
        ])
    }

    @Test func aWatchedWedgedServerIsLeftAloneForDownAfter() {
        var machine = Machine(supervised: false) { $0.downAfter = 10 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.ok(0), ["checking→up"]),
            (.stalled(1), []),
            (.stalled(2), ["up→down"]),
            (.tick(5), []),
            (.tick(12), ["probe"]),
            (.ok(12), ["down→up"]),
        ])
    }

    @Test func aStartThatNeverAnswersIsKilledAndCounted() {
        var machine = Machine(supervised: true) { $0.startTimeout = 5 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(5), ["starting→down", "kill"]),
            (.exited(5.5), ["requeue", "down→restarting"]),
        ])
        #expect(machine.health.restarts == 1)
    }

    @Test func aPortHeldBySomethingElseIsGivenUp() {
        var machine = Machine(supervised: true)
        machine.expect([
            (.tick(0), ["probe"]),
            (.notComfy(0), ["checking→given up"]),
            (.tick(10), []),
        ])
        #expect(machine.health.reason.contains("port 8190"))
    }

    @Test func aLaunchThatFailsCountsAsARestart() {
        var machine = Machine(supervised: true) { $0.maxRestarts = 1 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.launchFailed(0), ["starting→down", "down→restarting"]),
            (.tick(1), ["restarting→starting", "launch"]),
            (.launchFailed(1), ["starting→down", "down→given up"]),
        ])
    }

    @Test func stopKillsGracefullyUnlessKeptRunning() {
        var machine = Machine(supervised: true)
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(0), ["probe"]),
            (.ok(0), ["starting→up"]),
            (.stop(5, keep: false), ["up→stopped", "kill(graceful)"]),
            (.exited(6), ["requeue"]),
            (.tick(10), []),
        ])
        var kept = Machine(supervised: true)
        kept.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.stop(1, keep: true), []),
        ])
        #expect(kept.health.state == .starting)
    }

    @Test func restartAskedForIsImmediateAndNotCounted() {
        var machine = Machine(supervised: true) { $0.maxRestarts = 0 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.tick(0), ["probe"]),
            (.ok(0), ["starting→up"]),
            (.restart(5), ["up→restarting", "kill(graceful)"]),
            (.exited(6), ["requeue", "restarting→starting", "launch"]),
        ])
        #expect(machine.health.restarts == 0)
    }

    @Test func startGivesAGivenUpServerAnotherChance() {
        var machine = Machine(supervised: true) { $0.maxRestarts = 0 }
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→starting", "launch"]),
            (.exited(1), ["requeue(crashed)", "starting→down", "down→given up"]),
            (.start(2), ["given up→starting", "launch"]),
        ])
    }

    @Test func aWatcherThatTakesOverSupervisionStartsTheServer() {
        var machine = Machine(supervised: false)
        machine.expect([
            (.tick(0), ["probe"]),
            (.fail(0), ["checking→down"]),
            (.supervise(3), ["down→starting", "launch"]),
        ])
    }

    @Test func comingBackReportsHowLongItWasDown() {
        var health = ServerHealth(policy: ServerHealth.Policy(supervised: false), at: 0)
        _ = health.tick(at: 0)
        _ = health.probeSucceeded(at: 0)
        _ = health.tick(at: 1)
        _ = health.probeFailed(at: 1, reason: "refused")
        _ = health.tick(at: 31)
        _ = health.tick(at: 31)
        let actions = health.probeSucceeded(at: 50)
        guard case .changed(let change)? = actions.first else {
            Issue.record("no change: \(actions)")
            return
        }
        #expect(change.to == .up)
        #expect(change.downFor.map { abs($0 - 19) < 1e-9 } == true)
    }

    /// Every input in every reachable state: nothing traps, and only a supervised machine ever
    /// launches or kills.
    @Test(arguments: [false, true]) func everyInputInEveryState(supervised: Bool) {
        let prefixes: [[Input]] = [
            [], [.tick(0)], [.tick(0), .ok(0)], [.tick(0), .fail(0)], [.tick(0), .ok(0), .tick(100)],
            [.tick(0), .fail(0), .exited(1)], [.tick(0), .notComfy(0)], [.tick(0), .ok(0), .stop(1, keep: false)],
        ]
        let inputs: [Input] = [
            .tick(200), .ok(200), .fail(200), .notComfy(200), .exited(200), .launchFailed(200), .stalled(200), .finished, .stop(200, keep: false),
            .restart(200), .start(200), .supervise(200),
        ]
        for prefix in prefixes {
            for input in inputs {
                var machine = Machine(supervised: supervised)
                for step in prefix { _ = machine.feed(step) }
                let lines = machine.feed(input)
                if !supervised, case .supervise = input {
                    continue
                }
                if !supervised {
                    #expect(!lines.contains("launch") && !lines.contains { $0.hasPrefix("kill") }, "\(prefix) + \(input): \(lines)")
                }
            }
        }
    }

    @Test func aClockCanWakeForTheRestartDeadline() {
        var machine = Machine(supervised: true)
        _ = machine.feed(.tick(0))
        _ = machine.feed(.fail(0))
        #expect(machine.health.nextDeadline == 0)  // starting: probe at once…
        _ = machine.feed(.tick(0))
        #expect(machine.health.nextDeadline == 0.1)  // …then every 0.1 s
        _ = machine.feed(.exited(10))
        #expect(machine.health.nextDeadline == 11)  // restarting: after the 1 s backoff
        _ = machine.feed(.tick(11))
        _ = machine.feed(.tick(11))
        _ = machine.feed(.ok(11.2))
        #expect(machine.health.nextDeadline == nil)  // up: nothing at a set time
    }
}
