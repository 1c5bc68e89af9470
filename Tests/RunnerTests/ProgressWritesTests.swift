import Foundation
import QueueStore
@testable import Runner
import Simulator
import TestSupport
import Testing

@Suite struct ProgressWritesTests {
    @Test(arguments: [
        // since the last write, a phase change?, decision
        (0.0, true, ProgressWrites.Decision.leaveToClock),
        (0.1, true, .leaveToClock),
        (0.25, true, .write),
        (3.0, true, .write),
        (0.0, false, .skip),
        (0.3, false, .skip),
        (0.5, false, .write),
        (9.0, false, .write),
    ])
    func decides(sinceLastWrite: Double, phaseChanged: Bool, expected: ProgressWrites.Decision) {
        #expect(ProgressWrites.decide(sinceLastWrite: sinceLastWrite, phaseChanged: phaseChanged) == expected)
    }

    /// Setup, sampling and its first step come a moment apart, and the next step 30 s later:
    /// the queue says `sampling` well before that step, written by the clock.
    @Test func aPhaseChangeTooSoonAfterTheLastWriteReachesTheQueueFromTheClock() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 1)
        let server = try simulator { $0.stepTime = 30 }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 1))
        let run = Task { await runner.run() }
        let path = workspace.queuePath
        try await eventually("the queue to say sampling", timeout: 20, describe: { "\(String(describing: try? Queue(path: path).items().first))" }) {
            try Queue(path: path).items().first.flatMap { $0.phase == "sampling" ? $0 : nil }
        }
        await runner.stop()
        _ = await run.value
    }
}
