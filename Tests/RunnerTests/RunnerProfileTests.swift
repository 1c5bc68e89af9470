import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import TestSupport
import Testing

/// The runner against ComfyUI 0.38 and 0.3.64 (simulator profiles): a batch, a crashed run's
/// prompts reconciled, and every rejection type failing its item at once with one line.
@Suite(.serialized) struct RunnerProfileTests {
    static var now: Double { Date().timeIntervalSince1970 }

    @Test(arguments: ComfyUIProfile.allCases)
    func aBatchRunsAndLearnsTheServersAPI(_ profile: ComfyUIProfile) async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 6)
        let server = try simulator { $0.profile = profile }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server]))
        let messages = Task { await runner.events.reduce(into: [String]()) { if case .message(let text) = $1 { $0.append(text) } } }
        let summary = await runner.run()
        #expect(summary.done == 6 && summary.failed == 0)
        let said = await messages.value
        let expected = profile == .v0_38 ? "ComfyUI 0.38.1, jobs API" : "ComfyUI 0.3.64, queue API"
        #expect(said.contains { $0.contains(expected) }, "\(said)")
        // The sidecar records the output's size where the server gives it (0.38), nothing otherwise.
        let sidecar = try JSONValue(parsing: String(contentsOf: workspace.outputs.appendingPathComponent("night_0.json"), encoding: .utf8))
        if profile == .v0_38 {
            #expect(sidecar["media"] == ["kind": "image", "width": 64, "height": 64])
        } else {
            #expect(sidecar["media"] == .null)
        }
    }

    /// A run died with two prompts on the server (one finished there, one still queued behind
    /// it) and one claimed but never sent. The next run asks the server (one list of what it has
    /// queued or running and `/api/jobs/{id}` for the rest on 0.38; `/queue` and `/history` on
    /// 0.3.64), collects the finished one,
    /// follows the other, submits the third again: each item runs exactly once.
    @Test(arguments: ComfyUIProfile.allCases)
    func aCrashedRunsPromptsAreReconciledExactlyOnce(_ profile: ComfyUIProfile) async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 4)
        let server = try simulator {
            $0.profile = profile
            $0.stepTime = 0.02
        }
        defer { server.stop() }
        let queue = try Queue(path: workspace.queuePath)
        let api = ComfyAPI(baseURL: URL(string: server.url)!)
        for _ in 0..<2 {
            let id = UUID().uuidString.lowercased()
            let claimed = try #require(try queue.claimNext(server: api.name, promptID: id, now: Self.now))
            let workflow = try Workflow(json: JSONValue(parsing: claimed.workflow)).applying(try JSONValue(parsing: claimed.item.parameters), addresses: [:])
            #expect(try queue.markRunning(claimed.item.id, promptID: id, now: Self.now))
            _ = try await api.submit(workflow, promptID: id, clientID: "the-run-that-died")
        }
        _ = try queue.claimNext(server: api.name, promptID: UUID().uuidString.lowercased(), now: Self.now)
        // At least the first (under load both may finish before a look: reconciling then collects two).
        try await eventually("the first prompt to finish on the server", describe: { "\(await stats(server))" }) {
            ((await stats(server))["completed"]?.numberValue?.int ?? 0) >= 1 ? true : nil
        }

        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.done == 4 && summary.failed == 0, "\(summary)")
        let seen = await stats(server)
        #expect(seen["completed"] == 4, "every item ran exactly once: \(seen)")
        let requests = seen["requests"]?.objectValue ?? JSONObject()
        switch profile {
        case .v0_38: #expect((requests["GET /api/jobs/{id}"]?.numberValue?.int ?? 0) >= 1 && (requests["GET /api/jobs"]?.numberValue?.int ?? 0) >= 2, "\(requests)")
        case .v0_3_64: #expect(requests["GET /api/jobs/{id}"] == nil && requests["GET /queue"] != nil, "\(requests)")
        }
    }

    /// Ctrl-C once: what the server has finishes, nothing more is sent, and a second run does the
    /// rest: each item once, on either version.
    @Test(arguments: ComfyUIProfile.allCases)
    func ctrlCOnceDrainsAndTheNextRunFinishes(_ profile: ComfyUIProfile) async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 8)
        let server = try simulator {
            $0.profile = profile
            $0.stepTime = 0.01
        }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 2))
        async let summary = runner.run()
        try await eventually("a first item done") { (try? workspace.counts()[.done]) ?? 0 >= 1 ? true : nil }
        await runner.drain()
        let drained = await summary
        #expect(drained.stopReason == .drained)
        let counts = try workspace.counts()
        #expect((counts[.done] ?? 0) + (counts[.pending] ?? 0) == 8, "\(counts)")
        #expect((await stats(server))["completed"]?.numberValue?.int == counts[.done], "only what was finished ran")
        let second = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 2)).run()
        let finalCounts = try workspace.counts()
        #expect(second.failed == 0 && finalCounts == [.done: 8])
        #expect((await stats(server))["completed"] == 8)
    }

    /// `comfyq cancel` of an item its server is running: the run takes it off the server (the
    /// jobs API's cancel on 0.38, an interrupt aimed at it on 0.3.64) and goes on with the rest.
    @Test(arguments: ComfyUIProfile.allCases)
    func cancellingARunningItemTakesItOffItsServer(_ profile: ComfyUIProfile) async throws {
        let workspace = try Workspace()
        let job = try workspace.addJob(count: 3)
        let server = try simulator {
            $0.profile = profile
            $0.stepTime = 0.01
        }
        defer { server.stop() }
        // The first prompt waits at its second step until it is taken off (or 30 s pass).
        await control(server, "/sim/hold", #"{"at_step": 2, "seconds": 30}"#)
        let queue = try Queue(path: workspace.queuePath)
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 1))
        async let summary = runner.run()
        let path = workspace.queuePath
        let first = try await eventually("item 0 sampling on the server", timeout: 20) {
            try Queue(path: path).items(jobID: job).first { $0.index == 0 && $0.state == .running && $0.phase == "sampling" }
        }
        #expect(try queue.cancel(.item(job: job, index: first.index), now: Self.now) == 1)
        let result = await summary
        #expect(result.done == 2 && result.failed == 0, "\(result)")
        let items = try queue.items(jobID: job)
        #expect(items.map(\.state) == [.cancelled, .done, .done])
        let seen = await stats(server)
        #expect(seen["completed"] == 2, "the cancelled prompt did not run to its end: \(seen)")
        let requests = seen["requests"]?.objectValue ?? JSONObject()
        switch profile {
        case .v0_38: #expect(requests["POST /api/jobs/cancel"] == 1 && requests["POST /interrupt"] == nil, "\(requests)")
        case .v0_3_64: #expect(requests["POST /interrupt"] == 1, "\(requests)")
        }
    }

    struct Rejection: Sendable, CustomTestStringConvertible {
        var name: String
        var profiles: [ComfyUIProfile]
        var change: @Sendable (inout Workflow) -> Void
        var line: String
        var testDescription: String { name }
    }

    static let rejections: [Rejection] = [
        Rejection(
            name: "an unknown node class (0.38)", profiles: [.v0_38],
            change: { $0 = Workflow($0.orderedNodes + [WorkflowNode(id: "20", classType: "NoSuchNode", title: "Upscaler", inputs: ["x": 1])]) },
            line: "missing_node_type: Node 'Upscaler' not found. The custom node may not be installed. (node 20, class NoSuchNode)"),
        Rejection(
            name: "an unknown node class (0.3.64)", profiles: [.v0_3_64],
            change: { $0 = Workflow($0.orderedNodes + [WorkflowNode(id: "20", classType: "NoSuchNode", inputs: ["x": 1])]) },
            line: "invalid_prompt: Cannot execute because node NoSuchNode does not exist. (Node ID '#20')"),
        Rejection(
            name: "a value below its minimum", profiles: ComfyUIProfile.allCases, change: { _ = $0.set(node: "5", input: "width", to: 0) },
            line: "node 5 (EmptyLatentImage) input width: Value 0 smaller than min of 1: width"),
        Rejection(
            name: "no output node", profiles: ComfyUIProfile.allCases, change: { $0 = Workflow($0.orderedNodes.filter { $0.id != "9" }) },
            line: "prompt_no_outputs: Prompt has no outputs"),
        Rejection(
            name: "a dependency cycle (0.38)", profiles: [.v0_38], change: { _ = $0.set(node: "5", input: "batch_size", to: ["8", 0]) },
            line: "dependency_cycle: Dependency cycle detected"),
    ]

    @Test(arguments: rejections, ComfyUIProfile.allCases)
    func everyRejectionFailsItsItemAtOnceWithOneLine(_ rejection: Rejection, _ profile: ComfyUIProfile) async throws {
        guard rejection.profiles.contains(profile) else { return }
        let workspace = try Workspace()
        var workflow = try Workflow(json: JSONValue(parsing: String(contentsOfFile: Workspace.workflow, encoding: .utf8)))
        rejection.change(&workflow)
        let text = #"{name: "bad", workflow: \#(workflow.json.serialized()), retries: 3, output: {folder: "\#(workspace.outputs.path)"}}"#
        let spec = try JobLoader(readFile: { _ in "" }, fileExists: { _ in true }).load(text: text, path: workspace.root.appendingPathComponent("bad.json").path)
        let job = try Queue(path: workspace.queuePath).add(spec, items: spec.expand(random: { 0 }), now: Self.now)
        let server = try simulator { $0.profile = profile }
        defer { server.stop() }
        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.failed == 1 && summary.retried == 0, "failed at once, no retry: \(summary)")
        let error = try #require(try Queue(path: workspace.queuePath).items(jobID: job).first?.error)
        #expect(error.contains(rejection.line) && !error.contains("\n"), "\(error)")
    }
}
