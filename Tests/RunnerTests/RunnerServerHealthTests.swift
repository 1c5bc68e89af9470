import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// Server health inside one run: a watched (unsupervised) server that goes away and comes back.
@Suite(.serialized) struct RunnerServerHealthTests {
    /// Records the run's server reports as they come.
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [ServerReport] = []
        func append(_ report: ServerReport) {
            lock.lock()
            list.append(report)
            lock.unlock()
        }
        var all: [ServerReport] {
            lock.lock()
            defer { lock.unlock() }
            return list
        }
    }

    @Test func aWatchedServerThatDiesAndComesBackResumesTheBatch() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 12)
        // A port below the ephemeral range: while it is free, no other test's simulator takes it.
        let port = try Ports.outsideEphemeralRange()
        let first = try simulator {
            $0.port = port
            $0.stepTime = 0.03
        }
        let url = first.url
        var options = fastOptions([first])
        options.servers = [ServerDefinition(name: "gpu0", url: url, downAfter: 2)]
        let runner = try Runner(queuePath: workspace.queuePath, options: options)
        let reports = Reports()
        let watcher = Task { for await event in runner.events { if case .server(let report) = event { reports.append(report) } } }
        let run = Task { await runner.run() }

        // A generous timeout: the whole suite on 2 cores has starved this for 20 s once.
        try await eventually("3 items done", timeout: 60, describe: { "\((try? workspace.counts()) ?? [:]); \(reports.all.map(\.line))" }) {
            try workspace.counts()[.done, default: 0] >= 3 ? true : nil
        }
        first.stop()
        try await eventually("the run to see gpu0 down", describe: { "\(reports.all.map(\.line))" }) {
            reports.all.contains { $0.state == .down } ? true : nil
        }
        // Down for a while (no server to start: comfyq only watches it), then back on its port.
        try await Task.sleep(for: .seconds(3))
        let second = try simulator {
            $0.port = port
            $0.stepTime = 0.01
        }
        defer { second.stop() }
        let summary = await run.value
        _ = await watcher.value
        #expect(summary.stopReason == nil)
        let rows = try Queue(path: workspace.queuePath).items().filter { $0.state != .done }.map { "\($0.index) \($0.state) \($0.error ?? "")" }
        #expect(try workspace.counts() == [.done: 12], "\(summary) \(rows) \(reports.all.map(\.line))")
        #expect(workspace.files("png").count == 12)
        let states = reports.all.map(\.state)
        #expect(states == [.up, .down, .up], "\(reports.all.map(\.line))")
        let back = try #require(reports.all.last)
        #expect((back.downFor ?? 0) >= 3, "\(back.line)")
        #expect(reports.all[1].reason.hasPrefix("not answering for 2 s (http://127.0.0.1:\(port): connection refused"), "\(reports.all[1].line)")
        // A server that dies loses its history with it (ComfyUI keeps it in memory): a prompt it
        // finished but had not handed over yet must run again, and nothing else may. At most
        // the prompts it held (concurrency 2) ran twice; every item was saved once.
        let made = [first, second].map { server in
            ((FileManager.default.enumerator(atPath: server.options.outputDirectory)?.allObjects as? [String]) ?? [])
                .filter { $0.hasSuffix(".png") && !$0.contains("temp") }.count
        }
        #expect((12...14).contains(made.reduce(0, +)), "\(made)")
        #expect(!workspace.files("png").contains { $0.contains("-1.") })
    }
}
