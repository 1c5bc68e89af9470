import ComfyClient
import ComfyCore
import Hooks

/// Why an attempt at an item failed, and whether another attempt may help: one place that
/// decides what is retried, instead of a flag passed beside a message at every call.
enum ItemFailure: Sendable, CustomStringConvertible {
    /// The server refused the graph (HTTP 400, validation): the same graph fails again.
    case rejected(ComfyAPIError)
    /// HTTP 5xx and the like: the server may do better next time.
    case serverError(ComfyAPIError)
    /// A node raised an exception (`execution_error`).
    case execution(ExecutionFailure)
    /// Interrupted on the server by someone else.
    case interrupted
    /// No message for the job's stall timeout: interrupted on its server by us.
    case stalled(seconds: Int, server: String)
    /// Removed from the server's queue before it ran.
    case removedFromQueue
    /// The server said it finished but its history has no result.
    case noHistory(server: String, promptID: String)
    /// An output could not be saved (a path, a reason).
    case output(String)
    /// An input file cannot be used: gone, changed since `add`, unreadable, too large.
    case input(String)

    /// Whether another attempt may succeed (while the job's retries last).
    var isTransient: Bool {
        switch self {
        case .serverError, .interrupted, .stalled, .removedFromQueue, .noHistory: true
        case .rejected, .execution, .output, .input: false
        }
    }

    var description: String {
        switch self {
        case .rejected(let error), .serverError(let error): "\(error)"
        case .execution(let failure): "\(failure)"
        case .interrupted: "interrupted on the server"
        case .stalled(let seconds, let server): "stalled: no message for \(seconds) s; interrupted on \(server)"
        case .removedFromQueue: "removed from the server's queue"
        case .noHistory(let server, let promptID): "\(server) reported success but its history has no result for \(promptID)"
        case .output(let reason), .input(let reason): reason
        }
    }

    /// What `on_error` receives: the node and exception of an execution error, else the message.
    var hookFailure: HookFailure {
        if case .execution(let failure) = self { return HookFailure(failure) }
        return HookFailure(message: description)
    }
}
