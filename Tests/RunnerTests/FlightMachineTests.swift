import Testing

@testable import Runner

/// The flight machine driven by transcripts: every input in every stage, in each mode, as
/// `stage --input--> stage: actions`. A change of behaviour shows as a changed line.
@Suite struct FlightMachineTests {
    typealias Stage = FlightMachine.Stage
    typealias Input = FlightMachine.Input

    /// A machine with prompt "p" in `stage` (nil: not in flight), reached the way the runner
    /// reaches it, and in `mode`.
    static func machine(_ stage: Stage?, mode: FlightMachine.Mode = .running) -> FlightMachine {
        var machine = FlightMachine()
        let path: [Input]
        switch stage {
        case nil: path = []
        case .claimed?: path = [.claimed("p", server: 0)]
        case .preparing?: path = [.claimed("p", server: 0), .laneTook("p")]
        case .posting?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0)]
        case .uncertain?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .postUncertain("p")]
        case .accepted?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0)]
        case .collecting?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .finishedOnServer("p")]
        case .awaitingServer?:
            path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .finishedOnServer("p"), .collectLater("p", .server)]
        case .parked?:
            path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .finishedOnServer("p"), .collectLater("p", .pause)]
        case .settling?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .stop]
        case .withdrawing(.stalled)?: path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .stalled("p")]
        case .withdrawing(.cancelled)?:
            path = [.claimed("p", server: 0), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .cancelledInQueue("p")]
        }
        for input in path { _ = machine.handle(input) }
        #expect(machine.stage(of: "p") == stage, "setting up \(String(describing: stage))")
        switch mode {
        case .running: break
        case .draining: _ = machine.handle(.drain)
        case .stopping: _ = machine.handle(.stop)
        }
        return machine
    }

    static let stages: [Stage?] = [nil, .claimed, .preparing, .posting, .uncertain, .accepted, .collecting, .awaitingServer, .parked, .settling, .withdrawing(.stalled), .withdrawing(.cancelled)]
    static let inputs: [Input] = [
        .claimed("p", server: 0), .adopted("p", server: 0, finished: false), .adopted("p", server: 0, finished: true), .laneTook("p"), .prepared("p", server: 0), .posted("p", server: 0), .postUncertain("p"), .verified("p", onServer: true),
        .verified("p", onServer: false), .finishedOnServer("p"), .collectLater("p", .server), .collectLater("p", .pause), .collectAgain("p"), .stalled("p"), .cancelledInQueue("p"), .settled("p", finished: true), .settled("p", finished: false),
        .settled("p", finished: nil), .ended("p"), .drain, .stop,
    ]

    static func name(_ stage: Stage?) -> String {
        switch stage {
        case nil: "-"
        case .withdrawing(let why)?: "withdrawing(\(why))"
        case let stage?: "\(stage)"
        }
    }

    static func name(_ input: Input) -> String {
        switch input {
        case .claimed: "claimed"
        case .adopted(_, _, let finished): "adopted(\(finished ? "finished" : "running"))"
        case .laneTook: "laneTook"
        case .prepared: "prepared"
        case .posted: "posted"
        case .postUncertain: "postUncertain"
        case .verified(_, let onServer): "verified(\(onServer ? "there" : "absent"))"
        case .finishedOnServer: "finishedOnServer"
        case .collectLater(_, let wait): "collectLater(\(wait))"
        case .collectAgain: "collectAgain"
        case .stalled: "stalled"
        case .cancelledInQueue: "cancelledInQueue"
        case .settled(_, let finished): "settled(\(finished.map { $0 ? "finished" : "not finished" } ?? "no answer"))"
        case .ended: "ended"
        case .drain: "drain"
        case .stop: "stop"
        }
    }

    static func name(_ action: FlightMachine.Action) -> String {
        switch action {
        case .enqueue: "enqueue"
        case .prepare: "prepare"
        case .post: "post"
        case .markRunning: "markRunning"
        case .forget: "forget"
        case .putBack(let ids): "putBack(\(ids.count))"
        case .submitAgain: "submitAgain"
        case .cancel(let ids, _): "cancel(\(ids.count))"
        case .collect: "collect"
        case .leaveForReconcile: "leaveForReconcile"
        case .endStalled: "endStalled"
        case .endCancelled: "endCancelled"
        }
    }

    /// Every input in every stage, in one mode.
    static func transcript(mode: FlightMachine.Mode) -> String {
        var lines: [String] = []
        for stage in stages where !(mode == .stopping && [.claimed, .preparing, .awaitingServer, .parked].contains(stage)) {
            // (Stopping takes claimed, preparing, awaiting and parked prompts out of flight: they
            // have no stopping row.)
            for input in inputs {
                var machine = machine(stage, mode: mode)
                let before = machine.stage(of: "p")
                let actions = machine.handle(input)
                let after = machine.stage(of: "p")
                guard before != after || !actions.isEmpty else { continue }  // nothing happens: not listed
                // A stop moves prompts on: such a row names both stages (`accepted/settling`).
                let from = stage == before ? name(before) : "\(name(stage))/\(name(before))"
                lines.append("\(from) --\(name(input))--> \(name(after)): \(actions.isEmpty ? "nothing" : actions.map(name).joined(separator: ", "))")
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test func runningTranscript() {
        #expect(
            Self.transcript(mode: .running) == """
                - --claimed--> claimed: enqueue
                - --adopted(running)--> accepted: nothing
                - --adopted(finished)--> collecting: collect
                - --prepared--> -: forget
                - --posted--> -: forget, cancel(1)
                claimed --laneTook--> preparing: prepare
                claimed --ended--> -: nothing
                claimed --stop--> -: forget, putBack(1)
                preparing --prepared--> posting: post
                preparing --ended--> -: nothing
                preparing --stop--> -: forget, putBack(1)
                posting --posted--> accepted: markRunning
                posting --postUncertain--> uncertain: nothing
                posting --finishedOnServer--> collecting: collect
                posting --ended--> -: nothing
                posting --stop--> settling: nothing
                uncertain --verified(there)--> accepted: markRunning
                uncertain --verified(absent)--> -: forget, submitAgain
                uncertain --finishedOnServer--> collecting: collect
                uncertain --ended--> -: nothing
                uncertain --stop--> settling: cancel(1)
                accepted --finishedOnServer--> collecting: collect
                accepted --stalled--> withdrawing(stalled): forget, cancel(1)
                accepted --cancelledInQueue--> withdrawing(cancelled): forget, cancel(1)
                accepted --ended--> -: nothing
                accepted --stop--> settling: cancel(1)
                collecting --collectLater(server)--> awaitingServer: nothing
                collecting --collectLater(pause)--> parked: nothing
                collecting --ended--> -: nothing
                awaitingServer --collectAgain--> collecting: collect
                awaitingServer --ended--> -: nothing
                awaitingServer --stop--> -: leaveForReconcile
                parked --collectAgain--> collecting: collect
                parked --ended--> -: nothing
                parked --stop--> -: leaveForReconcile
                settling --posted--> settling: cancel(1)
                settling --postUncertain--> settling: cancel(1)
                settling --finishedOnServer--> collecting: collect
                settling --settled(finished)--> collecting: collect
                settling --settled(not finished)--> -: putBack(1)
                settling --settled(no answer)--> -: leaveForReconcile
                settling --ended--> -: nothing
                withdrawing(stalled) --finishedOnServer--> collecting: collect
                withdrawing(stalled) --settled(finished)--> collecting: collect
                withdrawing(stalled) --settled(not finished)--> -: endStalled
                withdrawing(stalled) --settled(no answer)--> -: endStalled
                withdrawing(stalled) --ended--> -: nothing
                withdrawing(cancelled) --finishedOnServer--> collecting: collect
                withdrawing(cancelled) --settled(finished)--> collecting: collect
                withdrawing(cancelled) --settled(not finished)--> -: endCancelled
                withdrawing(cancelled) --settled(no answer)--> -: endCancelled
                withdrawing(cancelled) --ended--> -: nothing
                """)
    }

    /// Draining changes nothing for prompts in flight: they finish. Only claims stop.
    @Test func drainingFinishesWhatIsInFlight() {
        let running = Self.transcript(mode: .running).split(separator: "\n").filter { !$0.hasPrefix("- --claimed") }
        let draining = Self.transcript(mode: .draining).split(separator: "\n")
        #expect(draining == running)
        var machine = FlightMachine()
        _ = machine.handle(.drain)
        #expect(!machine.claims)
        #expect(machine.handle(.claimed("q", server: 0)).isEmpty)
    }

    /// Once stopping, a prompt's late news (its lane waking, its hooks returning, its POST
    /// answering) never starts anything: it is forgotten or taken off the server.
    @Test func stoppingTranscript() {
        #expect(
            Self.transcript(mode: .stopping) == """
                - --adopted(running)--> -: leaveForReconcile
                - --adopted(finished)--> -: leaveForReconcile
                - --prepared--> -: forget
                - --posted--> -: forget, cancel(1)
                posting/settling --posted--> settling: cancel(1)
                posting/settling --postUncertain--> settling: cancel(1)
                posting/settling --finishedOnServer--> collecting: collect
                posting/settling --settled(finished)--> collecting: collect
                posting/settling --settled(not finished)--> -: putBack(1)
                posting/settling --settled(no answer)--> -: leaveForReconcile
                posting/settling --ended--> -: nothing
                uncertain/settling --posted--> settling: cancel(1)
                uncertain/settling --postUncertain--> settling: cancel(1)
                uncertain/settling --finishedOnServer--> collecting: collect
                uncertain/settling --settled(finished)--> collecting: collect
                uncertain/settling --settled(not finished)--> -: putBack(1)
                uncertain/settling --settled(no answer)--> -: leaveForReconcile
                uncertain/settling --ended--> -: nothing
                accepted/settling --posted--> settling: cancel(1)
                accepted/settling --postUncertain--> settling: cancel(1)
                accepted/settling --finishedOnServer--> collecting: collect
                accepted/settling --settled(finished)--> collecting: collect
                accepted/settling --settled(not finished)--> -: putBack(1)
                accepted/settling --settled(no answer)--> -: leaveForReconcile
                accepted/settling --ended--> -: nothing
                collecting --collectLater(server)--> -: leaveForReconcile
                collecting --collectLater(pause)--> -: leaveForReconcile
                collecting --ended--> -: nothing
                settling --posted--> settling: cancel(1)
                settling --postUncertain--> settling: cancel(1)
                settling --finishedOnServer--> collecting: collect
                settling --settled(finished)--> collecting: collect
                settling --settled(not finished)--> -: putBack(1)
                settling --settled(no answer)--> -: leaveForReconcile
                settling --ended--> -: nothing
                withdrawing(stalled) --finishedOnServer--> collecting: collect
                withdrawing(stalled) --settled(finished)--> collecting: collect
                withdrawing(stalled) --settled(not finished)--> -: endStalled
                withdrawing(stalled) --settled(no answer)--> -: endStalled
                withdrawing(stalled) --ended--> -: nothing
                withdrawing(cancelled) --finishedOnServer--> collecting: collect
                withdrawing(cancelled) --settled(finished)--> collecting: collect
                withdrawing(cancelled) --settled(not finished)--> -: endCancelled
                withdrawing(cancelled) --settled(no answer)--> -: endCancelled
                withdrawing(cancelled) --ended--> -: nothing
                """)
    }

    /// Stop with prompts at every stage at once: one put-back for those not posted, one cancel
    /// (one batch per server in the shell) for those the server has, and the run waits for the
    /// POST under way, the settling and the collection.
    @Test func stopWithPromptsAtEveryStage() {
        var machine = FlightMachine()
        let ids = ["a-claimed", "b-preparing", "c-posting", "d-uncertain", "e-accepted", "f-collecting", "g-accepted-on-1"]
        for id in ids { _ = machine.handle(.claimed(id, server: id.hasSuffix("-1") ? 1 : 0)) }
        for id in ids.dropFirst() { _ = machine.handle(.laneTook(id)) }
        for id in ids.dropFirst(2) { _ = machine.handle(.prepared(id, server: 0)) }
        _ = machine.handle(.postUncertain("d-uncertain"))
        for id in ["e-accepted", "f-collecting", "g-accepted-on-1"] { _ = machine.handle(.posted(id, server: 0)) }
        _ = machine.handle(.finishedOnServer("f-collecting"))
        #expect(
            machine.handle(.stop) == [
                .forget("a-claimed", server: 0), .forget("b-preparing", server: 0), .putBack(["a-claimed", "b-preparing"]),
                .cancel(["d-uncertain", "e-accepted"], server: 0), .cancel(["g-accepted-on-1"], server: 1),
            ])
        #expect(machine.unsettled == ["c-posting", "d-uncertain", "e-accepted", "f-collecting", "g-accepted-on-1"])
        #expect(machine.handle(.stop).isEmpty, "a second stop does nothing more")
        // The lane wakes for the claimed one, the hooks return for the preparing one: nothing runs.
        #expect(machine.handle(.laneTook("a-claimed")).isEmpty)
        #expect(machine.handle(.prepared("b-preparing", server: 0)) == [.forget("b-preparing", server: 0)])
        // The POST under way gets through: off the server; it had finished first: collected.
        #expect(machine.handle(.posted("c-posting", server: 0)) == [.cancel(["c-posting"], server: 0)])
        #expect(machine.handle(.settled("c-posting", finished: true)) == [.collect("c-posting", server: 0)])
        #expect(machine.handle(.settled("d-uncertain", finished: nil)) == [.leaveForReconcile("d-uncertain")])
        #expect(machine.handle(.settled("e-accepted", finished: false)) == [.putBack(["e-accepted"])])
        #expect(machine.handle(.settled("g-accepted-on-1", finished: false)) == [.putBack(["g-accepted-on-1"])])
        for id in ["c-posting", "f-collecting"] { _ = machine.handle(.ended(id)) }
        #expect(machine.unsettled.isEmpty)
        #expect(machine.flights.isEmpty, "nothing is kept once prompts end")
    }
}
