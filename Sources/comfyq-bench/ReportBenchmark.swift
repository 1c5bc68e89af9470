import ComfyCore
import Foundation
import QueueStore
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A huge job's night and morning in memory the size of a small one's: `comfyq run` (the
/// release binary beside this one) runs a 1,000-item and a 100,000-item seed sweep at zero
/// simulated time through a separate `comfyq simulate`, keeping the report up to date as it goes
/// and drawing the contact sheets at its end; its peak RSS (VmHWM, read from /proc as it runs)
/// is compared. Then `comfyq report` and `comfyq report --png` of the large job, timed.
///
///     comfyq-bench report [count]     (default 100000)
enum ReportBenchmark {
    static func run(count: Int = 100_000) async {
        guard let comfyq = SupervisionBenchmark.comfyq else {
            print("report: skipped: build the comfyq product beside comfyq-bench (swift build -c release)")
            return
        }
        let small = await night(comfyq, count: 1_000)
        let large = await night(comfyq, count: count)
        guard let small, let large else { return }
        print(
            "report: peak RSS of comfyq run (report kept up to date, contact sheets at the end), seed sweeps at zero simulated time: 1,000 items \(format(small.peak, 1)) MB, \(count) items \(format(large.peak, 1)) MB: \(format(large.peak - small.peak, 1)) MB more  [target: within 50 MB]"
        )
        print("  the runs: \(format(small.seconds, 1)) s and \(format(large.seconds, 1)) s; \(large.sheets) contact sheets, \(large.pages) report pages")
        print("  comfyq report of the \(count)-item job: \(format(large.report.seconds, 1)) s, peak RSS \(format(large.report.peak, 1)) MB")
        print("  comfyq report --png of it: \(format(large.png.seconds, 1)) s for \(large.sheets) sheets (\(format(large.png.seconds * 1000 / Double(max(1, large.sheets)), 0)) ms a sheet of ≤ 1,000 pictures), peak RSS \(format(large.png.peak, 1)) MB")
    }

    struct Night {
        var peak: Double
        var seconds: Double
        var sheets: Int
        var pages: Int
        var report: (seconds: Double, peak: Double)
        var png: (seconds: Double, peak: Double)
    }

    static func night(_ comfyq: String, count: Int) async -> Night? {
        await afterSweep(comfyq, count: count, label: "report") { directory, db, _, run in
            let out = directory.appendingPathComponent("out").path
            let sheets = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasPrefix("contact-sheet") && $0.hasSuffix(".png") }.count
            let pages = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasPrefix("index") && $0.hasSuffix(".html") }.count
            let report = await measure(comfyq, ["report", "sweep", "--db", db])
            let png = await measure(comfyq, ["report", "sweep", "--db", db, "--png", directory.appendingPathComponent("again.png").path])
            return Night(peak: run.peak, seconds: run.seconds, sheets: sheets, pages: pages, report: report, png: png)
        }
    }

    /// A `count`-item seed sweep named `sweep`, run to its end by `comfyq run` (measured) at zero
    /// simulated time through a separate `comfyq simulate`, in a folder of its own; then `then`
    /// with the folder, the queue's path, the queue and the run's figures (the folder and the
    /// simulator are gone after it). Nil, said under `label`, when the night did not finish.
    static func afterSweep<T>(
        _ comfyq: String, count: Int, label: String, _ then: (URL, String, Queue, (seconds: Double, peak: Double)) async -> T?
    ) async -> T? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-\(label)-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, port) = SoakBenchmark.startSimulator(comfyq, in: directory)
        defer {
            simulator.terminate()
            simulator.waitUntilExit()
        }
        let db = directory.appendingPathComponent("queue.db").path
        let queue = SoakBenchmark.addSweep(
            named: "sweep", count: count, to: db, in: directory, extra: #"set: {"EmptyLatentImage.width": 64, "EmptyLatentImage.height": 64}"#)
        // The simulator takes a moment to listen.
        _ = await SupervisionBenchmark.until(10) { (try? Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/system_stats")!)) != nil }
        let run = await measure(comfyq, ["run", "--server", "http://127.0.0.1:\(port)", "--db", db, "--concurrency", "4", "--no-user-hooks"])
        let done = (try? queue.jobs())?.first?.counts[.done] ?? 0
        guard done == count else {
            print("\(label): only \(done) of \(count) items done; no figures")
            return nil
        }
        return await then(directory, db, queue, run)
    }

    /// Runs `comfyq ARGUMENTS` to its end: seconds, and its peak RSS in MB (VmHWM, read every 20 ms).
    static func measure(_ comfyq: String, _ arguments: [String]) async -> (seconds: Double, peak: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: comfyq)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = ContinuousClock.now
        try! process.run()
        var peak = 0.0
        while process.isRunning {
            peak = max(peak, highWater(process.processIdentifier))
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (seconds(since: start), peak)
    }

    /// A process's peak resident memory so far (VmHWM), in MB.
    static func highWater(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }
}
