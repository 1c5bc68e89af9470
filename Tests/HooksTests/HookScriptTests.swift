import ComfyCore
import Foundation
import Hooks
import Testing

@Suite struct HookLoadingTests {
    @Test(arguments: [
        ("function on_compelte(e) end", "on_compelte is not a hook function (did you mean on_complete?)"),
        ("function onError(e) end", "onError is not a hook function (did you mean on_error?)"),
        ("function on_finish(e) end", "on_finish is not a hook function"),
        ("function on_complete(e)\n  x = = 1\nend", ":2: unexpected symbol near '='"),
        ("error('needs a token')", "needs a token"),
        ("local t = nil\nprint(t.x)", ":2: attempt to index a nil value"),
    ])
    func problemsAreOneLineNamingTheFile(source: String, expected: String) async throws {
        let path = try scriptFile(source)
        await #expect {
            try await HookScript.load(path: path, environment: LogCollector().environment())
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(path) && text.contains(expected) && !text.contains("\n")
        }
    }

    @Test func missingFile() async {
        await #expect {
            try await HookScript.load(path: "/nonexistent/notify.lua", environment: LogCollector().environment())
        } throws: { "\($0)" == "/nonexistent/notify.lua: no such file" }
    }

    @Test func runawayTopLevelCodeIsStoppedByTheTimeLimit() async throws {
        var settings = HookScript.Settings()
        settings.limits.time = 0.2
        let path = try scriptFile("while true do end")
        await #expect {
            try await HookScript.load(path: path, settings: settings, environment: LogCollector().environment())
        } throws: { "\($0)".contains("time limit of 0.2 s exceeded") }
    }

    @Test func helpersMayBeLocalOrNamedOtherwise() async throws {
        let script = try await loadScript(
            "local function on_helper() end\nfunction format_line() end\nfunction on_idle() end\nfunction once() end", log: LogCollector())
        #expect(script.handles(.idle))
        #expect(!script.handles(.complete))
        script.stop()
    }
}

@Suite struct HookDeliveryTests {
    @Test func eventsArriveInOrder() async throws {
        let log = LogCollector()
        let script = try await loadScript("function on_phase(e) comfyq.log('info', e.item .. ' ' .. e.phase) end", log: log)
        for item in 0..<300 { script.deliver(phaseEvent(item)) }
        await script.flush()
        #expect(log.messages == (0..<300).map { "\($0) sampling" })
        script.stop()
    }

    @Test func aSlowScriptCoalescesProgressButKeepsEveryTransition() async throws {
        let log = LogCollector()
        let script = try await loadScript(
            """
            local function wait(s) local t = os.clock() + s while os.clock() < t do end end
            function on_progress(e) wait(0.01) comfyq.log('info', 'progress ' .. e.prompt_id .. ' ' .. e.step) end
            function on_phase(e) comfyq.log('info', 'phase ' .. e.prompt_id .. ' ' .. e.item) end
            """, log: log)
        for step in 1...200 {
            script.deliver(progressEvent(1, step: step))
            if step % 20 == 0 { script.deliver(phaseEvent(step, promptID: "p1")) }
        }
        await script.flush()
        let messages = log.messages
        let phases = messages.filter { $0.hasPrefix("phase") }
        #expect(phases == (1...10).map { "phase p1 \($0 * 20)" })  // never dropped, in order
        let steps = messages.filter { $0.hasPrefix("progress") }.map { Int($0.split(separator: " ").last!)! }
        #expect(steps.count < 100)  // it fell behind: progress coalesced
        #expect(steps == steps.sorted())  // latest wins, never out of order
        #expect(steps.last == 200)
        // No progress event crosses a phase event: each lies between its own two phases.
        var lastPhaseStep = 0
        for message in messages {
            let number = Int(message.split(separator: " ").last!)!
            if message.hasPrefix("phase") { lastPhaseStep = number } else { #expect(number > lastPhaseStep) }
        }
        #expect(script.stats.coalesced > 100)
        script.stop()
    }

    @Test func theMailboxIsBoundedForProgressOnly() async throws {
        let log = LogCollector()
        var settings = HookScript.Settings()
        settings.capacity = 5
        let script = try await loadScript(
            """
            function on_progress(e) comfyq.exec({'sleep', '0.05'}) end
            function on_phase(e) comfyq.log('info', 'phase ' .. e.item) end
            """, settings: settings, log: log)
        for item in 0..<50 {
            script.deliver(progressEvent(item, step: 1))  // 50 prompts: cannot coalesce
            script.deliver(phaseEvent(item))
        }
        await script.flush()
        #expect(log.messages.filter { $0.hasPrefix("phase") }.count == 50)
        #expect(script.stats.dropped > 30)
        script.stop()
    }

    @Test func deliveringNeverWaitsForTheScript() async throws {
        let script = try await loadScript("function on_phase(e) comfyq.exec({'sleep', '5'}) end", log: LogCollector())
        let elapsed = try await seconds {
            for item in 0..<1000 { script.deliver(phaseEvent(item)) }
        }
        // 1,000 events queued while the script sleeps 5 s on the first: waiting for it would take
        // 5 s at least (the bound leaves a loaded machine room; queueing takes milliseconds).
        #expect(elapsed < 4)
        script.stop()
    }

    @Test func aScriptThatFailsFiveTimesInARowIsDisabled() async throws {
        let log = LogCollector()
        let script = try await loadScript("function on_phase(e) if e.item ~= 2 then error('boom ' .. e.item) end end", name: "flaky.lua", log: log)
        for item in 0..<10 { script.deliver(phaseEvent(item)) }
        await script.flush()
        let warnings = log.all.filter { $0.level == .warn }.map(\.message)
        // Item 2 succeeds and resets the count; 3…7 are five in a row.
        #expect(warnings.count == 7)
        #expect(warnings.first?.contains("on_phase: ") == true && warnings.first?.contains("flaky.lua:1: boom 0") == true)
        #expect(log.all.filter { $0.level == .error }.map(\.message) == ["disabled after 5 failures in a row; the batch goes on without it"])
        #expect(script.isDisabled)
        #expect(script.stats.failures == 7)
    }

    @Test func aCallThatRunsTooLongIsAbortedAndTheScriptGoesOn() async throws {
        let log = LogCollector()
        var settings = HookScript.Settings()
        settings.limits.time = 0.3
        let script = try await loadScript(
            "function on_phase(e) if e.item == 0 then while true do end end comfyq.log('info', 'item ' .. e.item) end", settings: settings, log: log)
        script.deliver(phaseEvent(0))
        script.deliver(phaseEvent(1))
        await script.flush()
        #expect(log.all.first?.message.contains("time limit of 0.3 s exceeded") == true)
        #expect(log.messages.last == "item 1")
        script.stop()
    }
}

@Suite struct OnSubmitTests {
    static let event = HookEvent.prompt(.submit, HookPrompt(job: "j", item: 0, promptID: "p", server: "s", params: ["KSampler.seed": 1], attempt: 1), elapsed: 0)

    @Test(arguments: [
        ("return nil", HookScript.SubmitAnswer.unchanged, 0),
        ("return true", .unchanged, 0),
        ("return {}", .unchanged, 0),
        ("return false", .skip, 0),
        ("return {['KSampler.seed'] = e.params['KSampler.seed'] + 1}", .overrides(["KSampler.seed": 2]), 0),
        ("return 42", .unchanged, 1),
        ("error('no')", .unchanged, 1),
        ("return {['KSampler.sede'] = 1}", .unchanged, 1),
    ])
    func returnValues(body: String, expected: HookScript.SubmitAnswer, failures: Int) async throws {
        let log = LogCollector()
        let script = try await loadScript("function on_submit(e) \(body) end", log: log)
        let set = HookSet(scripts: [script])
        let decision = await set.submit(Self.event) { overrides in overrides["KSampler.sede"] != nil ? "KSampler has no input \"sede\"" : nil }
        switch expected {
        case .unchanged: #expect(decision == SubmitDecision(params: ["KSampler.seed": 1]))
        case .skip: #expect(decision.skippedBy == "hook.lua")
        case .overrides(let values):
            #expect(decision.params == .object(values))
            #expect(decision.record == [["script": "hook.lua", "overrides": .object(values)]])
        }
        #expect(script.stats.failures == failures)
        if failures > 0 { #expect(log.all.first?.message.hasPrefix("on_submit: ") == true) }
        script.stop()
    }

    @Test func scriptsChainTheirOverrides() async throws {
        let log = LogCollector()
        let first = try await loadScript("function on_submit(e) return {['KSampler.seed'] = 10} end", name: "a.lua", log: log)
        let second = try await loadScript("function on_submit(e) return {['KSampler.steps'] = e.params['KSampler.seed'] * 2} end", name: "b.lua", log: log)
        let decision = await HookSet(scripts: [first, second]).submit(Self.event) { _ in nil }
        #expect(decision.params == ["KSampler.seed": 10, "KSampler.steps": 20])
        #expect(decision.overrides.map(\.script) == ["a.lua", "b.lua"])
    }
}

@Suite struct HookSetTests {
    @Test func jobScriptsSeeTheirJobOnlyAndBatchEventsGoToAll() async throws {
        let log = LogCollector()
        let sources = [
            HookSet.Source(path: try scriptFile("function on_phase(e) comfyq.log('info', 'a ' .. e.job) end\nfunction on_idle() comfyq.log('info', 'a idle') end", name: "a.lua"), jobs: ["night"]),
            HookSet.Source(path: try scriptFile("function on_phase(e) comfyq.log('info', 'b ' .. e.job) end", name: "b.lua")),
        ]
        let set = try await HookSet.load(sources, environment: log.environment())
        set.deliver(phaseEvent(0, job: "night"))
        set.deliver(phaseEvent(1, job: "day"))
        set.deliver(.batch(.idle, [:]))
        _ = await set.finish(timeout: 5)
        #expect(Set(log.messages) == ["a night", "b night", "b day", "a idle"])
    }

    @Test func progressIsThrottledPerPrompt() async throws {
        let log = LogCollector()
        let script = try await loadScript("function on_progress(e) comfyq.log('info', e.prompt_id .. ' ' .. e.step) end", log: log)
        let set = HookSet(scripts: [script], progressRate: 2)
        for tenth in 0..<30 {  // 3 s of progress, 10 a second, for two prompts
            set.deliver(progressEvent(1, step: tenth), now: Double(tenth) / 10)
            set.deliver(progressEvent(2, step: tenth), now: Double(tenth) / 10)
            await script.flush()  // so the mailbox does not coalesce: only the throttle is tested
        }
        #expect(log.messages.filter { $0.hasPrefix("p1 ") } == ["p1 0", "p1 5", "p1 10", "p1 15", "p1 20", "p1 25"])
        #expect(log.messages.filter { $0.hasPrefix("p2 ") }.count == 6)
    }

    @Test func loadProblemsAreReportedTogether() async throws {
        let sources = [
            HookSet.Source(path: try scriptFile("function on_compelte() end", name: "a.lua")),
            HookSet.Source(path: "/nonexistent/b.lua"),
        ]
        await #expect {
            try await HookSet.load(sources, environment: LogCollector().environment())
        } throws: { error in
            let lines = "\(error)".split(separator: "\n")
            return lines.count == 2 && lines[0].contains("on_compelte") && lines[1] == "/nonexistent/b.lua: no such file"
        }
    }

    @Test func sourcesNamingOneFileMerge() {
        let merged = HookSet.merge([
            HookSet.Source(path: "/x/a.lua", jobs: ["one"], options: ["k": "1"]),
            HookSet.Source(path: "/x/../x/a.lua", jobs: ["two"], options: ["k": "2", "m": "3"]),
            HookSet.Source(path: "/x/b.lua", jobs: ["one"]),
            HookSet.Source(path: "/x/b.lua"),
        ])
        #expect(merged.count == 2)
        #expect(merged[0].jobs == ["one", "two"])
        #expect(merged[0].options == ["k": "2", "m": "3"])
        #expect(merged[1].jobs == nil)
    }
}
