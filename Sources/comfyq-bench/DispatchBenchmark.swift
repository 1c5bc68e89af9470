import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import Workloads

/// Model-aware dispatch: what it costs to decide, and what it saves on a simulator that loads a
/// checkpoint in 2 s (ComfyUI's classic cache: a loader runs again whenever its input changed)
/// and samples 20 steps at 35 ms.
enum DispatchBenchmark {
    static func run() async {
        policyCost()
        await sweeps()
        await priority()
    }

    // MARK: The decision

    /// 100,000 pending items in 50 model groups (2 jobs × 25 checkpoints), 4 servers.
    static func policyCost() {
        let groups = (0..<50).map { index in
            DispatchPolicy.Group(
                jobID: Int64(index / 25 + 1), modelKey: ModelKey("ckpt_name=model\(index % 25).safetensors"), waiting: 2_000,
                firstIndex: index % 25, waitingSince: 1_000 + Double(index))
        }
        let policy = DispatchPolicy()
        let loaded = [ModelKey("ckpt_name=model3.safetensors"), ModelKey("ckpt_name=model7.safetensors"), nil, nil]
        var sink = 0
        let rounds = 2_000
        let one = measure {
            for round in 0..<rounds {
                var servers = loaded.enumerated().map { DispatchPolicy.Server(freeSlots: $0.offset == round % 4 ? 1 : 0, loaded: $0.element) }
                sink &+= policy.plan(groups: groups, servers: &servers, now: 1_200).count
            }
        } / Double(rounds)
        let eight = measure {
            for _ in 0..<rounds {
                var servers = loaded.map { DispatchPolicy.Server(freeSlots: 2, loaded: $0) }
                sink &+= policy.plan(groups: groups, servers: &servers, now: 1_200).count
            }
        } / Double(rounds)

        // The queue's side: the summary read from SQLite, kept, and a group's item claimed.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-dispatch-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("queue.db").path
        let queue = try! Queue(path: path)
        for job in 0..<2 {
            let spec = sweep(checkpoints: (0..<25).map { "model\($0).safetensors" }, seeds: 2_000, inner: true, folder: directory.path, name: "big\(job)")
            try! queue.add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
        }
        let read = measure(rounds: 5) {
            let fresh = try! Queue(path: path)
            sink &+= try! fresh.pendingGroups().count
        }
        _ = try! queue.pendingGroups()
        let cached = measure { for _ in 0..<1_000 { sink &+= try! queue.pendingGroups().count } } / 1_000
        let groupIDs = try! queue.pendingGroups().map(\.id)
        var claims = 0
        let claim = measure(rounds: 3) {
            for index in 0..<200 {
                if try! queue.claim(groupIDs[index % groupIDs.count], server: "s", promptID: UUID().uuidString, now: 0) != nil { claims += 1 }
            }
        } / 200
        print(
            "dispatch: policy per decision with 100,000 pending in 50 model groups, 4 servers: \(format(one * 1e6, 1)) µs for one free slot, \(format(eight * 1e6, 1)) µs to fill 8  [target ≤ 1 ms]"
        )
        print(
            "dispatch: the queue's side at 100,000 pending: reading the groups from SQLite \(format(read * 1e3, 1)) ms (once, and again only when another process writes), kept \(format(cached * 1e6, 1)) µs, claiming a group's next item \(format(claim * 1e6, 0)) µs"
        )
        _ = sink
    }

    // MARK: Sweeps on the simulator

    /// A job of `checkpoints` × `seeds` seeds; `inner`: the checkpoint changes fastest (a, b, c, a…).
    static func sweep(
        checkpoints: [String], seeds: Int, inner: Bool, folder: String, name: String, lora: Bool = false, extra: String = ""
    ) -> JobSpec {
        let base = lora ? Workloads.txt2img(steps: 20, lora: "style.safetensors") : Workloads.txt2img(steps: 20)
        let text = base.json.serialized()
        let loader = JobLoader(readFile: { _ in text }, fileExists: { _ in true })
        let axis = "\"\(lora ? "LoRA.lora_name" : "CheckpointLoaderSimple.ckpt_name")\": [\(checkpoints.map { "\"\($0)\"" }.joined(separator: ", "))]"
        let seedAxis = "\"KSampler.seed\": [\((1...seeds).map(String.init).joined(separator: ", "))]"
        let matrix = inner ? "\(seedAxis), \(axis)" : "\(axis), \(seedAxis)"
        return try! loader.load(
            text: "{name: \"\(name)\", workflow: \"w.json\", matrix: {\(matrix)}, output: {folder: \"\(folder)/out-\(name)\"}, \(extra)}",
            path: "\(folder)/\(name).json")
    }

    struct Outcome {
        var seconds: Double
        var loads: [Int]
        var busy: [Double]
    }

    static func simulator(_ directory: URL, _ name: String) -> Simulator {
        var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-\(name)").path)
        options.port = 0
        options.instant()
        options.stepTime = 0.035
        options.loadTime = 2
        return try! Simulator(options: options)
    }

    static func runSweep(_ spec: JobSpec, servers count: Int, order: DispatchPolicy.Order, directory: URL, name: String) async -> Outcome {
        let path = directory.appendingPathComponent("\(name).db").path
        try! Queue(path: path).add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
        let servers = (0..<count).map { simulator(directory, "\(name)-\($0)") }
        var options = RunnerOptions(servers: servers.map { URL(string: $0.url)! })
        options.dispatch = DispatchPolicy(order: order)
        let runner = try! Runner(queuePath: path, options: options)
        let drain = Task { for await _ in runner.events {} }
        let start = ContinuousClock.now
        _ = await runner.run()
        let span = seconds(since: start)
        await drain.value
        var outcome = Outcome(seconds: span, loads: [], busy: [])
        for server in servers {
            outcome.loads.append(server.loads)
            outcome.busy.append(server.busySeconds / server.activeSeconds)
            server.stop()
        }
        return outcome
    }

    static func sweeps() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-sweeps-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoints = ["a.safetensors", "b.safetensors", "c.safetensors"]
        print("dispatch: 3 checkpoints × 20 seeds on the simulator (load 2 s, 20 steps × 35 ms), concurrency 2")
        let interleaved = sweep(checkpoints: checkpoints, seeds: 20, inner: true, folder: directory.path, name: "interleaved")
        let grouped = sweep(checkpoints: checkpoints, seeds: 20, inner: false, folder: directory.path, name: "grouped")
        let models = await runSweep(interleaved, servers: 1, order: .models, directory: directory, name: "models")
        let written = await runSweep(grouped, servers: 1, order: .models, directory: directory, name: "written")
        let strict = await runSweep(interleaved, servers: 1, order: .strict, directory: directory, name: "strict")
        print(
            "  one server, checkpoint the inner axis: \(models.loads[0]) loads, \(format(models.seconds, 1)) s; the same items written grouped: \(written.loads[0]) loads, \(format(written.seconds, 1)) s (ratio \(format(models.seconds / written.seconds, 3)))  [target ≤ 1.05]; in queue order (--order strict, as before): \(strict.loads[0]) loads, \(format(strict.seconds, 1)) s (\(format(strict.seconds / models.seconds, 2))× slower)"
        )
        let two = await runSweep(interleaved, servers: 2, order: .models, directory: directory, name: "two")
        print(
            "  two servers: \(two.loads.reduce(0, +)) loads (\(two.loads.map(String.init).joined(separator: " + "))), \(format(two.seconds, 1)) s, busy \(two.busy.map { format($0 * 100, 1) + "%" }.joined(separator: " and "))  [target ≤ 4 loads, ≥ 95% busy]"
        )
        let loras = (1...4).map { "style\($0).safetensors" }
        let loraSweep = sweep(checkpoints: loras, seeds: 10, inner: true, folder: directory.path, name: "lora", lora: true)
        let loraModels = await runSweep(loraSweep, servers: 1, order: .models, directory: directory, name: "lora-models")
        let loraStrict = await runSweep(loraSweep, servers: 1, order: .strict, directory: directory, name: "lora-strict")
        print(
            "  one checkpoint × 4 LoRAs × 10 seeds, LoRA the inner axis: \(loraModels.loads[0]) loads, \(format(loraModels.seconds, 1)) s; in queue order: \(loraStrict.loads[0]) loads, \(format(loraStrict.seconds, 1)) s (\(format(loraStrict.seconds / loraModels.seconds, 2))× slower)"
        )
    }

    // MARK: A priority job mid-run

    static func priority() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-priority-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("queue.db").path
        let long = sweep(checkpoints: ["a.safetensors"], seeds: 30, inner: true, folder: directory.path, name: "long")
        try! Queue(path: path).add(long, items: long.expand(random: { 0 }), now: Date().timeIntervalSince1970)
        let server = simulator(directory, "priority")
        let runner = try! Runner(queuePath: path, options: RunnerOptions(servers: [URL(string: server.url)!]))
        let drain = Task { for await _ in runner.events {} }
        let run = Task { await runner.run() }
        let queue = try! Queue(path: path)
        while (try! queue.jobs().first?.counts[.done] ?? 0) < 5 { try? await Task.sleep(for: .milliseconds(20)) }
        let urgent = sweep(checkpoints: ["b.safetensors"], seeds: 2, inner: true, folder: directory.path, name: "urgent", extra: "priority: 5")
        let added = Date().timeIntervalSince1970
        try! queue.add(urgent, items: urgent.expand(random: { 0 }), now: added)
        _ = await run.value
        await drain.value
        server.stop()
        let items = try! queue.items()
        let firstUrgent = items.filter { $0.jobName == "urgent" }.compactMap(\.startedAt).min() ?? 0
        let perPrompt = 20 * 0.035
        print(
            "dispatch: a priority job added mid-run (a different checkpoint, concurrency 2): its first item was sent \(format(firstUrgent - added, 2)) s after it was added (one prompt takes \(format(perPrompt, 2)) s plus a 2 s load)"
        )
    }
}
