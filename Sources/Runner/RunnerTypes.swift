import ComfyClient
import ComfyCore
import Foundation
import Hooks
import WebSocket

/// How a run behaves.
public struct RunnerOptions: Sendable {
    /// Servers to use: watched ones (a URL), and supervised ones that the run starts and restarts.
    public var servers: [ServerDefinition]
    /// `$XDG_STATE_HOME/comfyq`: supervised servers' logs, locks and pid files.
    public var stateFolder = ServerFiles.stateFolder(environment: ProcessInfo.processInfo.environment, home: NSHomeDirectory())
    /// The environment supervised servers start from (their `env` is added to it).
    public var environment = ProcessInfo.processInfo.environment
    /// Prompts in flight per server (running or waiting in its queue).
    public var concurrency = 2
    /// Keep running and pick up items added later.
    public var watch = false
    /// Replace existing output files instead of adding `-1`, `-2`.
    public var overwrite = false
    public var headers: [String: String] = [:]
    public var tls = TLSOptions()
    /// Which item goes to which server (`--order`, `--max-defer`).
    public var dispatch = DispatchPolicy()
    /// Only these jobs (all when nil).
    public var jobIDs: Set<Int64>?
    /// The WebSocket supervision policy (tests shorten it).
    public var policy = ConnectionSupervisor.Policy()
    /// How often the runner looks at the clock (stalls, health checks, `--watch`).
    public var tick: Double = 0.5
    /// Lua hook scripts, already loaded; nil for none.
    public var hooks: HookSet?
    /// While paused, how often the free space is checked.
    public var spaceCheckInterval: Double = 30
    /// How long the run waits at the end for hook scripts to finish what they were sent.
    public var hookDrainTimeout: Double = 60
    /// Seconds without a heartbeat after which another run's items in flight are taken over
    /// (`--lease`); a run on this machine whose process is gone is taken over at once. A run
    /// beats every 5 s, or every third of a shorter lease.
    public var lease: Double = 30
    /// The comfyq version, recorded with the run in the queue.
    public var version: String?
    /// Keeps each job's report up to date as its items finish; nil for none.
    public var reports: (any JobReports)?
    /// Where servers' node definitions are cached: each server's are fetched before its first
    /// submission, and the pending items are checked against them (pre-flight); nil: no pre-flight.
    public var preflight: ObjectInfoCache?
    /// While items are held, how often each server's definitions are fetched again.
    public var definitionsRefresh: Double = 30

    public init(servers: [URL]) { self.servers = servers.map { ServerDefinition(name: ComfyAPI(baseURL: $0).name, url: ComfyAPI(baseURL: $0).name) } }

    public init(definitions: [ServerDefinition]) { self.servers = definitions }
}

/// Pages and pictures of jobs, kept up to date by whoever renders them (the CLI's report writer):
/// the runner says when a job's item finished, and asks for the final ones before `on_batch_done`,
/// whose event lists them.
public protocol JobReports: Sendable {
    /// Item `index` of `job` finished (done or failed for good): the report's page that shows
    /// it is due for rewriting.
    func itemFinished(job: String, index: Int)
    /// Writes whatever is due; returns the reports of every job written in this run.
    func finish() async -> [JobReport]
}

public struct JobReport: Sendable, Equatable {
    public var job: String
    /// The HTML page (`index.html` in the job's output folder: its first page).
    public var page: String
    /// The grid as PNGs (`contact-sheet.png`, `contact-sheet-2.png`…: a large job's grid is
    /// split so no side is over 16,384 px); empty when none could be written.
    public var contactSheets: [String]
    /// The first sheet.
    public var contactSheet: String? { contactSheets.first }
    public init(job: String, page: String, contactSheets: [String]) {
        self.job = job
        self.page = page
        self.contactSheets = contactSheets
    }
}

/// What a run reports as it goes, for the live view, logs and `--json-events`.
public enum RunnerEvent: Sendable {
    case started(pending: Int, servers: [String])
    /// Connection news (WebSocket connected, dropped, reconnecting) that is not a change of health.
    case serverState(server: String, state: String)
    /// A server's health changed (`on_server`).
    case server(ServerReport)
    case submitted(item: String, server: String, attempt: Int)
    /// An item's input files are on its server: each with its path, SHA-256, the name the
    /// server gave it (`uploaded_as`) and whether this submission uploaded it (`uploaded`).
    case inputs(item: String, server: String, inputs: [JSONValue])
    case transition(item: String, server: String, update: ProgressUpdate)
    case progress(item: String, server: String, update: ProgressUpdate)
    case completed(item: String, server: String, outputs: [String], seconds: Double)
    case failed(item: String, server: String?, error: String, willRetry: Bool)
    /// A full disk (or a queue that cannot be written) paused the run: nothing is submitted
    /// until `neededBytes` are free in `folder`.
    case paused(reason: String, folder: String, neededBytes: Int64)
    /// The pause ended after this many seconds.
    case resumed(after: Double)
    /// A hook's `on_submit` returned false: the item is cancelled, not run.
    case skipped(item: String, by: String)
    /// Pre-flight: these items of a job no server can run are held (not submitted, not failed).
    case held(job: String, items: Int, reason: String)
    /// Held items a server can run now (or that `comfyq retry` put back) go back to the queue.
    case released(job: String, items: Int)
    case message(String)
    case finished(RunSummary)
}

/// How a run ended.
public struct RunSummary: Sendable, Equatable {
    public var done: Int
    public var failed: Int
    public var retried: Int
    /// Items a hook skipped (`on_submit` returned false).
    public var skipped: Int = 0
    /// Items of the run's jobs held at its end: no server could run them (pre-flight).
    public var held: Int = 0
    public var seconds: Double
    /// Set when the run stopped early (Ctrl-C twice, no server reachable).
    public var stopReason: StopReason?
}

/// Why a run ended before the queue was done.
public enum StopReason: Sendable, Equatable, CustomStringConvertible {
    /// Ctrl-C twice.
    case stoppedByUser
    /// Ctrl-C once, and what was in flight finished.
    case drained
    /// No server answered at the start.
    case noServerAnswers([String])
    /// Every server was given up (or stopped) during the run: the reason for each.
    case noServerLeft([String])
    /// The queue could not be read or written.
    case queueFailed(String)

    public var description: String {
        switch self {
        case .stoppedByUser: "stopped by the user"
        case .drained: "drained; the rest is still queued"
        case .noServerAnswers: "no server answers"
        case .noServerLeft(let reasons): "no server left: " + reasons.joined(separator: "; ")
        case .queueFailed(let reason): "queue: \(reason)"
        }
    }
}

/// A change of a server's health, as the run's output, `--json-events` and `on_server` show it.
public struct ServerReport: Sendable, Equatable {
    public var server: String
    public var url: String
    public var state: ServerState
    public var previousState: ServerState
    public var reason: String
    public var restarts: Int
    /// How long it was unavailable, when it comes back.
    public var downFor: Double?
    /// The end of a supervised server's log.
    public var logTail: [String]?
    /// A supervised server's log file.
    public var log: String?

    /// `local/0: up → restarting (its process was killed by signal 9); restart 1`
    public var line: String {
        var text = "\(server): \(previousState.rawValue) → \(state.rawValue)"
        if !reason.isEmpty { text += " (\(reason))" }
        if let downFor { text += "; unavailable for \(String(format: "%.1f", downFor)) s" }
        if state == .givenUp, let log { text += "; see \(log)" }
        return text
    }
}

/// One prompt the runner follows.
struct InFlight: Sendable {
    var itemID: Int64
    var promptID: String
    var label: String
    var jobName: String
    var index: Int
    var attempts: Int
    var retries: Int
    var server: Int
    var parameters: JSONValue
    var outputFolder: String
    var template: String
    /// The graph as submitted (the job's workflow with the item's parameters applied).
    var workflow: Workflow
    /// What that graph loads (recorded in the sidecar).
    var modelKey: ModelKey
    /// The UI-format file the job's graph was converted from (recorded in the sidecar).
    var uiWorkflow: UIWorkflowRecord? = nil
    var startedAt: Double
    var lastHeard: Double
    var stallTimeout: Double
    var phaseSince: Double
    var timings: [String: Double] = [:]
    /// When its progress was last written to the queue, and whether the engine has moved on
    /// since (a phase change that came too soon after that write: the clock writes it).
    var lastProgressWrite: Double = 0
    var progressUnwritten = false
    /// Its POST failed at the connection (why): whether the server has it is not known yet.
    var uncertain: String?
    /// What hooks changed with `on_submit` (recorded in the sidecar).
    var hookOverrides: JSONValue = []
    /// The engine's latest view of the prompt.
    var lastSnapshot: ProgressSnapshot?
    /// Its input files as uploaded (empty until its lane has uploaded them, and for none).
    var inputs: [UsedInput] = []
    /// The latest preview of it, as a file (servers that send previews).
    var preview: String?
}
