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

    @Test func problemsNoServerGetsPastSubmitNothing() async throws {
        let workspace = try Workspace()
        try Self.addCheckpoints(workspace, ["a.safetensors", "nowhere.safetensors"])
        let server = try simulator { $0.models = ["a.safetensors"] }
        defer { server.stop() }
        let summary = await try Runner(queuePath: workspace.queuePath, options: Self.options([server], workspace)).run()
        guard case .preflightFailed(let lines)? = summary.stopReason else {
            Issue.record("stopped for \(String(describing: summary.stopReason))")
            return
        }
        #expect(lines == ["night: 'nowhere.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name) (2 items)"])
        #expect(await stats(server)["completed"] == 0)
        #expect(try workspace.counts() == [.pending: 4])
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
