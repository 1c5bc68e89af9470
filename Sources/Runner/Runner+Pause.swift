import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore

/// Why the run is paused, and what resuming waits for.
struct Pause: Sendable {
    var reason: String
    /// The folder whose filesystem is full (the output folder, or the queue's).
    var folder: String
    var since: Double
    var lastCheck: Double
    /// The queue itself could not be written.
    var queue: Bool
}

extension Runner {
    /// A full disk (or a queue that cannot be written) pauses the night instead of failing
    /// item after item: nothing more is submitted, what is in flight finishes on its server and
    /// waits there to be collected, and the free space is checked every `spaceCheckInterval`.
    /// A queue operation failed. A full disk, a lock held too long or an I/O error pause the
    /// run until the queue answers again; a queue that is damaged, read-only, gone or missing a
    /// table ends the run with the reason (exit 1): waiting cannot mend it. What is in flight
    /// stays recorded as in flight, for the next run to reconcile with its server.
    func queueFailed(_ error: any Error, doing what: String) {
        let reason = "the queue cannot be \(what): \(error)"
        guard let database = error as? DatabaseError, database.isLasting else {
            if paused?.queue != true { continuation.yield(.message("queue: \(error)")) }
            pause(reason: reason, folder: queue.folder ?? options.stateFolder, queue: true)
            return
        }
        guard queueBroken == nil else { return }
        queueBroken = reason
        continuation.yield(.message("\(reason): the run ends; what is in flight is reconciled by the next run"))
        _ = flights.handle(.drain)
        checkFinished()
    }

    func pause(reason: String, folder: String, queue isQueue: Bool = false) {
        guard paused == nil else { return }
        paused = Pause(reason: reason, folder: folder, since: now, lastCheck: now, queue: isQueue)
        let needed = neededSpace
        continuation.yield(.paused(reason: reason, folder: folder, neededBytes: needed))
        if let hooks = options.hooks, hooks.wants(.pause) {
            hooks.deliver(
                .batch(
                    .pause,
                    [
                        "reason": .string(reason), "folder": .string(folder), "needed_bytes": .int(Int(needed)),
                        "free_bytes": DiskSpace.available(at: folder).map { .int(Int($0)) } ?? .null, "in_flight": .int(inFlight.count),
                    ]))
        }
        if !isQueue { persistRunner() }
    }

    /// Room to resume: the largest output seen so far (1 MB before the first).
    var neededSpace: Int64 { max(largestOutput, 1_000_000) }

    /// When the pause's check is due and there is room again (and the queue can be written):
    /// the run is no longer paused, and the pause is returned for `resume` to finish.
    func pauseIsOver() -> Pause? {
        guard var pause = paused, now - pause.lastCheck >= options.spaceCheckInterval else { return nil }
        pause.lastCheck = now
        paused = pause
        let free = DiskSpace.available(at: pause.folder) ?? 0
        guard free >= neededSpace else { return nil }
        if pause.queue {
            do {
                try queue.database.transaction { try queue.database.execute("CREATE TEMP TABLE IF NOT EXISTS comfyq_probe (x INTEGER); DROP TABLE comfyq_probe") }
            } catch {
                return nil
            }
        }
        paused = nil
        return pause
    }

    /// After the pause: says so, then collects what waited done on its server (and, after a queue
    /// that could not be written, reconciles what it holds).
    func resume(after pause: Pause) async {
        let seconds = now - pause.since
        continuation.yield(.resumed(after: seconds))
        if let hooks = options.hooks, hooks.wants(.resume) {
            hooks.deliver(.batch(.resume, ["reason": .string(pause.reason), "folder": .string(pause.folder), "paused_for": .double(HookEvent.rounded(seconds))]))
        }
        persistRunner()
        // What waited is collected (as children of the run; one that finds the disk full again
        // pauses the run again and waits for the next check).
        for promptID in flights.parked { apply(flights.handle(.collectAgain(promptID))) }
        if pause.queue { await reconcile() }
        refill()
        checkFinished()
    }

    /// This run's row in the queue: alive, and paused or not (for `comfyq status`).
    func persistRunner() {
        let row = RunnerRecord(
            pid: Int(getpid()), host: ProcessInfo.processInfo.hostName, startedAt: wallClock - now, heartbeatAt: wallClock,
            pausedReason: paused?.reason, pausedFolder: paused?.folder, pausedSince: paused.map { wallClock - (now - $0.since) },
            version: options.version)
        do {
            try queue.record(row)
        } catch {
            continuation.yield(.message("queue: \(error)"))
        }
    }
}
