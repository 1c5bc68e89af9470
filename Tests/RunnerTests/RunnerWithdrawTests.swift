import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// A stall or `comfyq cancel` takes a running prompt off its server through the flight machine,
/// which asks first whether it finished there: a prompt that did is collected once, not run
/// again (a stall) or lost (a cancel).
@Suite(.serialized) struct RunnerWithdrawTests {
    /// The prompt runs to its end without a word on the socket (`/sim/mute`), so the run hears
    /// nothing of it for longer than its stall timeout: as it is declared stalled, the server
    /// says it finished. It is collected, once; no retry, no second execution.
    @Test(arguments: ComfyUIProfile.allCases)
    func aPromptThatFinishesAsItIsDeclaredStalledIsCollectedOnce(_ profile: ComfyUIProfile) async throws {
        let workspace = try Workspace()
        let job = try workspace.addJob(count: 1, extra: #"timeouts: {stall: "1s"}"#)
        let server = try simulator { $0.profile = profile }
        defer { server.stop() }
        await control(server, "/sim/mute", #"{"count": 1}"#)
        var options = fastOptions([server], concurrency: 1)
        options.policy.silenceBeforePolling = 60  // the stall, not a poll, finds it
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let result = await runner.run()
        #expect(result.done == 1 && result.failed == 0 && result.retried == 0, "\(result)")
        let items = try Queue(path: workspace.queuePath).items(jobID: job)
        #expect(items.map(\.state) == [.done] && items.first?.attempts == 1, "\(items)")
        #expect(workspace.files("png").count == 1)
        let seen = await stats(server)
        #expect(seen["completed"] == 1, "executed once: \(seen)")
    }

    /// `comfyq cancel` reaches a prompt that had already finished on its server (unheard: the
    /// socket said nothing of it): it ran, so it is collected and the item is done with its
    /// outputs, rather than left cancelled with its picture on the server.
    @Test func aCancelThatComesAfterThePromptFinishedKeepsItsOutputs() async throws {
        let workspace = try Workspace()
        let job = try workspace.addJob(count: 1)
        let server = try simulator()
        defer { server.stop() }
        await control(server, "/sim/mute", #"{"count": 1}"#)
        var options = fastOptions([server], concurrency: 1)
        options.policy.silenceBeforePolling = 60
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        async let summary = runner.run()
        let path = workspace.queuePath
        do {
            _ = try await eventually("the prompt finished on the server, unheard", timeout: 20, describe: { await stats(server).serialized() }) {
                try Queue(path: path).items(jobID: job).first?.state == .running ? await stats(server)["completed"] == 1 ? true : nil : nil
            }
            #expect(try Queue(path: path).cancel(.job(job), now: Date().timeIntervalSince1970) == 1)
        } catch {
            await runner.stop()
            _ = await summary
            throw error
        }
        let result = await summary
        #expect(result.done == 1 && result.failed == 0 && result.retried == 0, "\(result)")
        let items = try Queue(path: workspace.queuePath).items(jobID: job)
        #expect(items.map(\.state) == [.done], "\(items)")
        #expect(workspace.files("png").count == 1)
        #expect(await stats(server)["completed"] == 1)
    }
}
