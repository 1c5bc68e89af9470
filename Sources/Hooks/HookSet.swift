import ComfyCore
import Foundation

/// Every script of a run: loads them (all problems reported before anything is submitted),
/// routes each event to the scripts that take it, throttles progress, and chains `on_submit`.
public final class HookSet: @unchecked Sendable {
    /// Where a script comes from and what it is given.
    public struct Source: Sendable, Equatable {
        public var path: String
        /// The jobs whose events it receives; nil for every job (`--hook`, the hooks folder).
        public var jobs: Set<String>?
        /// `comfyq.options` (job file settings, then `--hook-opt`).
        public var options: JSONObject

        public init(path: String, jobs: Set<String>? = nil, options: JSONObject = JSONObject()) {
            self.path = path
            self.jobs = jobs
            self.options = options
        }

        /// `discord-webhook` for `scripts/discord-webhook.lua`: the name `--hook-opt` uses.
        public var shortName: String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }
    }

    public let scripts: [HookScript]
    /// At most this many progress events per second per prompt reach the scripts.
    public let progressRate: Double
    private let lock = NSLock()
    private var lastProgress: [String: Double] = [:]

    public init(scripts: [HookScript], progressRate: Double = 2) {
        self.scripts = scripts
        self.progressRate = progressRate
    }

    /// Merges sources naming the same file (a job's options, then later ones, win per key; a
    /// script named by `--hook` or the hooks folder receives every job's events).
    public static func merge(_ sources: [Source]) -> [Source] {
        var merged: [Source] = []
        for source in sources {
            let path = URL(fileURLWithPath: source.path).standardizedFileURL.path
            if let index = merged.firstIndex(where: { URL(fileURLWithPath: $0.path).standardizedFileURL.path == path }) {
                for (key, value) in source.options { merged[index].options[key] = value }
                if let jobs = source.jobs, let existing = merged[index].jobs {
                    merged[index].jobs = existing.union(jobs)
                } else {
                    merged[index].jobs = nil
                }
            } else {
                merged.append(source)
            }
        }
        return merged
    }

    /// Loads every source on its own thread. Throws every load problem, one per line.
    public static func load(
        _ sources: [Source], settings: HookScript.Settings = HookScript.Settings(), environment: HookEnvironment, progressRate: Double = 2
    ) async throws(HookLoadErrors) -> HookSet {
        var scripts: [HookScript] = []
        var problems: [HookLoadError] = []
        for source in merge(sources) {
            do {
                scripts.append(try await HookScript.load(path: source.path, jobs: source.jobs, options: source.options, settings: settings, environment: environment))
            } catch {
                problems.append(error)
            }
        }
        guard problems.isEmpty else {
            for script in scripts { script.stop() }
            throw HookLoadErrors(problems: problems)
        }
        return HookSet(scripts: scripts, progressRate: progressRate)
    }

    public var isEmpty: Bool { scripts.isEmpty }

    /// Whether any script wants this kind of event (saves building tables nobody reads).
    public func wants(_ kind: HookEventKind) -> Bool { scripts.contains { $0.handles(kind) } }

    /// Sends an event to every script that takes it. Never blocks on a script.
    public func deliver(_ event: HookEvent, now: Double = ProcessInfo.processInfo.systemUptime) {
        if event.kind.isProgress, let promptID = event.promptID {
            lock.lock()
            let last = lastProgress[promptID] ?? -.infinity
            let due = now - last >= 1 / progressRate
            if due { lastProgress[promptID] = now }
            lock.unlock()
            guard due else { return }
        } else if let promptID = event.promptID, event.kind == .complete || event.kind == .error {
            lock.lock()
            lastProgress[promptID] = nil
            lock.unlock()
        }
        for script in scripts where script.receives(job: event.job) { script.deliver(event) }
    }

    /// Runs each script's `on_submit` in turn (each sees the parameters the previous ones made);
    /// `validate` checks a table of overrides against the item's graph.
    public func submit(_ event: HookEvent, validate: @escaping @Sendable (JSONObject) -> String?) async -> SubmitDecision {
        var decision = SubmitDecision(params: event.table["params"] ?? .object(JSONObject()))
        for script in scripts where script.handles(.submit) && script.receives(job: event.job) {
            var current = event
            current.table["params"] = decision.params
            switch await script.submit(current, validate: validate) {
            case .unchanged: continue
            case .skip:
                decision.skippedBy = script.name
                return decision
            case .overrides(let values):
                var params = decision.params.objectValue ?? JSONObject()
                for (key, value) in values { params[key] = value }
                decision.params = .object(params)
                decision.overrides.append(SubmitDecision.Override(script: script.name, values: values))
            }
        }
        return decision
    }

    /// Lets every script finish what is queued (up to `timeout` seconds in all), then stops them.
    /// Returns the scripts that were still busy.
    public func finish(timeout: Double) async -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var busy: [String] = []
        for script in scripts {
            let finished = await script.finish(timeout: max(0.01, deadline.timeIntervalSinceNow))
            if !finished {
                busy.append(script.name)
                script.stop()  // it ends when its current call does; nothing more is waited for
            } else {
                _ = await script.stopAndWait(timeout: max(0.01, deadline.timeIntervalSinceNow))
            }
        }
        return busy
    }
}

/// Every script that failed to load, one line each.
public struct HookLoadErrors: Error, Sendable, CustomStringConvertible {
    public var problems: [HookLoadError]
    public var description: String { problems.map(\.message).joined(separator: "\n") }
}
