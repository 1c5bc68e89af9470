import ComfyCore
import Foundation
import Hooks

/// The two ways a prompt that did not succeed leaves the run, each written once: back to the
/// queue for another attempt, or failed for good. Both record it (a write the queue refuses
/// means another run holds the item now: nothing more is said of it), count it, tell
/// `on_error` when the item itself failed, and say it.
extension Runner {
    /// Back to the queue for another attempt. `hookFailure`: the item failed (an `on_error`
    /// with `will_retry`); nil when the server or the run was at fault. Returns whether the
    /// queue took it.
    @discardableResult
    func requeue(_ flight: InFlight, reason: String, hookFailure: HookFailure? = nil) -> Bool {
        guard settle(flight, { try queue.requeue(flight.itemID, promptID: flight.promptID, error: reason, now: wallClock) }) != .notOurs else { return false }
        retried += 1
        if let hookFailure { deliverError(flight, hookFailure, willRetry: true) }
        continuation.yield(.failed(item: flight.label, server: servers[flight.server].name, error: reason, willRetry: true))
        return true
    }

    /// Failed for good, with `reason`; listed for `on_batch_done`.
    @discardableResult
    func failForGood(_ flight: InFlight, reason: String, hookFailure: HookFailure) -> Bool {
        let write = { try self.queue.finish(flight.itemID, promptID: flight.promptID, state: .failed, error: reason, timings: self.timingsJSON(flight), now: self.wallClock) }
        guard settle(flight, write) != .notOurs else { return false }
        failed += 1
        listFailure(flight, reason)
        deliverError(flight, hookFailure, willRetry: false)
        continuation.yield(.failed(item: flight.label, server: servers[flight.server].name, error: reason, willRetry: false))
        return true
    }

    private func deliverError(_ flight: InFlight, _ failure: HookFailure, willRetry: Bool) {
        guard let hooks = options.hooks, hooks.wants(.error) else { return }
        hooks.deliver(
            .prompt(.error, hookPrompt(flight), snapshot: flight.lastSnapshot, elapsed: now - flight.startedAt, failure: failure, willRetry: willRetry))
    }
}
