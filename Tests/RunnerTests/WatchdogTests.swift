import Testing

@testable import Runner

/// The runner's clock and a server going away, as pure decisions: every kind of prompt at
/// every tick, the history reads after success, and crash counting up to a poison prompt.
@Suite struct WatchdogTests {
    typealias Prompt = Watchdog.Prompt

    static func prompt(
        _ id: String, server: Int = 0, heard: Double = 0, timeout: Double = 60, collecting: Bool = false, uncertain: Bool = false,
        awaiting: Bool = false, cancelled: Bool = false
    ) -> Prompt {
        Prompt(
            id: id, server: server, lastHeard: heard, stallTimeout: timeout, collecting: collecting, uncertain: uncertain, awaitingServer: awaiting,
            cancelled: cancelled)
    }

    struct TickCase: Sendable, CustomTestStringConvertible {
        var name: String
        var prompts: [Prompt]
        var up: [Bool] = [true, true]
        var paused = false
        var now: Double = 100
        var expected: [Watchdog.Action]
        var testDescription: String { name }
    }

    static let ticks: [TickCase] = [
        TickCase(name: "heard recently: nothing", prompts: [prompt("a", heard: 90)], expected: []),
        TickCase(name: "silent exactly its timeout: not yet", prompts: [prompt("a", heard: 40)], expected: []),
        TickCase(name: "silent past its timeout: stalled", prompts: [prompt("a", heard: 39)], expected: [.stalled("a")]),
        TickCase(name: "each prompt its own timeout", prompts: [prompt("a", heard: 80, timeout: 10), prompt("b", heard: 80, timeout: 30)], expected: [.stalled("a")]),
        TickCase(name: "collecting is never stalled", prompts: [prompt("a", heard: 0, collecting: true)], expected: []),
        TickCase(name: "uncertain, server up: verified, not stalled", prompts: [prompt("a", heard: 0, uncertain: true)], expected: [.verify("a")]),
        TickCase(name: "uncertain, server down: waits", prompts: [prompt("a", heard: 0, uncertain: true)], up: [false], expected: []),
        TickCase(
            name: "awaiting its server, up: collected again", prompts: [prompt("a", heard: 0, collecting: true, awaiting: true)],
            expected: [.collectAgain("a")]),
        TickCase(name: "awaiting its server, down: waits", prompts: [prompt("a", collecting: true, awaiting: true)], up: [false], expected: []),
        TickCase(name: "awaiting its server, paused: waits", prompts: [prompt("a", collecting: true, awaiting: true)], paused: true, expected: []),
        TickCase(name: "paused: stalls still found", prompts: [prompt("a", heard: 0)], paused: true, expected: [.stalled("a")]),
        TickCase(
            name: "servers apart", prompts: [prompt("a", server: 0, uncertain: true), prompt("b", server: 1, uncertain: true)], up: [false, true],
            expected: [.verify("b")]),
        TickCase(name: "cancelled: taken off, not also stalled", prompts: [prompt("a", heard: 0, cancelled: true)], expected: [.cancel("a")]),
        TickCase(
            name: "cancelled first, even on a server that is down", prompts: [prompt("b", uncertain: true), prompt("c", cancelled: true)],
            up: [false], expected: [.cancel("c")]),
        TickCase(
            name: "order: verify, collect, stall; by prompt id within each",
            prompts: [
                prompt("d", heard: 0), prompt("c", collecting: true, awaiting: true), prompt("b", uncertain: true), prompt("a", heard: 0),
                prompt("e", uncertain: true),
            ],
            expected: [.verify("b"), .verify("e"), .collectAgain("c"), .stalled("a"), .stalled("d")]),
    ]

    @Test(arguments: ticks) func tick(_ testCase: TickCase) {
        let up = testCase.up
        #expect(Watchdog.tick(testCase.prompts, serverUp: { up[$0] }, paused: testCase.paused, now: testCase.now) == testCase.expected)
    }

    @Test func historyReads() {
        #expect(Watchdog.afterHistoryRead(attempt: 0, hasOutcome: true, answered: true) == .collect)
        #expect(Watchdog.afterHistoryRead(attempt: 0, hasOutcome: false, answered: true) == .readAgain(after: 0.05))
        #expect(Watchdog.afterHistoryRead(attempt: 3, hasOutcome: false, answered: false) == .readAgain(after: 0.2))
        // The wait grows to a second and stays there.
        #expect(Watchdog.afterHistoryRead(attempt: 18, hasOutcome: false, answered: true) == .readAgain(after: 0.95))
        #expect(Watchdog.afterHistoryRead(attempt: 25, hasOutcome: true, answered: true) == .collect)
        // The last read decides: no outcome from a server that answers fails the item; a server
        // that does not answer keeps the outputs for later.
        let last = Watchdog.historyReads - 1
        #expect(Watchdog.afterHistoryRead(attempt: last, hasOutcome: false, answered: true) == .noHistory)
        #expect(Watchdog.afterHistoryRead(attempt: last, hasOutcome: false, answered: false) == .awaitServer)
        // The reads together wait about ten seconds for a history ComfyUI is writing.
        let total = (0..<last).reduce(0.0) { sum, attempt in
            guard case .readAgain(let delay) = Watchdog.afterHistoryRead(attempt: attempt, hasOutcome: false, answered: true) else { return sum }
            return sum + delay
        }
        #expect(total > 8 && total < 12, "waited \(total) s in all")
    }

    typealias Stranded = Watchdog.Stranded

    @Test func aServerStoppedByUsCountsNoCrash() {
        var watchdog = Watchdog()
        let prompts = [Stranded(id: "a", itemID: 1, startedAt: 1, started: true, collecting: false)]
        #expect(watchdog.serverWentAway(prompts, crashed: false) == [.submitAgain("a")])
        #expect(watchdog.serverWentAway(prompts, crashed: false) == [.submitAgain("a")])
        #expect(watchdog.crashes.isEmpty)
    }

    @Test func theRunningItemAtItsSecondCrashIsPoison() {
        var watchdog = Watchdog()
        let first = [
            Stranded(id: "q", itemID: 2, startedAt: 2, started: false, collecting: false),
            Stranded(id: "r", itemID: 1, startedAt: 1, started: true, collecting: false),
        ]
        #expect(watchdog.serverWentAway(first, crashed: true) == [.submitAgain("r"), .submitAgain("q")])
        #expect(watchdog.crashes == [1: 1])
        // Submitted again under new prompt ids; it crashes the server again.
        let second = [
            Stranded(id: "r2", itemID: 1, startedAt: 5, started: true, collecting: false),
            Stranded(id: "q2", itemID: 2, startedAt: 6, started: false, collecting: false),
        ]
        #expect(watchdog.serverWentAway(second, crashed: true) == [.poison("r2"), .submitAgain("q2")])
    }

    @Test func withNoStartedPromptTheOldestIsTheSuspect() {
        var watchdog = Watchdog()
        let prompts = [
            Stranded(id: "done", itemID: 9, startedAt: 0, started: true, collecting: true),  // being collected: not a suspect
            Stranded(id: "b", itemID: 3, startedAt: 4, started: false, collecting: false),
            Stranded(id: "a", itemID: 4, startedAt: 3, started: false, collecting: false),
        ]
        #expect(watchdog.serverWentAway(prompts, crashed: true) == [.submitAgain("done"), .submitAgain("a"), .submitAgain("b")])
        #expect(watchdog.crashes == [4: 1])
    }

    @Test func crashesOfDifferentItemsDoNotAddUp() {
        var watchdog = Watchdog()
        #expect(watchdog.serverWentAway([Stranded(id: "a", itemID: 1, startedAt: 1, started: true, collecting: false)], crashed: true) == [.submitAgain("a")])
        #expect(watchdog.serverWentAway([Stranded(id: "b", itemID: 2, startedAt: 2, started: true, collecting: false)], crashed: true) == [.submitAgain("b")])
        #expect(watchdog.serverWentAway([], crashed: true) == [])
        #expect(watchdog.crashes == [1: 1, 2: 1])
    }
}
