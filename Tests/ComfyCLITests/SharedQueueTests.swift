import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing

/// Several `comfyq run`s on one queue, on SQLite and on PostgreSQL: they share the work without
/// a leader, and when one is killed the others take over what it held, each item once.
@Suite(.serialized) struct SharedQueueTests {
    @Test(arguments: QueueBackend.all)
    func threeRunnersOneKilledEveryItemOnce(_ backend: QueueBackend) async throws {
        let night = try Night("shared-\(backend)")
        let location = try backend.location()
        let environment = night.environment.merging(["COMFYQ_DB": location]) { $1 }
        // Two simulators, watched by every run (none supervises them).
        let port = try Ports.outsideEphemeralRange(2)
        var simulators: [Process] = []
        for offset in 0..<2 {
            simulators.append(
                try startBinary([
                    "simulate", "--port", String(port + offset), "--output", night.path("sim-out/\(offset)"), "--step-time", "15ms", "--load-time", "0",
                    "--node-time", "0", "--warm-up", "0",
                ]))
        }
        defer {
            for simulator in simulators {
                simulator.terminate()
                simulator.waitUntilExit()
            }
        }
        for offset in 0..<2 {
            _ = try await eventually("simulator \(offset) to answer") {
                (await InputFilesCommandTests.stats(port: port + offset))["completed"] != nil ? true : nil
            }
        }
        let job = try night.writeJob(count: 300, steps: 2)
        #expect(try await runBinary(["add", job], environment: environment).status == .success)
        let servers = (0..<2).flatMap { ["--server", "http://127.0.0.1:\(port + $0)"] }
        var runs: [Process] = []
        for index in 0..<3 {
            runs.append(try night.startRun(servers + ["--lease", "3s", "--db", location], tag: "run\(index)"))
        }
        // Kill one while the batch is well under way.
        let done = { @Sendable () async throws -> Int in
            try await Night.statusJSON(location)["jobs"]?.arrayValue?.first?["counts"]?["done"]?.numberValue?.int ?? 0
        }
        _ = try await eventually("60 items done", timeout: 60, describe: { night.output("run0") }) { try await done() >= 60 ? true : nil }
        kill(runs[0].processIdentifier, SIGKILL)
        for (index, run) in runs.enumerated().dropFirst() {
            let status = try await night.wait(run, timeout: 120)
            #expect(status == 0, "run \(index): \(night.output("run\(index)"))")
        }
        _ = try? await night.wait(runs[0])
        let counts = try await Night.statusJSON(location)["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["done"] == 300, "\(String(describing: counts)); run1: \(night.output("run1")); run2: \(night.output("run2"))")
        // Each item executed exactly once on the simulators, and each output saved once.
        var executed = 0
        for offset in 0..<2 { executed += (await InputFilesCommandTests.stats(port: port + offset))["completed"]?.numberValue?.int ?? 0 }
        #expect(executed == 300, "executions on the simulators")
        let outputs = try FileManager.default.contentsOfDirectory(atPath: night.path("out")).filter { $0.hasPrefix("night_") && $0.hasSuffix(".png") }
        #expect(outputs.count == 300 && !outputs.contains { $0.contains("-1.") })
        #expect(night.output("run1").contains("reconciling") || night.output("run2").contains("reconciling"), "a live run took over the killed one's items")
    }
}
