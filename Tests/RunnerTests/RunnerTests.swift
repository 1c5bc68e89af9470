import ComfyClient
import ComfyCore
import Foundation
import QueueStore
@testable import Runner
import Simulator
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A folder with a queue, a job file and its outputs, for one test.
final class Workspace: @unchecked Sendable {
    let root: URL
    var queuePath: String { root.appendingPathComponent("queue.db").path }
    var outputs: URL { root.appendingPathComponent("out") }
    static let workflow = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("jobs/workflows/txt2img.json").path

    init() throws {
        root = TestFolder.root.appendingPathComponent("comfyq-run-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Adds a job of `count` seeds (small images, few steps) and returns its id.
    @discardableResult
    func addJob(name: String = "night", count: Int?, extra: String = "", folder: String? = nil) throws -> Int64 {
        let seeds = count.map { "seeds: {start: 1, count: \($0)}," } ?? ""
        let text = """
            {name: "\(name)", workflow: "\(Self.workflow)", \(seeds)
             set: {"KSampler.steps": 4, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             output: {folder: "\(folder ?? outputs.path)", name: "{job}_{index}"}, \(extra)}
            """
        let loader = JobLoader(readFile: { try String(contentsOfFile: $0, encoding: .utf8) }, fileExists: { FileManager.default.fileExists(atPath: $0) })
        let spec = try loader.load(text: text, path: root.appendingPathComponent("\(name).json").path)
        return try Queue(path: queuePath).add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
    }

    func counts() throws -> [ItemState: Int] {
        try Queue(path: queuePath).jobs().reduce(into: [:]) { total, job in
            for (state, count) in job.counts { total[state, default: 0] += count }
        }
    }

    func files(_ ext: String) -> [String] {
        let names = (FileManager.default.enumerator(atPath: outputs.path)?.allObjects as? [String]) ?? []
        // Outputs, not their thumbnails (`.thumbs/`).
        return names.filter { $0.hasSuffix(".\(ext)") && !$0.split(separator: "/").contains { $0.hasPrefix(".") } }.sorted()
    }
}

func simulator(_ configure: (inout SimulatorOptions) -> Void = { _ in }) throws -> Simulator {
    var options = SimulatorOptions(
        outputDirectory: TestFolder.root.appendingPathComponent("comfyq-run-sim-\(UUID())").path)
    options.port = 0
    options.instant()
    options.stepTime = 0.002
    configure(&options)
    return try Simulator(options: options)
}

func fastOptions(_ servers: [Simulator], concurrency: Int = 2) -> RunnerOptions {
    var options = RunnerOptions(servers: servers.map { URL(string: $0.url)! })
    options.stateFolder = Hermetic.environment["XDG_STATE_HOME"]! + "/comfyq"  // never the user's
    options.environment = Hermetic.childEnvironment()
    options.concurrency = concurrency
    options.policy.initialDelay = 0.05
    options.policy.silenceBeforePolling = 1
    options.policy.pollInterval = 0.5
    options.tick = 0.1
    // A queue write that fails on a loaded machine pauses the run until the queue can be written
    // again: looked at twice a second here, not every 30 s.
    options.spaceCheckInterval = 0.5
    return options
}

func control(_ simulator: Simulator, _ path: String, _ body: String = "{}") async {
    var request = URLRequest(url: URL(string: simulator.url + path)!)
    request.httpMethod = "POST"
    request.httpBody = Data(body.utf8)
    _ = try? await URLSession(configuration: .ephemeral).data(for: request)
}

func stats(_ simulator: Simulator) async -> JSONValue {
    var request = URLRequest(url: URL(string: simulator.url + "/sim/stats")!)
    request.httpMethod = "POST"
    do {
        let (data, _) = try await URLSession(configuration: .ephemeral).data(for: request)
        return try JSONValue(parsing: Array(data))
    } catch {
        return .string("no stats: \(error)")
    }
}

@Suite(.serialized) struct RunnerTests {
    @Test func fiftyItemsAcrossTwoServersEachRunOnce() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 50)
        let fast = try simulator()
        // 4 s a prompt against next to nothing: the slow one can finish 2 prompts every 4 s, far
        // fewer than even a starved run gets through the fast one (under a full suite on 2 cores
        // a run has taken 600 ms a prompt: at 200 ms a prompt the two came out even).
        let slow = try simulator { $0.stepTime = 1 }
        defer {
            fast.stop()
            slow.stop()
        }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([fast, slow]))
        let summary = await runner.run()
        #expect(summary.done == 50)
        #expect(summary.failed == 0)
        #expect(try workspace.counts() == [.done: 50])
        #expect(workspace.files("png").count == 50)
        #expect(workspace.files("json").count == 50)
        let completed = await [stats(fast), stats(slow)].map { $0["completed"]?.numberValue?.int ?? 0 }
        #expect(completed.reduce(0, +) == 50)  // no prompt ran twice
        #expect(completed[0] > completed[1])  // the faster server took more
        // A sidecar says where the image came from.
        let sidecar = try JSONValue(parsing: String(contentsOf: workspace.outputs.appendingPathComponent("night_0.json"), encoding: .utf8))
        #expect(sidecar["job"] == "night")
        #expect(sidecar["item"] == 0)
        #expect(sidecar["parameters"]?["3.seed"] == 1)
        #expect(sidecar["workflow_sha1"]?.stringValue?.count == 40)
        #expect(sidecar["model_key"] == "ckpt_name=v1-5-pruned-emaonly.safetensors")
        #expect(sidecar["timings"]?.objectValue != nil)
    }

    /// A long run must not keep anything per finished prompt: once the batch is done, the
    /// runner's tables and each connection's are empty.
    @Test func nothingIsKeptPerFinishedPrompt() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 40)
        let server = try simulator()
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 4))
        let summary = await runner.run()
        #expect(summary.done == 40)
        #expect(await runner.retainedPromptCount() == 0)
    }

    @Test func serverRestartAndDroppedSocketsLoseNothing() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 30)
        let server = try simulator { $0.stepTime = 0.01 }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server]))
        let chaos = Task {
            try? await Task.sleep(for: .milliseconds(300))
            await control(server, "/sim/drop")
            try? await Task.sleep(for: .milliseconds(300))
            await control(server, "/sim/restart")
            try? await Task.sleep(for: .milliseconds(300))
            await control(server, "/sim/drop")
        }
        let summary = await runner.run()
        await chaos.value
        #expect(summary.done == 30)
        #expect(try workspace.counts() == [.done: 30])
        #expect(workspace.files("png").count == 30)
    }

    /// A queue damaged under a running batch (here a table dropped by hand) ends the run with
    /// the reason: it neither reads as "nothing pending" nor waits forever.
    @Test func aDamagedQueueEndsTheRunWithTheReason() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 40)
        let server = try simulator { $0.stepTime = 0.01 }
        defer { server.stop() }
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server]))
        async let summary = runner.run()
        _ = try await eventually("3 items done", describe: { "\((try? workspace.counts()) ?? [:])" }) {
            (try workspace.counts()[.done] ?? 0) >= 3 ? true : nil
        }
        try SQLiteDatabase(path: workspace.queuePath).execute("DROP TABLE items")
        let ended = await summary
        guard case .queueFailed(let reason)? = ended.stopReason else {
            Issue.record("stop reason: \(String(describing: ended.stopReason))")
            return
        }
        #expect(reason.contains("no such table: items"), "\(reason)")
    }

    @Test func failuresFailTheirItemAndTheBatchGoesOn() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 6, extra: "retries: 0")
        let server = try simulator()
        defer { server.stop() }
        await control(server, "/sim/fail-node", #"{"class_type": "VAEDecode", "exception_type": "OutOfMemoryError", "message": "simulated OOM", "count": 2}"#)
        let runner = try Runner(queuePath: workspace.queuePath, options: fastOptions([server], concurrency: 1))
        let summary = await runner.run()
        #expect(summary.done == 4)
        #expect(summary.failed == 2)
        let failed = try Queue(path: workspace.queuePath).items(states: [.failed])
        #expect(failed.count == 2)
        #expect(failed.allSatisfy { $0.error == "node 8 (VAEDecode): OutOfMemoryError: simulated OOM" })
    }

    @Test func validationErrorsFailAtOnceWithTheServersMessage() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 2)
        let server = try simulator { $0.models = ["sd_xl_base_1.0.safetensors"] }
        defer { server.stop() }
        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.failed == 2)
        #expect(summary.retried == 0)
        let failed = try Queue(path: workspace.queuePath).items(states: [.failed])
        #expect(failed.first?.error?.contains("node 4 (CheckpointLoaderSimple) input ckpt_name: Value not in list") == true)
        #expect(failed.first?.attempts == 1)
    }

    @Test func unwritableOutputFolderFailsWithPathAndReason() async throws {
        let workspace = try Workspace()
        let blocked = workspace.root.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: blocked)
        try workspace.addJob(count: 1, folder: blocked.appendingPathComponent("out").path)
        let server = try simulator()
        defer { server.stop() }
        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.failed == 1)
        let error = try Queue(path: workspace.queuePath).items(states: [.failed]).first?.error ?? ""
        #expect(error.contains(blocked.path))
        #expect(error.contains("cannot create the folder"))
    }

    @Test func stalledPromptIsInterruptedAndRetried() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 2, extra: #"timeouts: {stall: "300ms"}"#)
        let server = try simulator { $0.stepTime = 0.01 }
        defer { server.stop() }
        // The first prompt goes silent at its second step, whenever it starts (a stall timed from
        // the test's start could be over before a run under load submits anything), and stays so
        // until it is interrupted: the interrupt ends it unfinished, and the retry goes through.
        await control(server, "/sim/hold", #"{"at_step": 2, "seconds": 30}"#)
        var options = fastOptions([server], concurrency: 1)
        options.policy.silenceBeforePolling = 60  // the watchdog, not the history poll, must act
        let summary = try await Runner(queuePath: workspace.queuePath, options: options).run()
        #expect(summary.done == 2)
        #expect(summary.failed == 0)
        #expect(summary.retried >= 1)
    }

    /// A crash after an output was saved but before the item was recorded done: the next run
    /// collects the prompt again from history and reuses the files (no `name-1.png`).
    @Test func collectingAgainReusesSavedOutputs() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 3)
        let server = try simulator()
        defer { server.stop() }
        _ = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(workspace.files("png").count == 3)
        try Queue(path: workspace.queuePath).database.execute("UPDATE items SET state = 'running', finished_at = NULL WHERE idx = 1")
        let summary = try await Runner(queuePath: workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.done == 1)
        #expect(try workspace.counts() == [.done: 3])
        #expect(workspace.files("png") == ["night_0.png", "night_1.png", "night_2.png"])
        #expect((await stats(server))["completed"] == 3)  // not run again either
    }

    @Test func deadServerFromTheStart() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 1)
        var options = RunnerOptions(servers: [URL(string: "http://127.0.0.1:\(Hermetic.refusingPort)")!])
        options.stateFolder = Hermetic.environment["XDG_STATE_HOME"]! + "/comfyq"
        options.tick = 0.1
        let summary = try await Runner(queuePath: workspace.queuePath, options: options).run()
        #expect(summary.stopReason == .noServerAnswers(["http://127.0.0.1:\(Hermetic.refusingPort)"]))
        #expect(try workspace.counts() == [.pending: 1])
    }

    @Test func aDeadServerBesideAGoodOneGetsNothing() async throws {
        let workspace = try Workspace()
        try workspace.addJob(count: 5)
        let server = try simulator()
        defer { server.stop() }
        var options = fastOptions([server])
        options.servers.append(ServerDefinition(name: "dead", url: "http://127.0.0.1:1"))
        let summary = try await Runner(queuePath: workspace.queuePath, options: options).run()
        #expect(summary.done == 5)
        let servers = try Queue(path: workspace.queuePath).items(states: [.done]).compactMap(\.server)
        #expect(Set(servers) == [server.url])
    }
}
