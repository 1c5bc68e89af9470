import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import Synchronization
import TestSupport
import Testing

/// Records every event a script receives (each logged as its JSON table).
final class EventRecorder: Sendable {
    private let lines = Mutex<[HookLogLine]>([])
    var environment: HookEnvironment { HookEnvironment { line in self.lines.withLock { $0.append(line) } } }
    var events: [JSONValue] { lines.withLock { $0 }.compactMap { $0.level == .info ? try? JSONValue(parsing: $0.message) : nil } }
    var warnings: [String] { lines.withLock { $0 }.filter { $0.level != .info }.map(\.message) }

    static let script = """
        local function record(e) comfyq.log('info', comfyq.json.encode(e)) end
        on_batch_start, on_phase, on_progress, on_complete, on_error, on_batch_done = record, record, record, record, record, record
        function on_submit(e)
          record(e)
          if e.item == 5 then return false end
          return { ['KSampler.seed'] = 7000 + e.item }
        end
        """
}

@Suite struct RunnerHookTests {
    static func hookFile(_ source: String, in workspace: Workspace, name: String = "record.lua") throws -> String {
        let path = workspace.root.appendingPathComponent(name).path
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func scriptsSeeEveryEventAndOnSubmitChangesOrSkipsItems() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 6, extra: "retries: 0")
        let server = try simulator()
        defer { server.stop() }
        await control(server, "/sim/fail-node", #"{"class_type": "VAEDecode", "exception_type": "OutOfMemoryError", "message": "simulated OOM", "count": 2}"#)
        let recorder = EventRecorder()
        let hooks = try await HookSet.load([HookSet.Source(path: try Self.hookFile(EventRecorder.script, in: workspace))], environment: recorder.environment)
        var options = fastOptions([server], concurrency: 1)
        options.hooks = hooks
        // Every phase is heard on the socket: a history poll after a second of silence (a
        // machine under load) would end a prompt as done without them.
        options.policy.silenceBeforePolling = 60
        let summary = try await Runner(queuePath: workspace.queuePath, options: options).run()
        #expect(summary.done == 3 && summary.failed == 2 && summary.skipped == 1)

        let events = recorder.events
        #expect(recorder.warnings.isEmpty, "\(recorder.warnings)")
        #expect(events.first?["event"] == "batch_start" && events.first?["pending"] == 6)
        let last = try #require(events.last)
        #expect(last["event"] == "batch_done")
        #expect(last["done"] == 3 && last["failed"] == 2 && last["skipped"] == 1)
        #expect(last["failures"]?.arrayValue?.map { $0["error"]?.stringValue } == Array(repeating: "node 8 (VAEDecode): OutOfMemoryError: simulated OOM", count: 2))

        // Per item: submit, then the phases in order, then complete or error.
        for item in 0..<5 {
            let mine = events.filter { $0["item"] == .int(item) }
            #expect(mine.first?["event"] == "submit" && mine.first?["attempt"] == 1 && mine.first?["job"] == "night")
            let phases = mine.filter { $0["event"] == "phase" }.compactMap { $0["phase"]?.stringValue }
            let end = try #require(mine.last)
            if end["event"] == "complete" {
                #expect(phases == ["setup", "sampling", "decoding", "saving", "done"])
                #expect(end["params"]?["KSampler.seed"] == .int(7000 + item))  // the override
                let outputs = end["outputs"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(outputs.count == 1 && FileManager.default.fileExists(atPath: outputs[0]))
                #expect(end["timings"]?["sampling"]?.numberValue != nil)
                #expect(mine.contains { $0["event"] == "progress" })  // the first of a prompt always passes the throttle
                let decoding = mine.first { $0["phase"] == "decoding" }
                #expect(decoding?["step"] == 4 && decoding?["steps"] == 4 && decoding?["sampler"] == 1 && decoding?["samplers"] == 1)
                #expect(decoding?["node"]?["class_type"] == "VAEDecode" && decoding?["previous_phase"] == "sampling")
                // The sidecar records what the hook changed.
                let sidecar = try JSONValue(parsing: String(contentsOfFile: outputs[0].replacingOccurrences(of: ".png", with: ".json"), encoding: .utf8))
                #expect(sidecar["hook_overrides"] == [["script": "record.lua", "overrides": ["KSampler.seed": .int(7000 + item)]]])
                #expect(sidecar["parameters"]?["KSampler.seed"] == .int(7000 + item))
            } else {
                #expect(end["event"] == "error")
                #expect(end["error"]?["message"] == "node 8 (VAEDecode): OutOfMemoryError: simulated OOM")
                #expect(end["error"]?["node"] == "8" && end["error"]?["class_type"] == "VAEDecode" && end["error"]?["exception_type"] == "OutOfMemoryError")
                #expect(end["will_retry"] == false)
                #expect(phases.last == "failed")
            }
        }
        #expect(events.filter { $0["item"] == 5 }.map { $0["event"] } == ["submit"])
        let skipped = try Queue(path: workspace.queuePath).items(states: [.cancelled])
        #expect(skipped.map(\.index) == [5])
        #expect(skipped.first?.error == "skipped by record.lua (on_submit returned false)")
    }

    @Test func aSlowHookHoldsUpNothing() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 6)
        let server = try simulator()
        defer { server.stop() }
        let recorder = EventRecorder()
        let path = try Self.hookFile("function on_phase(e) comfyq.exec({'sleep', '2'}) end", in: workspace, name: "slow.lua")
        let hooks = try await HookSet.load([HookSet.Source(path: path)], environment: recorder.environment)
        var options = fastOptions([server])
        options.hooks = hooks
        options.hookDrainTimeout = 0.5
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let messages = Task { () -> [String] in
            var lines: [String] = []
            for await event in runner.events { if case .message(let text) = event { lines.append(text) } }
            return lines
        }
        let summary = await runner.run()
        // Every item finished although the hook was far behind: each call takes 2 s, and what it
        // had not reached when the run ended (of 6 items × 5 phase changes) was dropped.
        #expect(summary.done == 6)
        #expect(hooks.scripts[0].stats.calls < 30, "\(hooks.scripts[0].stats)")
        #expect(await messages.value.contains("hook slow.lua: still busy after 0.5 s; its remaining events are dropped"))
    }
}

@Suite struct RunnerIdleHookTests {
    @Test func watchModeSaysIdleWhenTheQueueDrainsAndAgainAfterMoreWork() async throws {
        let workspace = try Workspace()
        try workspace.addJob(name: "first", count: 2)
        let server = try simulator()
        defer { server.stop() }
        let recorder = EventRecorder()
        let path = workspace.root.appendingPathComponent("idle.lua").path
        try "function on_idle(b) comfyq.log('info', comfyq.json.encode(b)) end".write(toFile: path, atomically: true, encoding: .utf8)
        var options = fastOptions([server])
        options.watch = true
        options.hooks = try await HookSet.load([HookSet.Source(path: path)], environment: recorder.environment)
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let run = Task { await runner.run() }
        func idles() async -> [JSONValue] {
            await options.hooks?.scripts[0].flush()
            return recorder.events
        }
        for _ in 0..<100 where await idles().count < 1 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await idles().map { $0["done"] } == [2])
        try workspace.addJob(name: "second", count: 1)
        for _ in 0..<100 where await idles().count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await idles().map { $0["done"] } == [2, 3])
        await runner.drain()
        #expect(await run.value.done == 3)
    }
}

/// Previews: the run asks for previews with metadata (feature_flags first), writes the latest of
/// each prompt where hooks find it (`e.preview`), and removes it when the prompt ends.
@Suite struct RunnerPreviewTests {
    @Test func hooksSeeTheLatestPreviewAsAFileThatGoesWithThePrompt() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 2)
        let server = try simulator {
            $0.previews = true
            $0.stepTime = 0.01
        }
        defer { server.stop() }
        let seen = workspace.root.appendingPathComponent("previews-seen.txt").path
        let script = """
            function on_progress(e)
              if e.preview then
                local file = io.open(e.preview, 'rb')
                local bytes = file and file:read('a') or ''
                if file then file:close() end
                local out = assert(io.open('\(seen)', 'a'))
                out:write(e.item, ' ', e.preview, ' ', #bytes, ' ', bytes:sub(1, 2) == '\\255\\216' and 'jpeg' or 'other', '\\n')
                out:close()
              end
            end
            """
        let recorder = EventRecorder()
        var options = fastOptions([server], concurrency: 1)
        options.hooks = try await HookSet.load(
            [HookSet.Source(path: try RunnerHookTests.hookFile(script, in: workspace, name: "previews.lua"))], environment: recorder.environment,
            progressRate: 1000)
        options.stateFolder = workspace.root.appendingPathComponent("state").path
        // The first prompt waits at step 3 until the hook has read a preview of it.
        await control(server, "/sim/hold", #"{"at_step": 3, "seconds": 30}"#)
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        async let summary = runner.run()
        let line = try await eventually("the hook to read a preview of item 0", timeout: 30) { () -> [Substring]? in
            let text = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
            let lines: [[Substring]] = text.split(separator: "\n").map { $0.split(separator: " ") }
            return lines.first { $0.first == "0" && $0.last == "jpeg" }
        }
        await control(server, "/sim/release")
        #expect(await summary.done == 2)
        #expect(line.count == 4 && Int(line[2]) ?? 0 > 0, "\(line)")
        #expect(line[1].hasPrefix(options.stateFolder + "/previews/"))
        // Gone with their prompts.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: options.stateFolder + "/previews")) ?? []
        #expect(left.isEmpty, "\(left)")
    }
}
