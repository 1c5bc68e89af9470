import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// Pre-flight inside a run: items checked against each server's node definitions before any is
/// submitted; what only some servers can run goes only to them; a server whose definitions are
/// not known is not counted as one that cannot.
@Suite(.serialized) struct RunnerPreflightTests {
    static func options(_ servers: [Simulator], _ workspace: Workspace) -> RunnerOptions {
        var options = fastOptions(servers, concurrency: 1)
        options.preflight = ObjectInfoCache(folder: workspace.root.appendingPathComponent("object_info").path)
        return options
    }

    static func addCheckpoints(_ workspace: Workspace, _ names: [String], seeds: Int = 2) throws {
        try workspace.addJob(
            count: nil,
            extra: #"matrix: {"Load Checkpoint.ckpt_name": [\#(names.map { "\"\($0)\"" }.joined(separator: ", "))], "KSampler.seed": [\#((1...seeds).map(String.init).joined(separator: ", "))]}"#)
    }

    static func messages(_ runner: Runner) -> Task<[String], Never> {
        Task {
            var lines: [String] = []
            for await event in runner.events { if case .message(let text) = event { lines.append(text) } }
            return lines
        }
    }

    @Test func itemsNoServerCanRunAreHeldAndTheRestRuns() async throws {
        let workspace = try Workspace()
        try Self.addCheckpoints(workspace, ["a.safetensors", "nowhere.safetensors"])
        let server = try simulator { $0.models = ["a.safetensors"] }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: Self.options([server], workspace))
        let held = Self.heldEvents(runner)
        let summary = await runner.run()
        #expect(summary.done == 2 && summary.failed == 0 && summary.held == 2 && summary.stopReason == nil, "\(summary)")
        #expect(await held.value == ["night: 2 held: 'nowhere.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name)"])
        #expect(await stats(server)["completed"] == 2)
        #expect(try workspace.counts() == [.done: 2, .held: 2])
        let queue = try Queue(path: workspace.queuePath)
        #expect(try queue.held().values.map(\.count) == [2])
        // The next run holds them again without a word more than the one line; retry puts them
        // back, and a run holds them again while no server has the checkpoint.
        #expect(try queue.retry(.job(try queue.job(named: "night").id), now: 0) == 2)
        #expect(try workspace.counts() == [.done: 2, .pending: 2])
        let again = await try Runner(queuePath: workspace.queuePath, options: Self.options([server], workspace)).run()
        #expect(again.done == 0 && again.held == 2)
        #expect(await stats(server)["completed"] == 2)
    }

    @Test func heldItemsRunOnceTheCheckpointIsCopiedIn() async throws {
        let workspace = try Workspace()
        try Self.addCheckpoints(workspace, ["a.safetensors", "later.safetensors"])
        let server = try simulator { $0.models = ["a.safetensors"] }
        defer { server.stop() }
        var options = Self.options([server], workspace)
        options.watch = true
        options.definitionsRefresh = 0.2
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let held = Self.heldEvents(runner)
        let run = Task { await runner.run() }
        _ = try await eventually("2 done and 2 held") { try workspace.counts() == [.done: 2, .held: 2] ? true : nil }
        await control(server, "/sim/models", #"{"models": ["a.safetensors", "later.safetensors"]}"#)
        _ = try await eventually("the held items to run") { try workspace.counts() == [.done: 4] ? true : nil }
        await runner.drain()
        let summary = await run.value
        #expect(summary.done == 4 && summary.held == 0)
        #expect(await held.value == ["night: 2 held: 'later.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name)", "night: 2 released"])
    }

    @Test func aCheckpointDeletedDuringAWatchHoldsTheItemsThatNeedIt() async throws {
        let workspace = try Workspace()
        let server = try simulator { $0.models = ["a.safetensors", "gone.safetensors"] }
        defer { server.stop() }
        var options = Self.options([server], workspace)
        options.watch = true
        options.definitionsRefresh = 0.05  // with nothing held: every second
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let held = Self.heldEvents(runner)
        let run = Task { await runner.run() }
        // The checkpoint goes; the run fetches the definitions again before the job comes.
        await control(server, "/sim/models", #"{"models": ["a.safetensors"]}"#)
        let fetched = await stats(server)["requests"]?["GET /object_info"]?.numberValue?.int ?? 0
        _ = try await eventually("the definitions fetched again") {
            (await stats(server)["requests"]?["GET /object_info"]?.numberValue?.int ?? 0) > fetched ? true : nil
        }
        try Self.addCheckpoints(workspace, ["a.safetensors", "gone.safetensors"])
        _ = try await eventually("2 done and 2 held") { try workspace.counts() == [.done: 2, .held: 2] ? true : nil }
        await runner.drain()
        let summary = await run.value
        #expect(summary.failed == 0 && summary.held == 2)
        #expect(await held.value == ["night: 2 held: 'gone.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name)"])
    }

    /// The held and released events, as lines.
    static func heldEvents(_ runner: Runner) -> Task<[String], Never> {
        Task {
            var lines: [String] = []
            for await event in runner.events {
                switch event {
                case .held(let job, let items, let reason): lines.append("\(job): \(items) held: \(reason)")
                case .released(let job, let items): lines.append("\(job): \(items) released")
                default: break
                }
            }
            return lines
        }
    }

    @Test func aCheckpointOnlyOneServerHasGoesOnlyThere() async throws {
        let workspace = try Workspace()
        try Self.addCheckpoints(workspace, ["a.safetensors", "b.safetensors"], seeds: 3)
        let a = try simulator { $0.models = ["a.safetensors"] }
        let b = try simulator { $0.models = ["b.safetensors"] }
        defer { a.stop(); b.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: Self.options([a, b], workspace))
        let messages = Self.messages(runner)
        let summary = await runner.run()
        let lines = await messages.value
        #expect(summary.done == 6 && summary.failed == 0, "\(lines)")
        #expect(await stats(a)["completed"] == 3)
        #expect(await stats(b)["completed"] == 3)
        #expect(lines.contains { $0.hasPrefix("pre-flight: night: 'b.safetensors' is not a checkpoint on \(a.url)") }, "\(lines)")
    }

    @Test func aServerWhoseDefinitionsCannotBeHadIsGivenWhatTheOthersCannotRun() async throws {
        let workspace = try Workspace()
        try Self.addCheckpoints(workspace, ["b.safetensors"], seeds: 3)
        let a = try simulator { $0.models = ["a.safetensors"] }
        let b = try simulator { $0.models = ["b.safetensors"] }
        defer { a.stop(); b.stop() }
        await control(b, "/sim/fail-object-info", #"{"count": 100}"#)
        let runner = try Runner(queuePath: workspace.queuePath, options: Self.options([a, b], workspace))
        let messages = Self.messages(runner)
        let summary = await runner.run()
        let lines = await messages.value
        #expect(summary.done == 3 && summary.stopReason == nil, "\(lines)")
        #expect(await stats(a)["completed"] == 0)
        #expect(await stats(b)["completed"] == 3)
        #expect(lines.contains { $0.hasPrefix("\(b.url): pre-flight skipped:") }, "\(lines)")
        #expect(lines.contains { $0.hasSuffix("(left to \(b.url), not checked yet)") }, "\(lines)")
    }
}
