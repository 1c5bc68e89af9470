import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// Ctrl-C twice at every point of a submission: before the POST (prompts waiting in their
/// lane), during it (the server slow to answer), after it (queued or running there), and as
/// prompts finish. After the stop nothing runs on the server that the queue does not know about,
/// and a second run finishes the batch with every item run to completion exactly once.
@Suite(.serialized) struct RunnerStopTests {
    /// Stop delays (seconds after the run starts) and the server's answer latency: together
    /// they land the stop before, during and after POSTs, and as prompts end. (Every stage at
    /// stop, one by one, is in `FlightMachineTests`; this runs the real thing at many moments.)
    static let points: [(stopAfter: Double, latency: Double)] = [
        (0, 0.1), (0.05, 0.1), (0.12, 0.1), (0.1, 0.02), (0.25, 0.02), (0.3, 0), (0.45, 0), (0.6, 0),
    ]

    /// Against ComfyUI 0.38 (prompts taken off with `/api/jobs/cancel`, never `/interrupt`) and
    /// 0.3.64 (out of `/queue`, then a targeted `/interrupt`).
    @Test(arguments: points.indices, ComfyUIProfile.allCases)
    func stopAtEveryPointRunsEachItemOnce(_ point: Int, _ profile: ComfyUIProfile) async throws {
        let (stopAfter, latency) = Self.points[point]
        let count = 16
        let workspace = try Workspace()
        try workspace.addJob(count: count)
        let server = try simulator {
            $0.stepTime = 0.01
            $0.latency = latency
            $0.profile = profile
        }
        defer { server.stop() }
        let first = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 8))
        async let firstSummary = first.run()
        try await Task.sleep(for: .seconds(stopAfter))
        await first.stop()
        let summary = await firstSummary
        #expect(summary.stopReason == .stoppedByUser)

        // Nothing runs or waits on the server now.
        let api = ComfyAPI(baseURL: URL(string: server.url)!)
        let queued = try await api.queue()
        #expect(queued.running.isEmpty && queued.pending.isEmpty, "left on the server: \(queued)")
        // What the queue holds is consistent: done, or pending, or (its server did not answer
        // the stop) in flight with its prompt id for the next run to reconcile.
        let items = try Queue(path: workspace.queuePath).items()
        #expect(items.count == count)
        for item in items where item.state != .done && item.state != .pending {
            #expect(item.promptID != nil, "\(item.jobName)/\(item.index) is \(item.state) without a prompt id")
        }

        // A second run finishes it: every item ran to completion on the server exactly once.
        let second = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 8)).run()
        let failures = try Queue(path: workspace.queuePath).items().filter { $0.state == .failed }.map { "\($0.index): \($0.error ?? "")" }
        #expect(second.failed == 0, "\(failures)")
        #expect(try workspace.counts() == [.done: count])
        let seen = await stats(server)
        let completed = seen["completed"]?.numberValue?.int
        #expect(completed == count, "prompts completed on the server: \(seen) for \(count) items (stop after \(stopAfter) s)")
        #expect(workspace.files("png").count == count)
        let requests = seen["requests"]?.objectValue ?? JSONObject()
        switch profile {
        case .v0_38:
            #expect(requests["POST /interrupt"] == nil && requests["POST /queue"] == nil, "\(requests)")
        case .v0_3_64:
            #expect(requests.keys.allSatisfy { !$0.contains("/api/jobs") || $0 == "GET /api/jobs" }, "only the probe asks for jobs: \(requests)")
        }
    }
}
