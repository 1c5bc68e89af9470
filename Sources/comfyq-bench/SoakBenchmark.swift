import ComfyCore
import Foundation
import QueueStore
import WebSocket
import Workloads

/// A long night in a few minutes: `comfyq run` (the release binary beside this one) runs
/// 100,000 prompts at zero simulated time through a separate `comfyq simulate`, and its resident
/// memory is read from /proc as it goes. A `--watch` service runs for weeks: what it keeps per
/// finished prompt must be nothing.
///
///     comfyq-bench soak [count]     (default 100000)
enum SoakBenchmark {
    static func run(count: Int = 100_000) async {
        guard let comfyq = SupervisionBenchmark.comfyq else {
            print("soak: skipped: build the comfyq product beside comfyq-bench (swift build -c release)")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-soak-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, port) = startSimulator(comfyq, in: directory)
        defer {
            simulator.terminate()
            simulator.waitUntilExit()
        }
        let db = directory.appendingPathComponent("queue.db").path
        let queue = addSweep(named: "soak", count: count, to: db, in: directory)

        let runner = Process()
        runner.executableURL = URL(fileURLWithPath: comfyq)
        runner.arguments = ["run", "--server", "http://127.0.0.1:\(port)", "--db", db, "--concurrency", "4"]
        runner.standardOutput = FileHandle.nullDevice
        runner.standardError = FileHandle.nullDevice
        // Outputs are deleted as they come, so the disk does not fill: the runner sees none of it.
        let outputs = directory.appendingPathComponent("out")
        func doneCount() -> Int { (try? queue.jobs())?.first?.counts[.done] ?? 0 }
        let start = ContinuousClock.now
        try! runner.run()
        var samples: [(done: Int, rss: Double)] = []
        var nextMark = count / 10
        while runner.isRunning {
            try? await Task.sleep(for: .milliseconds(250))
            let done = doneCount()
            if done >= nextMark {
                samples.append((done, Double(residentBytes(of: String(runner.processIdentifier))) / 1_048_576))
                // Every tenth, and the last at 99 % (the run's end, before it exits).
                nextMark = nextMark + count / 10 < count ? nextMark + count / 10 : (nextMark < count * 99 / 100 ? count * 99 / 100 : Int.max)
                for name in (try? FileManager.default.contentsOfDirectory(atPath: outputs.path)) ?? [] {
                    try? FileManager.default.removeItem(at: outputs.appendingPathComponent(name))
                }
            }
        }
        let seconds = seconds(since: start)
        let done = doneCount()
        print("soak: \(done) prompts at zero simulated time through a separate simulator, concurrency 4: \(format(Double(done) / seconds, 0)) prompts/s")
        print("  runner RSS by prompts done: " + samples.map { "\($0.done / 1000)k \(format($0.rss, 1)) MB" }.joined(separator: ", "))
        if let first = samples.first, let last = samples.last {
            print(
                "  from \(first.done / 1000)k to \(last.done / 1000)k: \(format(last.rss - first.rss, 1)) MB (\(format((last.rss - first.rss) * 1_048_576 / Double(max(1, last.done - first.done)), 0)) bytes per prompt)  [target: within 5 MB]"
            )
        }
    }

    /// A `comfyq simulate` at zero simulated time on a free port, its outputs in `directory/sim`.
    static func startSimulator(_ comfyq: String, in directory: URL) -> (Process, port: Int) {
        let port = SupervisionBenchmark.freePort()
        let simulator = Process()
        simulator.executableURL = URL(fileURLWithPath: comfyq)
        simulator.arguments = [
            "simulate", "--port", String(port), "--output", directory.appendingPathComponent("sim").path, "--step-time", "0", "--load-time", "0",
            "--node-time", "0", "--warm-up", "0",
        ]
        simulator.standardOutput = FileHandle.nullDevice
        simulator.standardError = FileHandle.nullDevice
        try! simulator.run()
        return (simulator, port)
    }

    /// A seed sweep of `count` txt2img items (`extra`: more job fields) added to the queue at
    /// `db`, its outputs in `directory/out`.
    static func addSweep(named name: String, count: Int, to db: String, in directory: URL, extra: String = "") -> Queue {
        let workflow = Workloads.txt2img(steps: 1).json.serialized()
        let loader = JobLoader(readFile: { _ in workflow }, fileExists: { _ in true })
        let spec = try! loader.load(
            text: #"{name: "\#(name)", workflow: "w.json", seeds: {start: 1, count: \#(count)}, output: {folder: "\#(directory.path)/out", name: "{index}"}, \#(extra)}"#,
            path: "\(directory.path)/\(name).json")
        let queue = try! Queue(path: db)
        try! queue.add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
        return queue
    }
}
