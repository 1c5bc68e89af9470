import ComfyCore
import Dispatch
import Foundation
import Simulator

/// `comfyq simulate`: a local fake ComfyUI for demos, tests, benchmarks and hook authors.
package enum SimulateCommand {
    static let spec = CommandSpec(
        name: "simulate",
        abstract: "Run a simulated ComfyUI server (no GPU needed) until Ctrl-C.",
        discussion: """
            Speaks ComfyUI's HTTP and WebSocket protocol: prompts run one at a time with ComfyUI's
            messages, outputs are real PNG files, identical nodes are cached between prompts, and
            faults can be injected through /sim/ endpoints (see README.md). Durations take a unit:
            50ms, 1s, 0.5s, 0.
            """,
        options: [
            .value("host", name: "address", help: "Address to listen on (default 127.0.0.1)."),
            .value("port", name: "port", help: "Port to listen on; 0 picks a free one (default 8188)."),
            .value("output", name: "dir", help: "Where outputs are written (default: a folder in the state directory)."),
            .value("step-time", name: "duration", help: "Time per sampler step (default 50ms)."),
            .value("load-time", name: "duration", help: "A loader that runs (not cached): a checkpoint, LoRA… (default 1s)."),
            .value("comfyui", name: "version", completion: .words(["0.38", "0.3.64"]), help: "The ComfyUI to answer as: 0.38 (its jobs API, rejection types, output metadata)\nor 0.3.64 (default 0.38)."),
            .value(
                "cache", name: "policy",
                help: "classic (0.3.64's default: keep only what the last prompt used, so a changed\ncheckpoint loads again), ram-pressure (0.38's default; loads as classic) or lru:N\n(as --cache-lru N) (default: the version's)."),
            .value("node-time", name: "duration", help: "Any other node (default 10ms)."),
            .value("warm-up", name: "duration", help: "A sampler's silence before its first step (default 100ms)."),
            .value("latency", name: "duration", help: "Delay added to every answer and message (default 0)."),
            .value("models", name: "names", help: "Comma-separated checkpoint names to accept (default: any)."),
            .value("max-upload-size", name: "MB", help: "The largest upload accepted, in MB (default 100, as ComfyUI)."),
            .value(
                "time", name: "class=duration",
                help: "Duration for one node class, e.g. VAEDecode=200ms (per step for samplers,\nfirst load for loaders).",
                repeatable: true),
            .flag("previews", help: "Send a binary preview frame after every sampler step."),
            .value(
                "front-end-root", name: "dir",
                help: "Serve ComfyUI's page from DIR (the static folder of comfyui-frontend-package),\nwith the routes it asks for at load, as ComfyUI's --front-end-root."),
            .value("custom-nodes", name: "dir", help: "A custom_nodes folder whose extensions the page loads (with --front-end-root)."),
            .value("parent", name: "pid", help: "Stop once process <pid> is no longer its parent (comfyq run --simulate uses it)."),
            .value(
                "crash-on-seed", name: "seed",
                help: "Die (exit 70, like a crashing custom node) when a prompt with this seed\nreaches its first sampler step; for supervision tests.", repeatable: true),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let options = try options(from: arguments, environment: console.environment)
        let simulator: Simulator
        do {
            simulator = try Simulator(options: options)
        } catch {
            throw CommandFailure("cannot start the simulator: \(error)")
        }
        console.print("comfyq simulator listening on \(simulator.url)")
        console.print("outputs in \(options.outputDirectory)")
        if let text = arguments.value("parent") {
            guard let parent = Int32(text) else { throw UsageError("--parent must be a process id, got '\(text)'", command: spec) }
            await waitForInterruptOrOrphaning(parent: parent)
        } else {
            await waitForInterrupt()
        }
        simulator.stop()
        console.printError("simulator stopped after \(String(format: "%.1f", simulator.busySeconds)) s of simulated work")
        return .success
    }

    static func options(from arguments: ParsedArguments, environment: [String: String]) throws -> SimulatorOptions {
        let state = UserFolders.state(environment: environment, home: homeFolder(environment))
        var options = SimulatorOptions(outputDirectory: arguments.value("output") ?? state + "/simulator/output")
        if let host = arguments.value("host") { options.host = host }
        if let port = arguments.value("port") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw UsageError("--port must be a number from 0 to 65535, got '\(port)'", command: spec)
            }
            options.port = number
        }
        func duration(_ name: String) throws -> Double? {
            guard let text = arguments.value(name) else { return nil }
            guard let seconds = parseDuration(text) else {
                throw UsageError("--\(name) must be a duration such as 50ms or 1.5s, got '\(text)'", command: spec)
            }
            return seconds
        }
        if let value = try duration("step-time") { options.stepTime = value }
        if let value = try duration("load-time") { options.loadTime = value }
        if let value = try duration("node-time") { options.nodeTime = value }
        if let value = try duration("warm-up") { options.warmUpTime = value }
        if let value = try duration("latency") { options.latency = value }
        options.previews = arguments.flag("previews")
        for (name, folder) in [("front-end-root", arguments.value("front-end-root")), ("custom-nodes", arguments.value("custom-nodes"))] {
            guard let folder else { continue }
            var directory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &directory), directory.boolValue else {
                throw UsageError("--\(name): \(folder) is not a folder", command: spec)
            }
            if name == "front-end-root" {
                guard FileManager.default.fileExists(atPath: folder + "/index.html") else {
                    throw UsageError("--front-end-root: \(folder) has no index.html (give the static folder of comfyui-frontend-package)", command: spec)
                }
                options.frontEndRoot = URL(fileURLWithPath: folder).standardizedFileURL.path
            } else {
                options.customNodes = URL(fileURLWithPath: folder).standardizedFileURL.path
            }
        }
        if let text = arguments.value("comfyui") {
            guard let profile = ComfyUIProfile(rawValue: text) else {
                throw UsageError("--comfyui must be \(ComfyUIProfile.allCases.map(\.rawValue).joined(separator: " or ")), got '\(text)'", command: spec)
            }
            options.profile = profile
        }
        if let text = arguments.value("cache") {
            guard let policy = CachePolicy(text) else {
                throw UsageError("--cache must be classic, ram-pressure or lru:N (N at least 1), got '\(text)'", command: spec)
            }
            options.cache = policy
        }
        for entry in arguments.values("time") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let seconds = parseDuration(parts[1]) else {
                throw UsageError("--time must be CLASS=DURATION such as VAEDecode=200ms, got '\(entry)'", command: spec)
            }
            guard NodeCatalog.classes[parts[0]] != nil else {
                let known = NodeCatalog.classes.keys.sorted().joined(separator: ", ")
                throw UsageError("--time: the simulator has no node class '\(parts[0])' (classes: \(known))", command: spec)
            }
            options.classTimes[parts[0]] = seconds
        }
        for text in arguments.values("crash-on-seed") {
            guard let seed = UInt64(text) else { throw UsageError("--crash-on-seed must be a whole number, got '\(text)'", command: spec) }
            options.crashOnSeeds.insert(seed)
        }
        if !options.crashOnSeeds.isEmpty {
            options.crash = { message in
                // As abrupt as a segfault: no clean-up, no flushing beyond this line.
                let line = Array("comfyq simulator: \(message)\n".utf8)
                _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                _exit(70)
            }
        }
        if let text = arguments.value("max-upload-size") {
            guard let megabytes = Double(text), megabytes > 0 else {
                throw UsageError("--max-upload-size must be a number of MB, got '\(text)'", command: spec)
            }
            options.maxUploadSize = Int64(megabytes * 1_048_576)
        }
        if let models = arguments.value("models") {
            options.models = Set(models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return options
    }

    /// `50ms`, `1s`, `1.5s`, `2m`, `0`: seconds, or nil.
    package static func parseDuration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0 else { return nil }
            return value * scale
        }
        guard let value = Double(text), value == 0 else { return nil }  // a bare number only for 0
        return 0
    }

    /// Returns on SIGINT or SIGTERM, or once `parent` is no longer this process's parent (it
    /// died, even by kill -9, perhaps before this process got this far).
    static func waitForInterruptOrOrphaning(parent: Int32) async {
        let (interrupts, continuation) = AsyncStream.makeStream(of: Void.self)
        let sources = Signals.handle { _ in continuation.yield() }
        defer { for source in sources { source.cancel() } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in interrupts { return }
            }
            group.addTask {
                while getppid() == parent && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns on SIGINT or SIGTERM.
    static func waitForInterrupt() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            SignalSources.keep(Signals.handle { _ in if once.claim() { continuation.resume() } })
        }
    }
}

/// Keeps the signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    static func keep(_ list: [DispatchSourceSignal]) { sources += list }
}

/// SIGINT and SIGTERM as events, instead of death.
enum Signals {
    /// Calls `handler` with each SIGINT or SIGTERM; cancel the returned sources to stop.
    static func handle(_ handler: @escaping @Sendable (Int32) -> Void) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }
}

/// True exactly once.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
