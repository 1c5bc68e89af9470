import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// After a reconnect the run asks the server what became of its prompts: a question it cannot
/// answer is not a prompt lost.
@Suite(.serialized) struct RunnerResyncTests {
    /// A prompt finishes while the socket is down, and the server's `/history` fails right after
    /// the reconnect: the prompt is asked about again (its poll) and collected, never submitted
    /// a second time.
    @Test func aHistoryReadThatFailsAfterAReconnectIsNotALostPrompt() async throws {
        let workspace = try Workspace()
        let job = try workspace.addJob(count: 1)
        let server = try simulator {
            $0.profile = .v0_3_64  // prompts are asked about through /history
            $0.stepTime = 0.01
        }
        defer { server.stop() }
        await control(server, "/sim/hold", #"{"at_step": 2, "seconds": 30}"#)
        var options = fastOptions([server], concurrency: 1)
        options.policy.initialDelay = 1  // the socket comes back a second after it drops…
        options.policy.silenceBeforePolling = 5  // …well before a silent prompt is polled
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        async let summary = runner.run()
        let path = workspace.queuePath
        // (A loaded machine may take a while to get there: the queue and the server say where it is.)
        _ = try await eventually(
            "item 0 sampling on the server", timeout: 60,
            describe: {
                let item = try? Queue(path: path).items(jobID: job).first
                return "item \(item.map { "\($0.state.rawValue) \($0.phase ?? "-") step \($0.step ?? 0)" } ?? "?"); server \(await stats(server).serialized())"
            }
        ) {
            try Queue(path: path).items(jobID: job).first { $0.state == .running && $0.phase == "sampling" }
        }
        await control(server, "/sim/fail-history", #"{"count": 1}"#)
        await control(server, "/sim/drop")
        await control(server, "/sim/release")  // it finishes while the run is away
        let result = await summary
        #expect(result.done == 1 && result.failed == 0 && result.retried == 0, "\(result)")
        let seen = await stats(server)
        #expect(seen["completed"] == 1, "executed once: \(seen)")
        #expect(seen["requests"]?["GET /history/{id}"]?.numberValue?.int ?? 0 >= 2, "the failed read was asked again: \(seen)")
    }
}
