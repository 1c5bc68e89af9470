import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// The dispatch policy in a real run: a checkpoint sweep written with the checkpoint as the
/// inner axis loads each checkpoint once per server, and a priority job still goes first.
@Suite(.serialized) struct RunnerDispatchTests {
    static let checkpoints = ["a.safetensors", "b.safetensors", "c.safetensors"]

    /// `seeds` seeds × 3 checkpoints, the checkpoint changing fastest (a, b, c, a, b, c…).
    static func addSweep(_ workspace: Workspace, seeds: Int, extra: String = "") throws {
        let names = checkpoints.map { "\"\($0)\"" }.joined(separator: ", ")
        try workspace.addJob(
            name: "sweep", count: nil,
            extra: """
                matrix: {"KSampler.seed": [\((1...seeds).map(String.init).joined(separator: ", "))],
                         "Load Checkpoint.ckpt_name": [\(names)]}, \(extra)
                """)
    }

    static func loads(_ servers: [Simulator]) async -> [Int] {
        var result: [Int] = []
        for server in servers { result.append(await stats(server)["loads"]?.numberValue?.int ?? -1) }
        return result
    }

    @Test func anInterleavedSweepLoadsEachCheckpointOnce() async throws {
        let workspace = try Workspace()
        try Self.addSweep(workspace, seeds: 6)
        let server = try simulator()
        defer { server.stop() }
        let summary = await try Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.done == 18 && summary.failed == 0, "\(summary)")
        let loads = await Self.loads([server])
        let order = try Queue(path: workspace.queuePath).items().sorted { ($0.startedAt ?? 0) < ($1.startedAt ?? 0) }.map { "\($0.index):\($0.modelKey ?? "-")" }
        #expect(loads == [3], "\(order)")
    }

    @Test func strictOrderKeepsTheWrittenOrderAndItsLoads() async throws {
        for strictInJob in [false, true] {
            let workspace = try Workspace()
            try Self.addSweep(workspace, seeds: 3, extra: strictInJob ? "order: \"strict\"" : "")
            let server = try simulator()
            defer { server.stop() }
            var options = fastOptions([server], concurrency: 1)
            if !strictInJob { options.dispatch = DispatchPolicy(order: .strict) }
            let summary = await try Runner(queuePath: workspace.queuePath, options: options).run()
            #expect(summary.done == 9)
            #expect(await Self.loads([server]) == [9], "strict in the job: \(strictInJob)")
            let started = try Queue(path: workspace.queuePath).items().sorted { ($0.startedAt ?? 0) < ($1.startedAt ?? 0) }.map(\.index)
            #expect(started == Array(0..<9))
        }
    }

    @Test func twoServersLoadAtMostFourTimes() async throws {
        let workspace = try Workspace()
        try Self.addSweep(workspace, seeds: 8)
        let servers = [try simulator { $0.stepTime = 0.005 }, try simulator { $0.stepTime = 0.005 }]
        defer { for server in servers { server.stop() } }
        let summary = await try Runner(queuePath: workspace.queuePath, options: fastOptions(servers)).run()
        #expect(summary.done == 24)
        let loads = await Self.loads(servers)
        #expect(loads.reduce(0, +) <= 4, "\(loads)")
        #expect(loads.allSatisfy { $0 >= 1 }, "both servers worked: \(loads)")
    }

    /// A job added mid-run with a higher priority takes the next free slot: every one of its
    /// items starts before any item of the first job that was still waiting when it was added.
    @Test func aPriorityJobAddedMidRunGoesNext() async throws {
        let workspace = try Workspace()
        try workspace.addJob(name: "long", count: 30)
        let server = try simulator { $0.stepTime = 0.01 }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 1))
        async let summary = runner.run()
        let queue = try Queue(path: workspace.queuePath)
        _ = try await eventually("5 items of the first job done", describe: { "\((try? workspace.counts()) ?? [:])" }) {
            (try workspace.counts()[.done] ?? 0) >= 5 ? true : nil
        }
        try workspace.addJob(name: "urgent", count: 3, extra: "priority: 5")
        // What of the first job still waits once the urgent one is in (a claim made before it
        // was added may start before it: that is not overtaking).
        let waiting = Set(try queue.items(states: [.pending]).filter { $0.jobName == "long" }.map(\.index))
        #expect(await summary.done == 33)
        let items = try queue.items()
        let urgentLast = try #require(items.filter { $0.jobName == "urgent" }.compactMap(\.startedAt).max())
        let overtaken = items.filter { $0.jobName == "long" && waiting.contains($0.index) }.compactMap(\.startedAt)
        #expect(overtaken.count == waiting.count)
        #expect(overtaken.allSatisfy { $0 > urgentLast }, "urgent done by \(urgentLast); long items started \(overtaken.sorted().prefix(3))")
    }
}
