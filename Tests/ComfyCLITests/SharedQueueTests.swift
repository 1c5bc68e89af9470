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
        var simulators: [ChildProcess] = []
        for offset in 0..<2 { simulators.append(try await night.startSimulator(port: port + offset, stepTime: "15ms", name: String(offset))) }
        defer {
            for simulator in simulators {
                simulator.terminate()
                simulator.waitUntilExit()
            }
        }
        // 120 ms a prompt: the runs mostly wait on the simulators, as on real GPUs, so the test
        // does not starve the rest of the suite of CPU.
        let job = try night.writeJob(count: 300, steps: 8)
        #expect(try await runBinary(["add", job], environment: environment).status == .success)
        let servers = (0..<2).flatMap { ["--server", "http://127.0.0.1:\(port + $0)"] }
        var runs: [Process] = []
        for index in 0..<3 {
            runs.append(try night.startRun(servers + ["--lease", "6s", "--db", location], tag: "run\(index)"))
        }
        // Kill one while the batch is well under way.
        let done = { @Sendable () async throws -> Int in
            try await Night.statusJSON(location)["jobs"]?.arrayValue?.first?["counts"]?["done"]?.numberValue?.int ?? 0
        }
        _ = try await eventually("60 items done", timeout: 90, describe: { night.output("run0") }) { try await done() >= 60 ? true : nil }
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

    /// PostgreSQL goes away for 10 s mid-batch (on a cluster of its own): the run pauses, takes
    /// the connection up again when the server is back, and finishes every item exactly once.
    @Test(.enabled(if: PostgresServer.available, Comment(rawValue: PostgresServer.missing)))
    func postgresStoppedMidBatchTheRunFinishesExactlyOnce() async throws {
        let cluster = try PostgresCluster()
        let night = try Night("pg-outage")
        let location = try cluster.database()
        let port = try Ports.outsideEphemeralRange(1)
        let simulator = try await night.startSimulator(port: port, stepTime: "20ms")
        defer {
            simulator.terminate()
            simulator.waitUntilExit()
        }
        let job = try night.writeJob(count: 120, steps: 3)
        #expect(try await runBinary(["add", job, "--db", location]).status == .success)
        let run = try night.startRun(["--server", "http://127.0.0.1:\(port)", "--db", location, "--space-check", "500ms"])
        _ = try await eventually("20 items done", timeout: 60, describe: { night.output("run") }) {
            ((await InputFilesCommandTests.stats(port: port))["completed"]?.numberValue?.int ?? 0) >= 20 ? true : nil
        }
        try cluster.stop()
        // The outage itself lasts 10 s (what is tested, not a wait for something to happen);
        // meanwhile the run notices and pauses.
        try await eventually("the run to pause", timeout: 30, describe: { night.output("run") }) {
            night.output("run").contains("the queue cannot be") ? true : nil
        }
        try await Task.sleep(for: .seconds(10))
        try cluster.start()
        let status = try await night.wait(run, timeout: 120)
        #expect(status == 0, "\(night.output("run"))")
        let counts = try await Night.statusJSON(location)["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["done"] == 120, "\(String(describing: counts))")
        #expect((await InputFilesCommandTests.stats(port: port))["completed"] == 120, "each item executed once")
        let outputs = try FileManager.default.contentsOfDirectory(atPath: night.path("out")).filter { $0.hasPrefix("night_") && $0.hasSuffix(".png") }
        #expect(outputs.count == 120 && !outputs.contains { $0.contains("-1.") })
    }

    /// Two `add`s of 10,000 items at once (two machines adding to one queue): both land whole,
    /// each job's items in their own order.
    @Test(arguments: QueueBackend.all)
    func twoLargeAddsAtOnceBothLandWhole(_ backend: QueueBackend) async throws {
        let night = try Night("two-adds-\(backend)")
        let location = try backend.location()
        var jobs: [String] = []
        for name in ["east", "west"] {
            let path = night.path("\(name).json")
            try #"{name: "\#(name)", workflow: "\#(RunCommandTests.workflow)", seeds: {start: 1, count: 10000}}"#.write(toFile: path, atomically: true, encoding: .utf8)
            jobs.append(path)
        }
        async let east = runBinary(["add", jobs[0], "--db", location], environment: night.environment)
        async let west = runBinary(["add", jobs[1], "--db", location], environment: night.environment)
        let (a, b) = try await (east, west)
        #expect(a.status == .success && b.status == .success, "\(a.stderr)\(b.stderr)")
        let queue = try Queue(path: location)
        for job in try queue.jobs() {
            let items = try queue.items(jobID: job.id)
            #expect(items.count == 10000 && items.map(\.index) == Array(0..<10000), "\(job.name)")
            #expect(items.first?.parameters == #"{"3.seed":1}"# && items.last?.parameters == #"{"3.seed":10000}"#)
        }
        #expect(try queue.jobs().map(\.name).sorted() == ["east", "west"])
    }
}
