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

/// `add` of a 10,000-item job into an empty queue and into one holding 100,000 items, `status`
/// (job summaries plus running and failed items) with 100,000 items, and a claim + running +
/// finish per item: on SQLite, and on PostgreSQL when a server is given
/// (`comfyq-bench queue postgresql://user:password@host:port/postgres`: a database is made
/// there for each queue, and dropped after).
func benchmarkQueue(postgres: String?) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-queue-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    benchmarkQueue(backend: "SQLite") { name in directory.appendingPathComponent("\(name).db").path }
    guard let postgres else { return }
    let admin = try! PostgresDatabase(url: postgres)
    var made: [String] = []
    defer { for name in made { try? admin.execute("DROP DATABASE IF EXISTS \(name)") } }
    benchmarkQueue(backend: "PostgreSQL") { name in
        let database = "comfyq_bench_\(name.replacingOccurrences(of: "-", with: "_"))_\(UUID().uuidString.prefix(8).lowercased())"
        try! admin.execute("CREATE DATABASE \(database)")
        made.append(database)
        return postgresURL(postgres, database: database)
    }
}

/// The server URL with another database.
func postgresURL(_ url: String, database: String) -> String {
    var components = URLComponents(string: url)!
    components.path = "/" + database
    return components.string!
}

func benchmarkQueue(backend: String, location: (String) -> String) {
    let workflowText = Workloads.txt2img(steps: 20).json.serialized()
    let loader = JobLoader(readFile: { _ in workflowText }, fileExists: { _ in true })
    func spec(_ count: Int) -> JobSpec {
        try! loader.load(
            text: #"{workflow: "w.json", matrix: {"6.text": ["a", "b"]}, seeds: {start: 1, count: \#(count / 2)}}"#, path: "bench.json")
    }
    let job = spec(10_000)
    let items = job.expand(random: { 0 })
    func timeAdd(into queue: Queue) -> Double {
        let start = ContinuousClock.now
        try! queue.add(job, items: items, now: 0)
        let elapsed = ContinuousClock.now - start
        return elapsed.seconds
    }
    var empty: [Double] = []
    for round in 0..<3 {
        let queue = try! Queue(path: location("empty-\(round)"))
        empty.append(timeAdd(into: queue))
    }
    let full = try! Queue(path: location("full"))
    let big = spec(100_000)
    try! full.add(big, items: big.expand(random: { 0 }), now: 0)
    // Some running and failed items, as a real night has.
    try! full.database.execute("UPDATE items SET state = 'running', phase = 'sampling', started_at = 1 WHERE id % 5000 = 1")
    try! full.database.execute("UPDATE items SET state = 'failed', error = 'node 3 (KSampler): RuntimeError' WHERE id % 7000 = 2")
    try! full.database.execute("UPDATE items SET state = 'done', started_at = 0, finished_at = 3 WHERE id < 30000")
    var loaded: [Double] = []
    for _ in 0..<3 { loaded.append(timeAdd(into: full)) }
    let status = measure(rounds: 7) {
        _ = try! full.jobs()
        _ = try! full.items(states: [.submitting, .running], limit: 200)
        _ = try! full.items(states: [.failed], limit: 20)
    }
    let total = try! full.jobs().reduce(0) { $0 + $1.total }
    let emptyMedian = empty.sorted()[1]
    let loadedMedian = loaded.sorted()[1]
    print("queue (\(backend)): add of a 10,000-item job: \(format(emptyMedian * 1000, 0)) ms into an empty queue, \(format(loadedMedian * 1000, 0)) ms into one with 100,000+ items (\(format(loadedMedian / emptyMedian, 2))×)  [target < 1 s, not growing]")
    print("queue (\(backend)): status (job summaries, running and failed items) with \(total) items: \(format(status * 1000, 1)) ms  [target < 200 ms]")
    // What the runner pays per prompt: claim an item, mark it running, finish it.
    let rounds = 1_000
    let start = ContinuousClock.now
    for index in 0..<rounds {
        let promptID = "bench-\(index)"
        full.owner = "bench/1"
        guard let claimed = try! full.claimNext(server: "s", promptID: promptID, now: 1) else { break }
        try! full.markRunning(claimed.item.id, promptID: promptID, now: 2)
        try! full.finish(claimed.item.id, promptID: promptID, state: .done, now: 3)
    }
    let elapsed = ContinuousClock.now - start
    let perItem = (elapsed.seconds) / Double(rounds)
    print("queue (\(backend)): claim + running + finish with \(total) items queued: \(format(perItem * 1e6, 0)) µs per item (\(format(1 / perItem, 0)) items/s)")
}
