import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Submissions: in claim order per server.
@Suite(.serialized) struct RunnerSubmissionTests {
    /// The number ComfyUI gave a prompt on arrival (`prompt[0]` of its history entry).
    static func number(_ server: Simulator, _ promptID: String) async throws -> Double? {
        let (data, _) = try await URLSession(configuration: .ephemeral).data(from: URL(string: "\(server.url)/history/\(promptID)")!)
        return try JSONValue(parsing: Array(data))[promptID]?["prompt"]?.arrayValue?.first?.numberValue?.double
    }

    /// Regression: each submission was its own task, so two could reach the server in either
    /// order (60 items at concurrency 8: out of claim order in 5 runs of 6).
    @Test func submissionsToAServerLeaveInClaimOrder() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 60)
        let server = try simulator { $0.latency = 0.002 }
        defer { server.stop() }
        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 8)).run()
        #expect(summary.done == 60)
        let items = try Queue(path: workspace.queuePath).items().sorted { ($0.startedAt ?? 0, $0.index) < ($1.startedAt ?? 0, $1.index) }
        var numbers: [Double] = []
        for item in try Queue(path: workspace.queuePath).items().sorted(by: { $0.index < $1.index }) {
            let promptID = try #require(item.promptID)
            let number = try await Self.number(server, promptID)
            numbers.append(try #require(number))
        }
        #expect(numbers == numbers.sorted(), "server numbers by item: \(numbers)")
        #expect(items.count == 60)
    }
}
