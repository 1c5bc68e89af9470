import Dispatch

/// A serial executor on a queue of its own, for an actor whose work blocks: the runner's
/// database commits (a PostgreSQL round trip and the server's WAL flush, SQLite's fsync) and its
/// file writes. On the default executor those would hold one of the cooperative pool's threads
/// (one per core) while the other runs, streams and connections in the process wait for it; on
/// a dispatch queue a blocked runner waits alone, and libdispatch gives the others a thread.
final class BlockingExecutor: SerialExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
