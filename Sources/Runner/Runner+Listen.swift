import Foundation
import QueueStore
import Synchronization

/// `run --watch` on PostgreSQL: a connection of its own listens on the queue's channel, so
/// items another machine adds are claimed as soon as they are committed, not at the next tick.
/// (SQLite has no notifications: there the tick looks every half second.)
final class QueueListener: Sendable {
    private let stopped = Atomic<Bool>(false)
    let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(url: String) {
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let thread = Thread { [self] in listen(url) }
        thread.name = "comfyq-listen"
        thread.start()
    }

    private func listen(_ url: String) {
        var database: PostgresDatabase?
        while !stopped.load(ordering: .relaxed) {
            do {
                let connection = try database ?? PostgresDatabase(url: url)
                database = connection
                // Waits at most a second, so `stop` is seen soon.
                if try connection.waitForChange(timeout: 1) { continuation.yield() }
            } catch {
                // The server is away (the run pauses on its own queue errors): try again shortly.
                database = nil
                Thread.sleep(forTimeInterval: 1)
            }
        }
        continuation.finish()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

extension Runner {
    /// Another process committed a change: claim what it added, now.
    func queueChanged() {
        guard phase < .ended else { return }
        refill()
        checkFinished()
    }
}
