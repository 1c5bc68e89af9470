import Foundation

/// The end of a run: what is under way settles (awaited, not polled), the servers this run
/// started are stopped, every task of the run ends and is awaited, then `on_batch_done` and the
/// summary. One way for every run, whatever ended it.
extension Runner {
    /// The end of every run: its servers stopped, its tasks ended and awaited, `on_batch_done`,
    /// the summary.
    func finishRun(_ summary: RunSummary) async -> RunSummary {
        await stopServers()
        endTasks()
        // Every child ends once its stream has (a request still under way to a server that does
        // not answer ends at its timeout; the run does not wait longer than 10 s for it).
        if await !waitForEnd(.childrenDone, timeout: 10) {
            continuation.yield(.message("some of the run's requests were still under way 10 s after it ended; they end at their timeouts"))
        }
        await finishHooks(summary)
        continuation.yield(.finished(summary))
        continuation.finish()
        return summary
    }

    /// Ends the run's tasks by ending what they wait on (see `children`).
    func endTasks() {
        phase = .ended
        listener?.stop()
        for slot in servers {
            slot.lane.finish()
            slot.probes.finish()
        }
        connectionCommands.finish()
        processExits.finish()
        children.finish()
    }

    /// What the end of the run waits for.
    enum EndCondition {
        /// No POST under way, nothing being taken off a server or collected.
        case settled
        /// Every child of the run's group has ended.
        case childrenDone
    }

    func holds(_ condition: EndCondition) -> Bool {
        switch condition {
        case .settled: posting.isEmpty && flights.unsettled.isEmpty
        case .childrenDone: childrenDone
        }
    }

    /// Waits until `condition` holds (woken by the changes that can make it hold, never by
    /// polling) or `timeout` seconds pass; returns whether it holds.
    @discardableResult
    func waitForEnd(_ condition: EndCondition, timeout: Double) async -> Bool {
        guard !holds(condition) else { return true }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(timeout))
            await self?.wakeEndWaiter(timedOut: true)
        }
        await withCheckedContinuation { endWaiter = (condition, $0) }
        timer.cancel()  // a sleep, not a request: safe to cancel
        return holds(condition)
    }

    /// Resumes the end's wait if its condition holds now (or its time is up).
    func wakeEndWaiter(timedOut: Bool = false) {
        guard let waiter = endWaiter, timedOut || holds(waiter.condition) else { return }
        endWaiter = nil
        waiter.continuation.resume()
    }

    func childrenEnded() {
        childrenDone = true
        wakeEndWaiter()
    }
}
