import ComfyCore
import Foundation
import QueueStore
@testable import Runner
import TestSupport
import Testing

/// `run --watch` on PostgreSQL hears other processes' commits through LISTEN/NOTIFY.
@Suite(.enabled(if: PostgresServer.available, Comment(rawValue: PostgresServer.missing)))
struct QueueListenerTests {
    final class Heard: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func add() { lock.withLock { count += 1 } }
    }

    @Test func aCommitByAnotherConnectionWakesTheListener() async throws {
        let url = try PostgresServer.database()
        _ = try Queue(path: url)  // the tables and their triggers
        let listener = QueueListener(url: url)
        defer { listener.stop() }
        let heard = Heard()
        let consumer = Task { for await _ in listener.changes { heard.add() } }
        defer { consumer.cancel() }
        let workflow = #"{"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2}}, "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}}"#
        let spec = try JobLoader(readFile: { _ in workflow }, fileExists: { _ in true })
            .load(text: #"{name: "later", workflow: "w.json", seeds: {start: 1, count: 2}}"#, path: "later.json")
        // Another connection adds a job (again every half second, in case the listener was not
        // connected yet for the first); the listener wakes on the notification.
        let adds = Heard()
        let start = ContinuousClock.now
        let woke = try await eventually("the listener to hear a commit", timeout: 10, describe: { "heard \(heard.value)" }) { () -> Bool? in
            let due = Int((ContinuousClock.now - start) / .milliseconds(500)) + 1
            if adds.value < due {
                try Queue(path: url).add(spec, items: spec.expand(random: { 0 }), now: 1)  // another connection
                adds.add()
            }
            return heard.value > 0 ? true : nil
        }
        #expect(woke)
    }
}
