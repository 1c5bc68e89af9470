import ComfyClient
import Testing

@Suite struct ConnectionSupervisorTests {
    @Test func backoffDoublesToTheCapWithBoundedJitter() {
        let supervisor = ConnectionSupervisor()
        let delays = (1...10).map { supervisor.delay(forAttempt: $0, random: 0.5) }
        #expect(delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30])
        for attempt in 1...10 {
            let low = supervisor.delay(forAttempt: attempt, random: 0)
            let high = supervisor.delay(forAttempt: attempt, random: 1)
            let middle = supervisor.delay(forAttempt: attempt, random: 0.5)
            #expect(low >= middle * 0.8 - 1e-9 && high <= min(30, middle * 1.2) + 1e-9)
        }
    }

    @Test func connectDropWaitReconnectResync() {
        var supervisor = ConnectionSupervisor()
        #expect(supervisor.start() == [.connect(attempt: 1)])
        #expect(supervisor.start().isEmpty)
        #expect(supervisor.connected(at: 0).isEmpty)  // first connection, nothing tracked: no resync
        supervisor.track("P", at: 1)
        #expect(supervisor.disconnected(at: 10, random: 0.5) == [.scheduleReconnect(after: 0.5)])
        #expect(supervisor.timerFired(at: 10.2).isEmpty)  // too early
        #expect(supervisor.timerFired(at: 10.5) == [.connect(attempt: 1)])
        // That attempt fails: the next waits longer.
        #expect(supervisor.disconnected(at: 11, random: 0.5) == [.scheduleReconnect(after: 1)])
        #expect(supervisor.timerFired(at: 12) == [.connect(attempt: 2)])
        #expect(supervisor.connected(at: 12) == [.resync])
        #expect(supervisor.isOpen)
    }

    @Test func silentPromptsArePolledAtALowRate() {
        var policy = ConnectionSupervisor.Policy()
        policy.silenceBeforePolling = 30
        policy.pollInterval = 15
        var supervisor = ConnectionSupervisor(policy: policy)
        supervisor.track("A", at: 0)
        supervisor.track("B", at: 0)
        #expect(supervisor.tick(at: 20).isEmpty)
        supervisor.heard("B", at: 25)
        #expect(supervisor.tick(at: 31) == [.pollHistory(["A"])])
        supervisor.pollAnswered(["A"], at: 31)
        #expect(supervisor.tick(at: 40).isEmpty)  // polled 9 s ago
        #expect(supervisor.tick(at: 46) == [.pollHistory(["A"])])
        supervisor.pollAnswered(["A"], at: 46)
        #expect(supervisor.tick(at: 56) == [.pollHistory(["B"])])
        supervisor.forget("A")
        supervisor.forget("B")
        #expect(supervisor.tick(at: 1000).isEmpty)
    }

    /// A server that hangs does not answer a poll: the prompt gets no second poll while its
    /// first is under way (they would pile up, one every interval), and the next comes an
    /// interval after the answer (or the timeout), not after the ask.
    @Test func aPromptHasOnePollAtATime() {
        var policy = ConnectionSupervisor.Policy()
        policy.silenceBeforePolling = 30
        policy.pollInterval = 15
        var supervisor = ConnectionSupervisor(policy: policy)
        supervisor.track("A", at: 0)
        #expect(supervisor.tick(at: 31) == [.pollHistory(["A"])])
        for time in stride(from: 46.0, through: 91, by: 15) { #expect(supervisor.tick(at: time).isEmpty, "at \(time): the poll is under way") }
        supervisor.pollAnswered(["A"], at: 91)  // a 60 s timeout
        #expect(supervisor.tick(at: 100).isEmpty)
        #expect(supervisor.tick(at: 106) == [.pollHistory(["A"])])
        // An answer for a prompt no longer followed changes nothing.
        supervisor.forget("A")
        supervisor.pollAnswered(["A"], at: 107)
        #expect(supervisor.tick(at: 1000).isEmpty)
    }

    @Test func stoppedSupervisorDoesNothing() {
        var supervisor = ConnectionSupervisor()
        _ = supervisor.start()
        supervisor.stop()
        #expect(supervisor.disconnected(at: 1, random: 0).isEmpty)
        #expect(supervisor.timerFired(at: 100).isEmpty)
        supervisor.track("A", at: 0)
        #expect(supervisor.tick(at: 1000).isEmpty)
    }
}

@Suite struct ConnectionSupervisorWakeTests {
    /// A server that is back (its health probe answered) is reconnected at once, not after the
    /// backoff; a wake in any other state does nothing.
    @Test func wakeCutsTheBackoffShort() {
        var supervisor = ConnectionSupervisor()
        #expect(supervisor.wake(at: 0).isEmpty)  // idle
        _ = supervisor.start()
        #expect(supervisor.wake(at: 0).isEmpty)  // connecting
        _ = supervisor.connected(at: 0)
        #expect(supervisor.wake(at: 1).isEmpty)  // open
        for _ in 0..<5 { _ = supervisor.disconnected(at: 2, random: 0.5) }
        #expect(supervisor.wake(at: 2) == [.connect(attempt: 1)])
        #expect(supervisor.timerFired(at: 100).isEmpty)  // the old timer finds nothing to do
        #expect(supervisor.disconnected(at: 3, random: 0.5) == [.scheduleReconnect(after: 1)])
    }
}
