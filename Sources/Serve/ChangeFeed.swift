import Foundation
import QueueStore

/// One watcher of the queue for every open event stream: a thread looks at the queue's change
/// token every `interval` while anyone listens, and wakes the streams when it moves, so 200 open
/// pages cost the queue one read per interval, not 200.
package final class ChangeFeed: @unchecked Sendable {
    private let databasePath: String
    private let interval: Double
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var generation: UInt64 = 0
    private var listeners = 0
    private var watching = false
    private var failure: String?

    init(databasePath: String, interval: Double) {
        self.databasePath = databasePath
        self.interval = interval
    }

    /// Starts listening: returns the generation now (a later one means the queue changed).
    package func subscribe() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        listeners += 1
        if !watching {
            watching = true
            failure = nil
            let thread = Thread { [self] in watch() }
            thread.name = "comfyq-serve changes"
            thread.start()
        }
        return generation
    }

    package func unsubscribe() {
        condition.lock()
        listeners -= 1
        condition.unlock()
    }

    /// Waits up to `timeout` seconds for a generation after `seen`: the new one, `seen` when
    /// nothing changed, nil when the queue cannot be read (the stream should end; the page reconnects).
    package func wait(after seen: UInt64, timeout: Double) -> UInt64? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while generation == seen && failure == nil {
            if !condition.wait(until: deadline) { break }
        }
        return failure == nil ? generation : nil
    }

    private func watch() {
        var last: String?
        let queue: Queue
        do { queue = try Queue(path: databasePath) } catch {
            stop(failing: "\(error)")
            return
        }
        while true {
            condition.lock()
            let stay = listeners > 0
            if !stay { watching = false }
            condition.unlock()
            guard stay else { return }
            do {
                let token = try queue.changeToken()
                if token != last {
                    condition.lock()
                    if last != nil { generation += 1 }
                    condition.broadcast()
                    condition.unlock()
                    last = token
                }
            } catch {
                stop(failing: "\(error)")
                return
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    private func stop(failing reason: String) {
        condition.lock()
        failure = reason
        watching = false
        condition.broadcast()
        condition.unlock()
    }
}
