import ComfyCore
import Foundation
import QueueStore
import Runner
import Simulator
import Workloads

/// Several runs sharing one queue: 4 runners and 2 simulators at zero simulated time, 10,000
/// prompts, on SQLite and (given a server) PostgreSQL: the aggregate rate, and that no prompt
/// ran twice. All in one process on this machine's cores (the simulators too), so the rate is
/// what the machine gives, not a ceiling of the queue.
///
///     comfyq-bench runners [postgresql://user:password@host:port/postgres [--postgresql-only]]
enum RunnersBenchmark {
    static func run(postgres: String?) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-runners-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        if !CommandLine.arguments.contains("--postgresql-only") {
            let sqlite = benchQueue(directory, count: 10_000, name: "runners")
            await measure(backend: "SQLite", location: sqlite, directory: directory)
        }
        guard let postgres else { return }
        let admin = try! PostgresDatabase(url: postgres)
        let name = "comfyq_bench_runners_\(UUID().uuidString.prefix(8).lowercased())"
        try! admin.execute("CREATE DATABASE \(name)")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(name)") }
        let url = benchQueue(directory, count: 10_000, name: "runners-pg", location: postgresURL(postgres, database: name))
        await measure(backend: "PostgreSQL", location: url, directory: directory)
    }

    static func measure(backend: String, location: String, directory: URL) async {
        var simulators: [Simulator] = []
        for index in 0..<2 {
            var options = SimulatorOptions(outputDirectory: directory.appendingPathComponent("sim-\(backend)-\(index)").path)
            options.port = 0
            options.instant()
            simulators.append(try! Simulator(options: options))
        }
        let urls = simulators.map { URL(string: $0.url)! }
        let cpuBefore = processCPUSeconds()
        let start = ContinuousClock.now
        let summaries = await withTaskGroup(of: RunSummary.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var options = RunnerOptions(servers: urls)
                    options.concurrency = 2
                    return await (try! Runner(queuePath: location, options: options)).run()
                }
            }
            var all: [RunSummary] = []
            for await summary in group { all.append(summary) }
            return all
        }
        let wall = seconds(since: start)
        let cpu = processCPUSeconds() - cpuBefore
        let done = summaries.reduce(0) { $0 + $1.done }
        var executed = 0
        for simulator in simulators {
            executed += simulator.completedCount
            simulator.stop()
        }
        print(
            "runners (\(backend)): 4 runners × 2 simulators at zero simulated time, 10,000 prompts: \(format(Double(done) / wall, 0)) prompts/s together (\(summaries.map { String($0.done) }.joined(separator: " + ")) = \(done) done), \(executed - done) ran twice; \(format(cpu / Double(max(1, done)) * 1000, 2)) ms CPU per prompt in this process (runs and simulators; not PostgreSQL's)  [target ≥ 500/s on PostgreSQL, 0 twice]"
        )
    }
}
