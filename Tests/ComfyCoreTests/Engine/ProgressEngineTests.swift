import ComfyCore
import Testing

/// One test per rule of the engine (see the issue and `ProgressEngine`'s documentation).
@Suite struct ProgressEngineTests {
    // Rule 1: the origin bug. Setup nodes all finished (1/1 each) is not 100% and not done.
    func finishedSetupNodesNeverLookComplete() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        let finished: [(String, NodeState, Double, Double)] = [
            ("4", .finished, 1, 1), ("5", .finished, 1, 1), ("7", .finished, 1, 1), ("6", .finished, 1, 1),
        ]
        script.feed(E.start("P"), E.state("P", finished), E.state("P", finished + [("3", .running, 0, 1)]))
        let snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.phase == .setup)
        #expect(snapshot.fraction < 0.11)
        #expect(!script.updates.contains { $0.snapshot.phase.isTerminal || $0.snapshot.fraction >= 0.99 })
    }

    // Rule 2: steps come from the sampler's own reports, never from the map's sum.
    func stepsComeFromTheSamplerNotTheAggregate() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img(steps: 20))
        let setup: [(String, NodeState, Double, Double)] = [
            ("4", .finished, 1, 1), ("5", .finished, 1, 1), ("7", .finished, 1, 1), ("6", .finished, 1, 1),
        ]
        script.feed(E.start("P"), E.executing("P", "3"), E.state("P", setup + [("3", .running, 2, 20)]))
        var snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.step == 2)
        #expect(snapshot.steps == 20)
        // An aggregate reading would say (4 + 2/20) / 5 = 82%; per node it is step 2 of 20.
        #expect(snapshot.fraction < 0.25)
        script.feed(E.progress("P", "3", 3, 20))
        snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.step == 3)
    }

    // Rule 2: a node that reports only through progress_state (newer progress API) still counts.
    func progressStateAloneDrivesSteps() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img(steps: 8))
        script.feed(E.start("P"), E.state("P", [("3", .running, 0, 1)]))
        for step in 1...8 { script.feed(E.state("P", [("3", .running, Double(step), 8)])) }
        let snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.phase == .sampling)
        #expect(snapshot.step == 8)
        #expect(snapshot.steps == 8)
    }

    // Rule 3: steps in order, fraction never decreasing, across two samplers and a cache.
    @Test(arguments: [false, true])
    func stepsInOrderAndFractionMonotonic(twoSamplers: Bool) throws {
        var script = Script()
        script.track("P", twoSamplers ? Fixtures.hires() : Fixtures.txt2img(steps: 20))
        var events: [ServerEvent] = [E.start("P"), E.cached("P", ["4", "5", "6", "7"]), E.executing("P", "3")]
        for step in 1...(twoSamplers ? 4 : 20) {
            events.append(E.state("P", [("3", .running, Double(step), twoSamplers ? 4 : 20)]))
            events.append(E.progress("P", "3", Double(step), twoSamplers ? 4 : 20))
        }
        if twoSamplers {
            events += [E.state("P", [("3", .finished, 4, 4)]), E.executing("P", "10"), E.executing("P", "11")]
            for step in 1...3 { events.append(E.progress("P", "11", Double(step), 3)) }
        }
        events += [E.executing("P", "8"), E.executing("P", "9"), E.success("P")]
        for event in events { script.feed(event) }

        let fractions = script.updates.map(\.snapshot.fraction)
        #expect(fractions == fractions.sorted())
        let steps = script.updates.filter { $0.snapshot.phase == .sampling }.map {
            [$0.snapshot.sampler, $0.snapshot.step]
        }
        var seen: [[Int]] = []
        for pair in steps where seen.last != pair { seen.append(pair) }
        let expected =
            twoSamplers
            ? (1...4).map { [1, $0] } + (0...3).map { [2, $0] }  // step 0: the second sampler warming up
            : (1...20).map { [1, $0] }
        #expect(seen == expected)
        #expect(script.updates.last?.snapshot.phase == .done)
        #expect(script.updates.last?.snapshot.fraction == 1)
        if twoSamplers { #expect(script.updates.contains { $0.snapshot.samplers == 2 && $0.snapshot.sampler == 2 }) }
    }

    // Rule 4: done only from what ComfyUI says.
    @Test(arguments: [
        ServerEvent.executionSuccess(promptID: "P"),
        ServerEvent.executing(promptID: "P", node: nil, displayNode: nil),
        ServerEvent.history(promptID: "P", outcome: .success(outputs: [])),
    ])
    func doneOnlyFromTerminalMessages(terminal: ServerEvent) throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        let events = Script.txt2imgRun("P")
        // Everything up to (not including) execution_success: never done, at most 99%.
        for event in events.prefix(while: { $0 != E.success("P") }) { script.feed(event) }
        #expect(script.updates.allSatisfy { !$0.snapshot.phase.isTerminal && $0.snapshot.fraction <= 0.99 })
        #expect(script.engine.snapshot(of: "P")?.phase == .saving)
        let final = script.feed(terminal)
        #expect(final.count == 1)
        #expect(final.first?.snapshot.phase == .done)
        #expect(final.first?.snapshot.outcome == .success)
        #expect(final.first?.transition?.from == .saving)
    }

    // Rule 5: errors and interrupts.
    func executionErrorFailsWithDetails() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        let failure = ExecutionFailure(
            nodeID: "3", classType: "KSampler", exceptionType: "RuntimeError", message: "CUDA out of memory")
        script.feed(E.start("P"), E.executing("P", "3"), E.progress("P", "3", 1, 4))
        let updates = script.feed(.executionError(promptID: "P", failure: failure))
        #expect(updates.first?.snapshot.phase == .failed)
        #expect(updates.first?.snapshot.outcome == .failed(failure))
        #expect(updates.first?.transition == Transition(from: .sampling, to: .failed, at: 4, duration: 1))
        #expect("\(failure)" == "node 3 (KSampler): RuntimeError: CUDA out of memory")
    }

    func executionBlockedDoesNotEndThePrompt() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(E.start("P"))
        let blocked = ExecutionFailure(nodeID: "8", classType: "VAEDecode", exceptionType: "ExecutionBlocked", message: "")
        #expect(script.feed(.executionError(promptID: "P", failure: blocked)).isEmpty)
        #expect(script.engine.snapshot(of: "P")?.phase == .setup)
    }

    func interruptEndsAsInterrupted() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(E.start("P"), E.executing("P", "3"), E.progress("P", "3", 2, 4))
        let updates = script.feed(.executionInterrupted(promptID: "P", nodeID: "3", classType: "KSampler"))
        #expect(updates.first?.snapshot.phase == .interrupted)
        #expect(updates.first?.snapshot.outcome == .interrupted(node: NodeRef(id: "3", classType: "KSampler")))
    }

    func cancelledWhileQueued() throws {
        var engine = ProgressEngine()
        engine.track("P", plan: PromptPlan(Fixtures.txt2img()), at: 0)
        let update = engine.cancel("P", at: 1)
        #expect(update?.snapshot.phase == .cancelled)
        #expect(update?.transition?.from == .queued)
        #expect(engine.trackedCount == 0)
    }

    // Rule 6: a fully cached prompt goes straight to done with fraction 1.
    func fullyCachedPromptIsDone() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(
            E.start("P"), E.cached("P", ["4", "5", "6", "7", "3", "8", "9"]),
            .executed(promptID: "P", node: "9", outputs: [OutputFile(filename: "old.png")]),
            E.state("P", [("9", .finished, 1, 1)]), E.success("P"))
        let last = try #require(script.updates.last)
        #expect(last.snapshot.phase == .done)
        #expect(last.snapshot.fraction == 1)
        #expect(!script.updates.contains { $0.snapshot.phase == .sampling })
    }

    // Rule 7: prompts tracked independently; other clients' prompts ignored.
    func concurrentPromptsAreIndependent() throws {
        var script = Script()
        script.track("A", Fixtures.txt2img())
        script.track("B", Fixtures.hires())
        script.feed(E.start("A"), E.executing("A", "3"), E.progress("A", "3", 2, 4))
        #expect(script.feed(E.progress("OTHER", "3", 1, 4), E.start("OTHER"), E.success("OTHER")).isEmpty)
        #expect(script.engine.snapshot(of: "B")?.phase == .queued)
        script.feed(E.success("A"), E.start("B"), E.executing("B", "3"), E.progress("B", "3", 1, 4))
        #expect(script.engine.snapshot(of: "B")?.samplers == 2)
        #expect(script.engine.snapshot(of: "B")?.step == 1)
        #expect(script.engine.snapshot(of: "A") == nil)
    }

    // Rule 8: `executing` without prompt_id after a reconnect belongs to the running prompt.
    func executingWithoutPromptIDGoesToTheRunningPrompt() throws {
        var script = Script()
        script.track("A", Fixtures.txt2img())
        script.track("B", Fixtures.txt2img())
        script.feed(E.start("A"), E.executing("A", "3"), E.progress("A", "3", 4, 4))
        let updates = script.feed(E.executing(nil, "8"))
        #expect(updates.first?.snapshot.promptID == "A")
        #expect(updates.first?.snapshot.phase == .decoding)
        #expect(script.engine.snapshot(of: "B")?.phase == .queued)
        // With nothing running it is ignored.
        script.feed(E.success("A"))
        #expect(script.feed(E.executing(nil, "4")).isEmpty)
    }

    // Rule 9: nothing changes after a terminal state.
    func lateMessagesAfterTheEndChangeNothing() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        for event in Script.txt2imgRun("P") { script.feed(event) }
        let late = script.feed(
            E.progress("P", "3", 1, 4), E.executing("P", "4"), E.success("P"),
            .executionError(
                promptID: "P", failure: ExecutionFailure(nodeID: nil, classType: nil, exceptionType: "X", message: "")),
            E.executing("P", nil))
        #expect(late.isEmpty)
        #expect(script.updates.filter { $0.snapshot.phase.isTerminal }.count == 1)
    }

    // Rule 9 also covers messages out of order: an earlier step after a later one.
    func outOfOrderStepsNeverGoBackwards() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img(steps: 10))
        script.feed(E.start("P"), E.executing("P", "3"), E.progress("P", "3", 5, 10))
        let before = try #require(script.engine.snapshot(of: "P")).fraction
        script.feed(E.progress("P", "3", 3, 10), E.executing("P", "4"))
        let after = try #require(script.engine.snapshot(of: "P"))
        #expect(after.fraction >= before)
        #expect(after.phase == .sampling)
    }

    // Rule 10: terminal prompts are dropped.
    func stateIsDroppedAfterTheEnd() throws {
        var engine = ProgressEngine()
        let plan = PromptPlan(Fixtures.txt2img())
        for index in 0..<100_000 {
            let id = "prompt-\(index)"
            engine.track(id, plan: plan, at: 0)
            _ = engine.receive(E.start(id), at: 1)
            _ = engine.receive(E.progress(id, "3", 1, 4), at: 2)
            _ = engine.receive(index.isMultiple(of: 2) ? E.success(id) : E.executing(id, nil), at: 3)
        }
        #expect(engine.trackedCount == 0)
        #expect(engine.runningPromptID == nil)
    }

    func duplicateMessagesReportNothingNew() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(E.start("P"), E.executing("P", "3"))
        #expect(script.feed(E.state("P", [("3", .running, 1, 4)])).count == 1)
        #expect(script.feed(E.progress("P", "3", 1, 4)).isEmpty)
        #expect(script.feed(E.state("P", [("3", .running, 1, 4)])).isEmpty)
    }

    func transitionsFollowThePhasesOfANormalRun() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        for event in Script.txt2imgRun("P") { script.feed(event) }
        let transitions = script.updates.compactMap(\.transition).map { "\($0.from)→\($0.to)" }
        #expect(transitions == ["queued→setup", "setup→sampling", "sampling→decoding", "decoding→saving", "saving→done"])
    }

    func samplerWarmUpCountsAsSetup() throws {
        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(E.start("P"), E.executing("P", "3"), E.state("P", [("3", .running, 0, 1)]))
        #expect(script.engine.snapshot(of: "P")?.phase == .setup)
        script.feed(E.progress("P", "3", 1, 4))
        #expect(script.engine.snapshot(of: "P")?.phase == .sampling)
    }

    func unknownNodeReportingStepsIsASampler() throws {
        var workflow = Fixtures.txt2img()
        workflow = Workflow(
            workflow.orderedNodes.map { node in
                node.id == "3" ? WorkflowNode(id: "3", classType: "MyDiffusion", inputs: node.inputs) : node
            })
        let plan = PromptPlan(workflow)
        // Has steps + latent_image inputs: recognised from the graph.
        #expect(plan["3"]?.role == .sampler)

        var script = Script()
        script.track("P", Fixtures.txt2img())
        script.feed(E.start("P"), E.executing("P", "expanded-77"), E.progress("P", "expanded-77", 2, 10))
        let snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.phase == .sampling)
        #expect(snapshot.steps == 10)
        #expect(snapshot.node?.id == "expanded-77")
    }

    func saveImageWebsocketProgressIsNotASampler() throws {
        let workflow = Workflow([
            WorkflowNode(id: "1", classType: "LoadImage", inputs: ["image": "a.png"]),
            WorkflowNode(id: "2", classType: "SaveImageWebsocket", inputs: ["images": ["1", 0]]),
        ])
        var script = Script()
        script.track("P", workflow)
        script.feed(E.start("P"), E.executing("P", "2"), E.progress("P", "2", 0, 1), E.progress("P", "2", 1, 1))
        let snapshot = try #require(script.engine.snapshot(of: "P"))
        #expect(snapshot.phase == .saving)
        #expect(snapshot.samplers == 0)
        #expect(snapshot.steps == 0)
    }

    func learnedWeightsFollowMeasuredTime() throws {
        let weights = PhaseWeights.learned(from: [
            [.setup: 6, .sampling: 3, .decoding: 0.5, .saving: 0.5],
            [.setup: 6, .sampling: 3, .decoding: 0.5, .saving: 0.5],
        ])
        #expect(abs(weights.setup - 0.6) < 1e-9)
        #expect(abs(weights.sampling - 0.3) < 1e-9)
        #expect(PhaseWeights.learned(from: []) == .default)

        var engine = ProgressEngine()
        engine.track("P", plan: PromptPlan(Fixtures.txt2img()), weights: weights, at: 0)
        _ = engine.receive(E.start("P"), at: 1)
        _ = engine.receive(E.progress("P", "3", 1, 4), at: 2)
        // Setup is done: with learned weights sampling starts at 60%, not 10%.
        #expect((engine.snapshot(of: "P")?.fraction ?? 0) >= 0.6)
    }
}
