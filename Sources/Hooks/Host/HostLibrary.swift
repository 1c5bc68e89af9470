import ComfyCore
import Foundation
import Processes

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A line a script logged (with `comfyq.log`, or the host on its behalf).
public struct HookLogLine: Sendable, Equatable {
    public enum Level: String, Sendable, CaseIterable {
        case debug, info, warn, error
    }
    public var script: String
    public var level: Level
    public var message: String

    public init(script: String, level: Level, message: String) {
        self.script = script
        self.level = level
        self.message = message
    }
}

/// What host functions may reach: the environment, where logs go, and whether side effects
/// really happen (`comfyq hook test --dry-run` records them instead).
public struct HookEnvironment: Sendable {
    /// For `comfyq.env` and for programs that `exec` and `notify` run (including `PATH`).
    public var variables: [String: String]
    public var log: @Sendable (HookLogLine) -> Void
    /// Record network, program and notification calls instead of making them.
    public var dryRun = false
    /// Told about every host call and its result (`hook test` shows them).
    public var trace: (@Sendable (_ script: String, _ call: String) -> Void)?

    public init(variables: [String: String] = ProcessInfo.processInfo.environment, log: @escaping @Sendable (HookLogLine) -> Void) {
        self.variables = variables
        self.log = log
    }
}

/// The `comfyq` table every script sees. Functions never raise: a failure returns
/// `nil, message`. Time spent waiting (HTTP, programs) counts against the call's time limit, so
/// every wait is clamped to what is left of it.
final class HostLibrary {
    static let apiVersion = 1
    static let functions = ["log", "notify", "http_post", "http_get", "exec", "json.encode", "json.decode", "env"]

    let script: String
    let environment: HookEnvironment
    private weak var lua: LuaScript?
    /// Made on the first request: most scripts never make one, and a session starts machinery
    /// on Dispatch's threads (which must not be started by a script that fails to load while
    /// the process exits).
    private var madeSession: URLSession?
    private var session: URLSession {
        if let madeSession { return madeSession }
        let session = URLSession(configuration: .ephemeral)
        madeSession = session
        return session
    }

    init(script: String, environment: HookEnvironment) {
        self.script = script
        self.environment = environment
    }

    deinit { madeSession?.invalidateAndCancel() }

    /// Installs `comfyq.*` into `lua`, with `options` and `api_version`.
    func install(into lua: LuaScript, options: JSONObject) throws(LuaError) {
        self.lua = lua
        try lua.install(library: "comfyq", functions: Self.functions) { index, arguments in  // holds self: the library lives as long as the state
            switch arguments {
            case .failure(let error): return [.null, .string(error.message)]
            case .success(let values): return self.call(Self.functions[index], values)
            }
        }
        try lua.set("comfyq.options", to: .object(options))
        try lua.set("comfyq.api_version", to: .int(Self.apiVersion))
    }

    private func failure(_ message: String) -> [JSONValue] { [.null, .string(message)] }

    func call(_ name: String, _ arguments: [JSONValue]) -> [JSONValue] {
        let results: [JSONValue]
        switch name {
        case "log": results = log(arguments)
        case "notify": results = notify(arguments)
        case "http_post": results = http("POST", url: arguments[safe: 0], body: arguments[safe: 1], headers: arguments[safe: 2], timeout: arguments[safe: 3])
        case "http_get": results = http("GET", url: arguments[safe: 0], body: nil, headers: arguments[safe: 1], timeout: arguments[safe: 2])
        case "exec": results = exec(arguments)
        case "json.encode":
            if case .null = arguments.first ?? .null { results = [.string("null")] } else { results = [.string(arguments[0].serialized())] }
        case "json.decode":
            guard let text = arguments.first?.stringValue else { return failure("json.decode: expects a string") }
            do { results = [try JSONValue(parsing: text)] } catch {
                let (line, column) = error.location(in: text)
                results = failure("json.decode: line \(line), column \(column): \(error)")
            }
        case "env":
            guard let variable = arguments.first?.stringValue else { return failure("env: expects a variable name") }
            results = [environment.variables[variable].map { .string($0) } ?? .null]
        default: results = failure("\(name): unknown")
        }
        if let trace = environment.trace, name != "log" && !name.hasPrefix("json.") && name != "env" {
            trace(script, "comfyq.\(name)(\(arguments.map(Self.brief).joined(separator: ", "))) → \(results.map(Self.brief).joined(separator: ", "))")
        }
        return results
    }

    /// A value in a trace line: strings cut to 60 characters.
    static func brief(_ value: JSONValue) -> String {
        let text = value.stringValue.map { JSONValue.string($0).serialized() } ?? value.serialized()
        return text.count > 60 ? text.prefix(57) + "…" : text
    }

    // MARK: Functions

    private func log(_ arguments: [JSONValue]) -> [JSONValue] {
        let (levelText, message): (String?, JSONValue?) = arguments.count >= 2 ? (arguments[0].stringValue, arguments[1]) : ("info", arguments.first)
        guard let levelText, let level = HookLogLine.Level(rawValue: levelText) else {
            return failure("log: level must be one of debug, info, warn, error")
        }
        let text = message.map { $0.stringValue ?? $0.serialized() } ?? ""
        environment.log(HookLogLine(script: script, level: level, message: text))
        return [.bool(true)]
    }

    private func notify(_ arguments: [JSONValue]) -> [JSONValue] {
        guard let title = arguments.first?.stringValue else { return failure("notify: expects a title string") }
        let body = arguments[safe: 1]?.stringValue ?? ""
        if environment.dryRun { return [.bool(true)] }
        if let program = Spawn.locate("notify-send", path: environment.variables["PATH"]) {
            let outcome = try? Subprocess.run([program, "--app-name=comfyq", title, body], environment: environment.variables, timeout: clamp(5))
            if outcome?.status == 0 { return [.bool(true)] }
        }
        // No desktop here (a server, ssh): the notification goes to the log instead.
        environment.log(HookLogLine(script: script, level: .info, message: body.isEmpty ? title : "\(title): \(body)"))
        return [.bool(false)]
    }

    private func exec(_ arguments: [JSONValue]) -> [JSONValue] {
        guard let list = arguments.first?.arrayValue, !list.isEmpty else { return failure("exec: expects a list {program, arg, …}") }
        var argv: [String] = []
        for item in list {
            guard let text = item.stringValue ?? item.numberValue?.literal else { return failure("exec: arguments must be strings") }
            argv.append(text)
        }
        let timeout = clamp(arguments[safe: 1]?.numberValue?.double ?? 10)
        if environment.dryRun { return [.int(0), .string("")] }
        do {
            let outcome = try Subprocess.run(argv, environment: environment.variables, timeout: timeout)
            if outcome.timedOut { return failure("exec: \(argv[0]) timed out after \(Self.seconds(timeout)) s") }
            return [.int(Int(outcome.status)), .string(outcome.output)]
        } catch {
            return failure("exec: \(error)")
        }
    }

    private func http(_ method: String, url: JSONValue?, body: JSONValue?, headers: JSONValue?, timeout: JSONValue?) -> [JSONValue] {
        let name = method == "POST" ? "http_post" : "http_get"
        guard let text = url?.stringValue, let target = URL(string: text), ["http", "https"].contains(target.scheme ?? "") else {
            return failure("\(name): expects an http:// or https:// URL")
        }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.timeoutInterval = clamp(timeout?.numberValue?.double ?? 10)
        var contentType: String?
        if let body {
            switch body {
            case .string(let string): request.httpBody = Data(string.utf8)
            case .null: break
            case .object(let table):
                // A file as the whole body ({file = PATH}), or a multipart form ({fields = …, files = …}).
                do {
                    let upload = try HTTPBody(table: table)
                    request.httpBody = Data(upload.bytes)
                    contentType = upload.contentType
                } catch {
                    return failure("\(name): \(error.description)")
                }
            default: return failure("\(name): the body must be a string, {file = PATH} or {fields = …, files = …} (use comfyq.json.encode for other tables)")
            }
        }
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let headers, headers != .null {
            guard let entries = headers.objectValue else { return failure("\(name): headers must be a table of name = value") }
            for (key, value) in entries { request.setValue(value.stringValue ?? value.serialized(), forHTTPHeaderField: key) }
        }
        if environment.dryRun { return [.int(200), .string("")] }
        let done = DispatchSemaphore(value: 0)
        let outcome = Box<Result<(Int, Data), any Error>>(.failure(URLError(.unknown)))
        let task = session.dataTask(with: request) { data, response, error in
            if let error {
                outcome.value = .failure(error)
            } else {
                outcome.value = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + request.timeoutInterval + 1) == .timedOut {
            task.cancel()
            return failure("\(name): \(text): timed out after \(Self.seconds(request.timeoutInterval)) s")
        }
        switch outcome.value {
        case .success(let (status, data)): return [.int(status), .string(String(decoding: data, as: UTF8.self))]
        case .failure(let error): return failure("\(name): \(text): \(error.localizedDescription)")
        }
    }

    /// A wait no longer than what is left of the current call.
    private func clamp(_ seconds: Double) -> Double {
        let wanted = max(0.001, seconds)
        guard let left = lua?.timeLeft else { return wanted }
        return min(wanted, max(0.001, left))
    }

    static func seconds(_ value: Double) -> String { String(format: value == value.rounded() ? "%.0f" : "%.1f", value) }
}

/// A mutable cell for a completion handler to fill (read after a semaphore).
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
