import Foundation
import QueueStore
@testable import Runner
import Simulator
import Synchronization
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
        // What the run said, for the message if the queue never says sampling. (A loaded CI
        // machine once took 10 s to queue the prompt and 20 s to reach its sampler: the deadline
        // is a minute; it takes 2 s here.)
        let said = Mutex<[String]>([])
        let listening = Task { for await event in runner.events { said.withLock { $0.append("\(event)") } } }
        let run = Task { await runner.run() }
        let path = workspace.queuePath
        do {
            try await eventually(
                "the queue to say sampling", timeout: 60,
                describe: { "\(String(describing: try? Queue(path: path).items().first)); the run said: \(said.withLock { $0.suffix(12) })" }
            ) {
                try Queue(path: path).items().first.flatMap { $0.phase == "sampling" ? $0 : nil }
            }
        } catch {
            await runner.stop()
            _ = await run.value
            throw error
        }
        await runner.stop()
        _ = await run.value
        _ = await listening.value
    }
}
