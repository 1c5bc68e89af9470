import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A simulator with ComfyUI-on-an-H100 timings: 35 ms per step, nothing else slow.
func gpuSimulator(latency: Double, output: String) -> Simulator {
    var options = SimulatorOptions(outputDirectory: output)
    options.port = 0
    options.instant()
    options.stepTime = 0.035
    options.latency = latency
    return try! Simulator(options: options)
}

/// A queue holding one job of `count` txt2img items (20 steps, 64×64): an SQLite file in
/// `directory`, or the queue at `location` (a PostgreSQL database).
func benchQueue(_ directory: URL, count: Int, name: String, location: String? = nil) -> String {
    let path = location ?? directory.appendingPathComponent("\(name).db").path
    let workflowText = Workloads.txt2img(steps: 20).json.serialized()
    let loader = JobLoader(readFile: { _ in workflowText }, fileExists: { _ in true })
    let spec = try! loader.load(
        text: #"{workflow: "w.json", seeds: {start: 1, count: \#(count)}, output: {folder: "\#(directory.appendingPathComponent("out-\(name)").path)"}}"#,
        path: "bench.json")
    try! Queue(path: path).add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
    return path
}

/// The client of ComfyUI's own websockets_api_example.py: submit, wait for the end, read the
/// history, download the outputs, then the next prompt.
func naiveClient(_ simulator: Simulator, count: Int, output: URL) async -> Double {
    let api = ComfyAPI(baseURL: URL(string: simulator.url)!)
    let clientID = "naive"
    guard let socket = try? await WebSocketClient.connect(to: api.webSocketURL(clientID: clientID)) else { return 0 }
    var messages = socket.messages.makeAsyncIterator()
    var graph = Workloads.txt2img(steps: 20)
    let start = ContinuousClock.now
    for index in 0..<count {
        graph.set(node: "3", input: "seed", to: .int(index))
        let id = UUID().uuidString.lowercased()
        _ = try? await api.submit(graph, promptID: id, clientID: clientID)
        while let message = try? await messages.next() {
            if case .text(let text) = message, case .executing(id?, nil, _)? = try? ServerEventDecoder.decode(text) { break }
        }
        if let record = try? await api.history(id) {
            for file in record.outputs { _ = try? await api.download(file, to: output.appendingPathComponent("\(id).png")) }
        }
    }
    socket.close()
    return seconds(since: start)
}

func benchmarkRunner() async {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-run-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let count = 30
    print("runner: GPU busy fraction, \(count) prompts of 20 steps at 35 ms (an H100 on SD1.5 512²); busy = simulated execution / the span from the first prompt's start to the last one's end")
    for latency in [0.0, 0.05] {
        var line = "  latency \(Int(latency * 1000)) ms:"
        for concurrency in [1, 2] {
            let simulator = gpuSimulator(latency: latency, output: directory.appendingPathComponent("sim-\(latency)-\(concurrency)").path)
            var options = RunnerOptions(servers: [URL(string: simulator.url)!])
            options.concurrency = concurrency
            let runner = try! Runner(queuePath: benchQueue(directory, count: count, name: "gpu-\(latency)-\(concurrency)"), options: options)
            _ = await runner.run()
            line += "  comfyq c=\(concurrency) \(format(simulator.busySeconds / simulator.activeSeconds * 100, 2))%"
            simulator.stop()
        }
        let simulator = gpuSimulator(latency: latency, output: directory.appendingPathComponent("sim-naive-\(latency)").path)
        _ = await naiveClient(simulator, count: count, output: directory)
        line += "  naive client \(format(simulator.busySeconds / simulator.activeSeconds * 100, 2))%"
        simulator.stop()
        print(line)
    }

    // Overhead: zero simulated time, one server.
    var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-fast").path)
    options.port = 0
    options.instant()
    let fast = try! Simulator(options: options)
    var runnerOptions = RunnerOptions(servers: [URL(string: fast.url)!])
    runnerOptions.concurrency = 4
    let prompts = 1_000
    let runner = try! Runner(queuePath: benchQueue(directory, count: prompts, name: "overhead"), options: runnerOptions)
    let before = processCPUSeconds()
    let start = ContinuousClock.now
    let summary = await runner.run()
    let wall = seconds(since: start)
    let cpu = processCPUSeconds() - before
    fast.stop()
    print("runner: \(summary.done) prompts, zero simulated time, one server, concurrency 4: \(format(Double(summary.done) / wall, 0)) prompts/s end to end, \(format(cpu / Double(max(1, summary.done)) * 1000, 2)) ms CPU per prompt (runner and simulator in one process)  [target ≥ 200/s]")

    // Memory: 100,000 items queued, a few seconds of running.
    let big = benchQueue(directory, count: 100_000, name: "memory")
    var slowOptions = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-memory").path)
    slowOptions.port = 0
    slowOptions.instant()
    slowOptions.stepTime = 0.005
    let slow = try! Simulator(options: slowOptions)
    let before100k = residentBytes()
    let memoryRunner = try! Runner(queuePath: big, options: RunnerOptions(servers: [URL(string: slow.url)!]))
    let task = Task { await memoryRunner.run() }
    var peak = 0
    for _ in 0..<30 {
        try? await Task.sleep(for: .milliseconds(100))
        peak = max(peak, residentBytes())
    }
    await memoryRunner.stop()
    _ = await task.value
    slow.stop()
    print("runner: resident memory with 100,000 items queued, while running: \(format(Double(peak) / 1_048_576, 0)) MB for the whole process (\(format(Double(peak - before100k) / 1_048_576, 1)) MB more than before the run)  [target < 100 MB, not growing with the queue]")
}
