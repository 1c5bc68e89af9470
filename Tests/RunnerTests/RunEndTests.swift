import Testing

@testable import Runner

/// When a run ends, and why: every mode with and without work in flight, waiting, servers and
/// a broken queue.
@Suite struct RunEndTests {
    static func end(
        inFlight: Int = 0, watch: Bool = false, mode: FlightMachine.Mode = .running, pending: Bool = false, gone: [String]? = nil,
        broken: String? = nil, idleAnnounced: Bool = false
    ) -> RunEnd.Decision {
        RunEnd(inFlight: inFlight, watch: watch, mode: mode, pending: pending, serversGone: gone, queueBroken: broken, idleAnnounced: idleAnnounced)
            .decide()
    }

    @Test func decisions() {
        // Work in flight: the run goes on, whatever else holds, unless the queue broke.
        #expect(Self.end(inFlight: 2, mode: .stopping) == .keepGoing)
        #expect(Self.end(inFlight: 2, mode: .draining, pending: true) == .keepGoing)
        #expect(Self.end(inFlight: 2, gone: ["gpu0 given up: …"]) == .keepGoing)
        #expect(Self.end(inFlight: 2, broken: "no such table: items") == .finish(.queueFailed("no such table: items")))
        // Nothing in flight.
        #expect(Self.end() == .finish(nil))
        #expect(Self.end(pending: true) == .keepGoing)
        #expect(Self.end(mode: .stopping, pending: true) == .finish(.stoppedByUser))
        #expect(Self.end(mode: .draining, pending: true) == .finish(.drained))
        #expect(Self.end(mode: .draining) == .finish(nil))
        #expect(Self.end(pending: true, gone: ["gpu0 given up: exits at once"]) == .finish(.noServerLeft(["gpu0 given up: exits at once"])))
        #expect(Self.end(gone: ["gpu0 given up"]) == .finish(nil))
        // --watch: an empty queue is idle, said once; more work, or Ctrl-C, as usual.
        #expect(Self.end(watch: true) == .announceIdle)
        #expect(Self.end(watch: true, idleAnnounced: true) == .keepGoing)
        #expect(Self.end(watch: true, pending: true) == .keepGoing)
        #expect(Self.end(watch: true, mode: .draining) == .finish(nil))
        #expect(Self.end(watch: true, gone: ["gpu0 stopped"]) == .finish(nil))
    }
}
