import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Synchronization
import Testing

/// The clock decides; what needs a server runs beside it. A server that answers nothing must
/// not hold the clock, and with it the heartbeat that tells other runs this one is alive.
@Suite(.serialized) struct RunnerClockTests {
    @Test func aHungServerDoesNotHoldTheHeartbeat() async throws {
        let workspace = try Workspace()
        let job = try workspace.addJob(count: 2, extra: #"timeouts: {stall: "1s"}"#)
        let server = try simulator { $0.stepTime = 2 }  // 8 s a prompt: sampling is seen before it ends
        var options = fastOptions([server], concurrency: 2)
        options.servers = [ServerDefinition(name: "gpu0", url: server.url, downAfter: 30)]  // probes and cancels wait 10 s
        options.lease = 6  // a heartbeat every 2 s
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let run = Task { await runner.run() }
        // Whatever happens below, the server and the run are stopped (a hung server never lets a run end).
        let seen: Double
        do {
            seen = try await Self.oldestHeartbeat(server, workspace.queuePath, job: job)
        } catch {
            server.stop()
            await runner.stop()
            _ = await run.value
            throw error
        }
        #expect(seen < 6, "the heartbeat was \(seen) s old with a 6 s lease")
        server.stop()
        await runner.stop()
        _ = await run.value
    }

    /// Hangs the server once an item runs on it, then returns the oldest the run's heartbeat in the
    /// queue was over the next 12 s (both prompts stall after 1 s, and their cancels get no answer).
    static func oldestHeartbeat(_ server: Simulator, _ path: String, job: Int64) async throws -> Double {
        _ = try await eventually(
            "an item running", timeout: 60, describe: { "\((try? Queue(path: path).items(jobID: job).map { "\($0.state) \($0.phase ?? "-")" }) ?? [])" }
        ) {
            try Queue(path: path).items(jobID: job).contains { $0.state == .running } ? true : nil
        }
        await control(server, "/sim/hang")  // answers nothing from now on, sockets open
        let hung = Date()
        let oldest = Mutex(0.0)
        return try await eventually("12 s of a hung server", timeout: 60, interval: 0.2) { () -> Double? in
            let now = Date().timeIntervalSince1970
            let ages = try Queue(path: path).runnerRecords().map { now - $0.heartbeatAt }
            let worst = oldest.withLock { value in
                value = max(value, ages.max() ?? 0)
                return value
            }
            return Date().timeIntervalSince(hung) >= 12 ? worst : nil
        }
    }
}
