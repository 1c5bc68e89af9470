import ComfyCore
import Dispatch
import Foundation
import HTTPServer
import Synchronization
import WebSocket

/// How the simulated ComfyUI behaves.
public struct SimulatorOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 8188
    /// Where SaveImage writes (PreviewImage writes to `temp` inside it).
    public var outputDirectory: String
    /// Per sampler step.
    public var stepTime: Double = 0.05
    /// A loader (checkpoint, LoRA…) that runs. As in ComfyUI, it runs whenever its result is
    /// not in the cache: with the classic cache, whenever its input differs from the previous
    /// prompt's, so switching checkpoints back and forth loads each time.
    public var loadTime: Double = 1
    /// Which ComfyUI to answer as (routes, rejection types, output entries, default cache).
    public var profile: ComfyUIProfile = .v0_38
    /// Which of ComfyUI's caches to imitate (nil: the profile's default).
    public var cache: CachePolicy?
    /// The cache in effect.
    public var effectiveCache: CachePolicy { cache ?? profile.defaultCache }
    /// Any other node.
    public var nodeTime: Double = 0.01
    /// A sampler's silence before its first step (the model moving to the device).
    public var warmUpTime: Double = 0.1
    /// Added to every HTTP answer and WebSocket message, as if the server were across a network.
    public var latency: Double = 0
    /// When set, `ckpt_name` must be one of these (ComfyUI's value_not_in_list otherwise).
    public var models: Set<String>?
    /// Send a binary preview after every sampler step, like ComfyUI with `--preview-method`.
    public var previews = false
    /// Seeds whose prompt makes the whole process die at its first sampler step (through
    /// `crash`), as a custom node that segfaults would: for supervision tests
    /// (`comfyq simulate --crash-on-seed`).
    public var crashOnSeeds: Set<UInt64> = []
    /// Ends the process for `crashOnSeeds`; the library itself never exits.
    public var crash: (@Sendable (String) -> Void)?
    /// Per-class durations that override the above: a sampler's is per step, a loader's is its
    /// first load, any other node's is its run time.
    public var classTimes: [String: Double] = [:]
    /// The largest upload accepted (`/features` says it; larger bodies get 413), as ComfyUI's
    /// `--max-upload-size`.
    public var maxUploadSize: Int64 = 100 << 20
    /// ComfyUI's frontend to serve at `/` (the `static` folder of `comfyui-frontend-package`),
    /// with the routes its page asks for at load, as ComfyUI's `--front-end-root`.
    public var frontEndRoot: String?
    /// A `custom_nodes` folder whose extensions' web directories the page loads (`/api/extensions`).
    public var customNodes: String?

    /// Uploaded files go here (`input` beside the outputs), as ComfyUI's input folder.
    public var inputDirectory: String { outputDirectory + "/input" }

    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }

    /// Every duration set to zero: as fast as the machine goes.
    public mutating func instant() {
        stepTime = 0
        loadTime = 0
        nodeTime = 0
        warmUpTime = 0
    }
}

/// ComfyUI's node caches (`comfy_execution/caching.py`).
public enum CachePolicy: Sendable, Equatable, CustomStringConvertible {
    /// The default of ComfyUI 0.3.x (`HierarchicalCache`): after each prompt only the results
    /// that prompt used are kept, so a node whose inputs changed since the previous prompt runs
    /// again, and going back to an earlier checkpoint loads it again.
    case classic
    /// `--cache-lru N`: up to N node results, the least recently used dropped first.
    case lru(Int)
    /// The default of ComfyUI 0.38 (`RAMPressureCache`): results not used by the running prompt
    /// are dropped while free RAM is under its target (all RAM up to 128 GB), which on such a
    /// machine drops them as soon as the next prompt's first node has run. For which loaders run
    /// again, that is `classic`: a changed checkpoint loads, and A → B → A loads A again.
    case ramPressure

    /// `classic`, `ram-pressure` or `lru:N`.
    public init?(_ text: String) {
        if text == "classic" {
            self = .classic
        } else if text == "ram-pressure" {
            self = .ramPressure
        } else if text.hasPrefix("lru:"), let size = Int(text.dropFirst(4)), size > 0 {
            self = .lru(size)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .classic: "classic"
        case .ramPressure: "ram-pressure"
        case .lru(let size): "lru:\(size)"
        }
    }
}

/// The ComfyUI versions the simulator answers as. What differs (from their source; see
/// shared/comfyui/protocol-0.38.md): 0.38 has `/api/jobs` (status, atomic cancel), checks that
/// a `prompt_id` is a canonical UUID (`invalid_prompt_id`), names an unknown node class
/// `missing_node_type` (0.3.64: `invalid_prompt`) and a cycle `dependency_cycle`, adds
/// `metadata` to every output entry and `create_time` to `extra_data`, broadcasts
/// `assets.seed.*`, and caches under RAM pressure by default.
public enum ComfyUIProfile: String, Sendable, CaseIterable, CustomStringConvertible {
    case v0_3_64 = "0.3.64"
    case v0_38 = "0.38"

    /// What `/system_stats` says.
    public var version: String { self == .v0_38 ? "0.38.1" : "0.3.64" }
    public var jobsAPI: Bool { self == .v0_38 }
    public var defaultCache: CachePolicy { self == .v0_38 ? .ramPressure : .classic }
    public var description: String { rawValue }
}

/// A fake ComfyUI server that speaks the real protocol: HTTP/1.1 and the WebSocket on one port,
/// prompts run one at a time in queue order with ComfyUI's messages in ComfyUI's order, real PNG
/// outputs, node caching, and faults on demand (`/sim/…`). See README.md for the endpoints.
public final class Simulator: Sendable {
    public let options: SimulatorOptions
    let state: Mutex<SimulatorState>
    let work = DispatchSemaphore(value: 0)
    private let server: HTTPServer
    let epoch = ContinuousClock.now

    /// The port it listens on.
    public var port: Int { server.port }
    public var url: String {
        let host = options.host.contains(":") ? "[\(options.host)]" : options.host
        return "http://\(host):\(port)"
    }

    /// Binds the port and starts serving (accept thread, worker thread).
    public init(options: SimulatorOptions) throws {
        self.options = options
        try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        server = try HTTPServer(host: options.host, port: options.port, name: "comfyq-sim", latency: options.latency)
        state = Mutex(SimulatorState())
        server.start { [self] request, connection, remainder in handle(request, connection, remainder) }
        let worker = Thread { [self] in workerLoop() }
        worker.name = "comfyq-sim worker"
        worker.start()
    }

    /// Stops listening, drops every connection and ends the worker.
    public func stop() {
        state.withLock { state in
            state.stopped = true
            state.generation += 1
        }
        server.stop()
        work.signal()
    }

    /// Seconds the simulated GPU spent executing prompts (sampling, loading, decoding, saving).
    public var busySeconds: Double { state.withLock { $0.busySeconds } }
    /// Prompts run to the end (what `/sim/stats` calls `completed`).
    public var completedCount: Int { state.withLock { $0.completed } }
    /// Prompts in which at least one loader ran (a model load).
    public var loads: Int { state.withLock { $0.loads } }
    /// Files written by uploads (an upload of content already there under that name is not one).
    public var uploads: Int { state.withLock { $0.uploads } }

    /// Seconds from the start of the first prompt to the end of the last: the span in which idle
    /// time between prompts is what a client's overhead costs.
    public var activeSeconds: Double {
        state.withLock { state in
            guard let first = state.firstStartedAt, let last = state.lastFinishedAt else { return 0 }
            return last - first
        }
    }

    var now: Double {
        let elapsed = ContinuousClock.now - epoch
        return elapsed.seconds
    }
}

/// Everything the simulated server remembers, behind one lock.
struct SimulatorState: ~Copyable {
    struct Queued {
        var number: Double
        var promptID: String
        var prompt: ValidatedPrompt
        var promptJSON: JSONValue
        var extraData: JSONValue
        var clientID: String?
        /// `/sim/mute`: it runs, but no message of it is sent.
        var muted = false

        /// The socket its messages go to (none when muted).
        func target(in state: borrowing SimulatorState) -> ClientConnection? {
            muted ? nil : clientID.flatMap { state.clients[$0] }
        }
    }

    var queue: [Queued] = []
    var nextNumber = 0
    /// Files written by `/upload/image` and `/upload/mask` (not duplicates).
    var uploads = 0
    /// Requests to `/upload/image` and `/upload/mask`, written or not.
    var uploadRequests = 0
    /// Clients that said `supports_preview_metadata` in their `feature_flags`: they get previews
    /// as event 4 (with node and prompt), the others as event 1.
    var previewMetadata: Set<String> = []
    /// Requests by route, for the ones tests count (`/interrupt`, `/api/jobs/cancel`, …).
    var requests: [String: Int] = [:]
    /// The page's settings (`/settings`), kept while the simulator runs.
    var settings = JSONObject()
    var running: (promptID: String, clientID: String?, node: String?)?
    var runningEntry: Queued?
    var interruptRequested = false
    var history: [String: JSONValue] = [:]
    var historyOrder: [String] = []
    /// Node id → cache key of its output from the last prompt, and the UI of cached outputs.
    var cache: [String: String] = [:]
    var cachedUI: [String: JSONValue] = [:]
    /// `--cache lru:N`: node results by signature, with when each was last used.
    var lru: [String: Int] = [:]
    var lruClock = 0
    var fileCounters: [String: Int] = [:]
    var clients: [String: ClientConnection] = [:]
    var busySeconds = 0.0
    var firstStartedAt: Double?
    var lastFinishedAt: Double?
    var completed = 0
    var failed = 0
    /// Prompts in which at least one loader ran (a model load), for `/sim/stats`.
    var loads = 0
    var lastLoadingPrompt: String?
    /// Bumped by a restart: the worker abandons what it was doing.
    var generation = 0
    var stopped = false
    // Faults.
    var stallUntil = 0.0
    /// `/sim/hang`: nothing answers or runs any more, and sockets stay open (a wedged process).
    var hung = false
    var failingSubmits = 0
    /// `/sim/fail-object-info`: the next `GET /object_info`s answer 500.
    var failingObjectInfo = 0
    /// `/sim/fail-history`: the next `GET /history/{id}`s answer 500.
    var failingHistory = 0
    /// `/sim/mute`: how many of the next prompts run without a message (a socket that stays
    /// open but delivers nothing of them).
    var mutedPrompts = 0
    var viewDelay = 0.0
    /// `/sim/models`: the checkpoints on its disk now (a file copied in), instead of `--models`.
    var models: Set<String>??
    var nodeFailure: NodeFailure?
    /// `/sim/hold`: the sampler step after which the next sampler waits for an interrupt.
    var hold: (atStep: Int, seconds: Double)?
    /// `/sim/release`: a held sampler goes on.
    var releaseHold = false

    struct NodeFailure {
        var classType: String?
        var nodeID: String?
        var atStep: Int
        var exceptionType: String
        var message: String
        var remaining: Int
    }

    var queueRemaining: Int { queue.count + (running == nil ? 0 : 1) }
}
