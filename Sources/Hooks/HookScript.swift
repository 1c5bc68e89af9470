import ComfyCore
import Foundation

/// Why a script could not be loaded: one line naming the file (and line, for Lua errors).
public struct HookLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One hook script on its own thread, with its own Lua state and its own mailbox.
///
/// Events are delivered in order. The mailbox is bounded: when the script falls behind,
/// progress events for a prompt coalesce into one slot (the latest wins), and once `capacity`
/// entries wait, new progress is dropped; phase changes, completions, failures and batch events
/// are always kept. A slow script delays nothing but itself.
public final class HookScript: @unchecked Sendable {
    public struct Settings: Sendable {
        public var limits = LuaScript.Limits()
        /// Entries waiting before new progress events are dropped.
        public var capacity = 1000
        /// Failures in a row after which the script is disabled.
        public var maximumFailures = 5
        public init() {}
    }

    /// Counters, for tests, benchmarks and the line `comfyq run` prints about a troubled script.
    public struct Statistics: Sendable, Equatable {
        public var calls = 0
        public var failures = 0
        public var coalesced = 0
        public var dropped = 0
    }

    /// The file, as given.
    public let path: String
    /// `discord-webhook.lua`: how messages name it.
    public let name: String
    /// The jobs whose events it receives; nil for every job.
    public let jobs: Set<String>?
    /// The hook functions it defines.
    public private(set) var hooks: Set<HookEventKind> = []
    private let settings: Settings
    private let environment: HookEnvironment

    private enum Entry {
        case event(HookEvent)
        /// A progress slot: the newest progress event for its prompt, kept in `slots`.
        case progress(Int)
        case submit(HookEvent, SubmitCall)
        case barrier(@Sendable () -> Void)
        case stop
    }

    struct SubmitCall: Sendable {
        var validate: @Sendable (JSONObject) -> String?
        var answer: @Sendable (SubmitAnswer) -> Void
    }

    /// What one script's `on_submit` returned.
    public enum SubmitAnswer: Sendable, Equatable {
        case unchanged
        case overrides(JSONObject)
        case skip
    }

    private let condition = NSCondition()
    /// Signalled when the thread has ended and released the Lua state.
    private let exited = DispatchSemaphore(value: 0)
    private var entries: [Entry] = []
    private var head = 0
    private var slots: [Int: HookEvent] = [:]
    private var openSlot: [String: Int] = [:]
    private var nextSlot = 0
    private var discardProgress = false
    private var statistics = Statistics()
    private var failuresInARow = 0
    private var disabled = false

    private init(path: String, jobs: Set<String>?, settings: Settings, environment: HookEnvironment) {
        self.path = path
        self.name = (path as NSString).lastPathComponent
        self.jobs = jobs
        self.settings = settings
        self.environment = environment
    }

    /// Starts the script's thread, loads the script there and reports any problem before returning.
    public static func load(
        path: String, jobs: Set<String>? = nil, options: JSONObject = JSONObject(), settings: Settings = Settings(),
        environment: HookEnvironment
    ) async throws(HookLoadError) -> HookScript {
        let script = HookScript(path: path, jobs: jobs, settings: settings, environment: environment)
        let outcome: Result<Set<HookEventKind>, HookLoadError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                script.main(options: options, loaded: { continuation.resume(returning: $0) })
                script.exited.signal()  // after main's Lua state and host library are gone
            }
            thread.name = "comfyq hook \(script.name)"
            thread.stackSize = 8 << 20  // Lua recursion runs on this stack
            thread.start()
        }
        switch outcome {
        case .success(let hooks):
            script.hooks = hooks
            return script
        case .failure(let error):
            throw error
        }
    }

    public func handles(_ kind: HookEventKind) -> Bool { hooks.contains(kind) }

    public func receives(job: String?) -> Bool {
        guard let jobs, let job else { return true }
        return jobs.contains(job)
    }

    public var stats: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    public var isDisabled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return disabled
    }

    /// Queues an event; never blocks for longer than a lock.
    public func deliver(_ event: HookEvent) {
        guard handles(event.kind) else { return }
        condition.lock()
        defer { condition.unlock() }
        guard !disabled else { return }
        if event.kind.isProgress, let promptID = event.promptID {
            if let slot = openSlot[promptID] {
                slots[slot] = event  // latest wins
                statistics.coalesced += 1
                return
            }
            guard entries.count - head < settings.capacity else {
                statistics.dropped += 1
                return
            }
            nextSlot += 1
            slots[nextSlot] = event
            openSlot[promptID] = nextSlot
            append(.progress(nextSlot))
        } else {
            // Later progress must come after this event: close the prompt's open slot.
            if let promptID = event.promptID { openSlot[promptID] = nil }
            append(.event(event))
        }
    }

    /// Queues an `on_submit` call and waits for its answer.
    func submit(_ event: HookEvent, validate: @escaping @Sendable (JSONObject) -> String?) async -> SubmitAnswer {
        await withCheckedContinuation { continuation in
            condition.lock()
            defer { condition.unlock() }
            guard !disabled else { return continuation.resume(returning: .unchanged) }
            if let promptID = event.promptID { openSlot[promptID] = nil }
            append(.submit(event, SubmitCall(validate: validate, answer: { continuation.resume(returning: $0) })))
        }
    }

    /// Waits until every event queued so far has been handled (progress still waiting is
    /// discarded: it is stale), or `timeout` seconds. False when the script was still busy.
    public func finish(timeout: Double) async -> Bool {
        let signal = DispatchSemaphore(value: 0)
        enqueueBarrier { signal.signal() }
        return await Self.wait(for: signal, timeout: timeout)
    }

    /// Waits for `semaphore` on a Dispatch thread (never on the cooperative pool).
    private static func wait(for semaphore: DispatchSemaphore, timeout: Double) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: semaphore.wait(timeout: .now() + timeout) == .success) }
        }
    }

    /// Waits until every event queued so far has been handled.
    public func flush() async {
        await withCheckedContinuation { continuation in enqueueBarrier(discardingProgress: false) { continuation.resume() } }
    }

    private func enqueueBarrier(discardingProgress: Bool = true, _ body: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        if discardingProgress { discardProgress = true }
        append(.barrier(body))
    }

    /// Ends the thread once what is queued is done (the Lua state is closed there).
    public func stop() {
        condition.lock()
        append(.stop)
        condition.unlock()
    }

    /// Stops the thread and waits up to `timeout` seconds for it to end, so nothing of the
    /// script (an HTTP session, a program it waits for) is still running when the process exits.
    /// False when it was still busy.
    public func stopAndWait(timeout: Double) async -> Bool {
        stop()
        let ended = await Self.wait(for: exited, timeout: timeout)
        if ended { exited.signal() }  // later waiters see it too
        return ended
    }

    private func append(_ entry: Entry) {
        entries.append(entry)
        condition.signal()
    }

    // MARK: The script's thread

    private func main(options: JSONObject, loaded: (Result<Set<HookEventKind>, HookLoadError>) -> Void) {
        let lua: LuaScript
        let host = HostLibrary(script: name, environment: environment)
        do {
            guard FileManager.default.fileExists(atPath: path) else { throw HookLoadError("\(path): no such file") }
            lua = try Self.makeState(path: path, settings: settings, host: host, options: options)
            let functions = Set(lua.globalFunctions())
            loaded(.success(Set(HookEventKind.allCases.filter { functions.contains($0.function) })))
        } catch let error as HookLoadError {
            return loaded(.failure(error))
        } catch {
            return loaded(.failure(HookLoadError("\(error)")))
        }
        while let entry = next() {
            switch entry {
            case .event(let event):
                _ = call(lua, event)
            case .progress(let slot):
                condition.lock()
                let event = slots.removeValue(forKey: slot)
                if let promptID = event?.promptID, openSlot[promptID] == slot { openSlot[promptID] = nil }
                let skip = discardProgress
                condition.unlock()
                if let event, !skip { _ = call(lua, event) }
            case .submit(let event, let submit):
                submit.answer(answer(lua, event, submit))
            case .barrier(let resume):
                resume()
            case .stop:
                return
            }
        }
    }

    private func next() -> Entry? {
        condition.lock()
        defer { condition.unlock() }
        while head == entries.count { condition.wait() }
        let entry = entries[head]
        head += 1
        if head > 256 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return entry
    }

    static func makeState(path: String, settings: Settings, host: HostLibrary, options: JSONObject) throws(HookLoadError) -> LuaScript {
        let lua: LuaScript
        let builtIn: Set<String>
        do {
            lua = try LuaScript(name: path, limits: settings.limits)
            try host.install(into: lua, options: options)
            builtIn = Set(lua.globalFunctions())
            _ = try lua.run(path: path)
        } catch {
            throw HookLoadError(error.summary(for: path))
        }
        try checkNames(lua, path: path, ignoring: builtIn)
        return lua
    }

    /// A global function the script defines whose name looks like a hook but is none
    /// (`on_compelte`, `onComplete`, `on_finish`) is a load error: it would never be called.
    static func checkNames(_ lua: LuaScript, path: String, ignoring builtIn: Set<String>) throws(HookLoadError) {
        let known = HookEventKind.allCases.map(\.function)
        func normalized(_ name: String) -> String { name.lowercased().replacingOccurrences(of: "_", with: "") }
        for function in lua.globalFunctions() where !builtIn.contains(function) && !known.contains(function) {
            guard function.lowercased().hasPrefix("on") else { continue }
            let closest = known.min { distance(normalized($0), normalized(function)) < distance(normalized($1), normalized(function)) }!
            let near = distance(normalized(closest), normalized(function)) <= 2
            guard function.hasPrefix("on_") || near else { continue }
            var message = "\(path): \(function) is not a hook function"
            if near { message += " (did you mean \(closest)?)" }
            message += "; hooks are \(known.joined(separator: ", ")); make helper functions local"
            throw HookLoadError(message)
        }
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    // MARK: Calls

    /// Calls the event's hook; failures are counted and logged, never thrown.
    private func call(_ lua: LuaScript, _ event: HookEvent) -> JSONValue? {
        condition.lock()
        let skip = disabled
        if !skip { statistics.calls += 1 }
        condition.unlock()
        if skip { return nil }
        do {
            let result = try lua.call(event.kind.function, [.object(event.table)])
            succeeded()
            return result
        } catch {
            failed("\(event.kind.function): \(error.summary(for: path))")
            return nil
        }
    }

    private func answer(_ lua: LuaScript, _ event: HookEvent, _ submit: SubmitCall) -> SubmitAnswer {
        guard let result = call(lua, event) else { return .unchanged }
        switch result {
        case .null, .bool(true): return .unchanged
        case .bool(false): return .skip
        case .object(let overrides):
            if let problem = submit.validate(overrides) {
                failed("on_submit: \(problem); the item goes unchanged")
                return .unchanged
            }
            return overrides.isEmpty ? .unchanged : .overrides(overrides)
        case .array([]): return .unchanged  // an empty table
        default:
            failed("on_submit: returned \(result.kindName); return nil (no change), false (skip) or a table of overrides")
            return .unchanged
        }
    }

    private func succeeded() {
        condition.lock()
        failuresInARow = 0
        condition.unlock()
    }

    private func failed(_ message: String) {
        condition.lock()
        statistics.failures += 1
        failuresInARow += 1
        let disable = failuresInARow >= settings.maximumFailures && !disabled
        if disable { disabled = true }
        condition.unlock()
        environment.log(HookLogLine(script: name, level: .warn, message: message))
        if disable {
            environment.log(
                HookLogLine(
                    script: name, level: .error,
                    message: "disabled after \(settings.maximumFailures) failures in a row; the batch goes on without it"))
        }
    }
}
