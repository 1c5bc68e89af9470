import CLuaShim
import ComfyCore
import Foundation

/// A Lua error: load-time (syntax, missing file) or run-time, with Lua's own `file:line` message
/// and, for run-time errors, a traceback on the following lines.
public struct LuaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
    /// The first line: `hooks/x.lua:12: attempt to index a nil value (local 'e')`.
    public var summary: String { message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? message }

    /// The line and the bare message when the summary points into `path`. Lua shortens long
    /// chunk names from the left (`...ooks/x.lua:12: …`), so a suffix of the path counts.
    public func location(in path: String) -> (line: Int, message: String)? {
        let text = summary
        var searchFrom = text.startIndex
        while let colon = text[searchFrom...].firstIndex(of: ":") {
            let afterColon = text.index(after: colon)
            let digits = text[afterColon...].prefix { $0.isNumber }
            if !digits.isEmpty, text[digits.endIndex...].hasPrefix(": "), let line = Int(digits) {
                let chunk = String(text[..<colon])
                let matches = chunk == path || (chunk.hasPrefix("...") && path.hasSuffix(chunk.dropFirst(3)))
                guard matches else { return nil }
                return (line, String(text[text.index(digits.endIndex, offsetBy: 2)...]))
            }
            searchFrom = afterColon
        }
        return nil
    }

    /// `path:line: message` with the full path, whatever Lua shortened.
    public func summary(for path: String) -> String {
        if let (line, message) = location(in: path) { return "\(path):\(line): \(message)" }
        return summary.hasPrefix(path) ? summary : "\(path): \(summary)"
    }
}

/// One Lua 5.4 state. Not `Sendable`: a state belongs to the one thread that uses it (a
/// `HookScript` gives each its own). Everything that can raise a Lua error happens in C under
/// `lua_pcall` with a traceback handler; values cross as `LuaValueCodec` bytes.
public final class LuaScript {
    /// Per call and per script: how long one call may run, how much memory the script may hold.
    public struct Limits: Sendable, Equatable {
        public var time: Double
        public var memory: Int
        public init(time: Double = 5, memory: Int = 64 << 20) {
            self.time = time
            self.memory = memory
        }
    }

    /// A host function's implementation: its index in the installed names, its arguments; returns
    /// its results. It runs on the script's thread, in the middle of a Lua call.
    public typealias HostHandler = (_ function: Int, _ arguments: Result<[JSONValue], LuaError>) -> [JSONValue]

    private let state: OpaquePointer
    /// Counted by the C allocator and read by the count hook; lives as long as the state.
    private let limits: UnsafeMutablePointer<comfyq_lua_limits>
    private var buffer = comfyq_buffer()
    private var hosts: [HostBox] = []
    public let limitSettings: Limits
    /// The file or chunk name, used in messages.
    public let name: String

    /// A fresh state with the standard libraries; nothing run yet.
    public init(name: String, limits: Limits = Limits()) throws(LuaError) {
        let pointer = UnsafeMutablePointer<comfyq_lua_limits>.allocate(capacity: 1)
        pointer.initialize(to: comfyq_lua_limits(used: 0, memory_limit: limits.memory, deadline: 0, time_limit: limits.time))
        guard let state = comfyq_lua_open(pointer) else {
            pointer.deallocate()
            throw LuaError(message: "\(name): cannot create a Lua state")
        }
        self.state = state
        self.limits = pointer
        self.limitSettings = limits
        self.name = name
    }

    /// Loads and runs the script's top-level chunk from a file.
    public convenience init(path: String, limits: Limits = Limits()) throws(LuaError) {
        try self.init(name: path, limits: limits)
        _ = try run(path: path)
    }

    /// Loads and runs `source` as a chunk named `name`.
    public convenience init(source: String, name: String, limits: Limits = Limits()) throws(LuaError) {
        try self.init(name: name, limits: limits)
        _ = try run(source: source, name: name)
    }

    deinit {
        comfyq_lua_close(state)
        limits.deallocate()
        comfyq_buffer_free(&buffer)
    }

    /// Runs a file as a chunk; returns what it returned (nil as `.null`).
    public func run(path: String) throws(LuaError) -> JSONValue {
        let status = comfyq_lua_run_file(state, path, &buffer)
        return try result(status)
    }

    /// Runs `source` as a chunk named `name` (messages say `name:line:`).
    public func run(source: String, name: String) throws(LuaError) -> JSONValue {
        let status = source.utf8CString.withUnsafeBufferPointer { chars in
            comfyq_lua_run_string(state, chars.baseAddress, chars.count - 1, "=" + name, &buffer)
        }
        return try result(status)
    }

    /// Bytes the script holds now.
    public var memoryInUse: Int { limits.pointee.used }

    /// Seconds left before the running call's deadline (nil outside a call or without a limit).
    public var timeLeft: Double? {
        let deadline = limits.pointee.deadline
        return deadline > 0 ? max(0, deadline - comfyq_lua_now()) : nil
    }

    /// Names of the global functions the script defines (after it has run).
    public func globalFunctions() -> [String] {
        let status = comfyq_lua_global_functions(state, &buffer)
        guard status == 0, let list = try? decoded().first?.arrayValue else { return [] }
        return list.compactMap(\.stringValue).sorted()
    }

    /// Whether the script defines a global function with this name.
    public func hasFunction(_ name: String) -> Bool { globalFunctions().contains(name) }

    /// Calls a global function; returns its first result (`.null` for none or nil).
    @discardableResult
    public func call(_ function: String, _ arguments: [JSONValue] = []) throws(LuaError) -> JSONValue {
        let bytes = LuaValueCodec.encode(arguments)
        let status = bytes.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in comfyq_lua_invoke(state, function, chars.baseAddress, chars.count, &buffer) }
        }
        return try result(status)
    }

    /// Sets a global or a field of a global table (`comfyq.options`).
    public func set(_ path: String, to value: JSONValue) throws(LuaError) {
        let bytes = LuaValueCodec.encode([value])
        let status = bytes.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in comfyq_lua_set(state, path, chars.baseAddress, chars.count, &buffer) }
        }
        _ = try result(status, expectsValue: false)
    }

    /// Installs functions `library.name` (names may be dotted: `json.encode`) that call `handler`.
    public func install(library: String, functions names: [String], handler: @escaping HostHandler) throws(LuaError) {
        let box = HostBox(handler: handler, names: names.map { "\(library).\($0)" })
        hosts.append(box)  // the state holds an unretained pointer: keep it alive as long as the state
        let context = Unmanaged.passUnretained(box).toOpaque()
        var cStrings = names.map { strdup($0) }
        defer { for pointer in cStrings { free(pointer) } }
        let status = cStrings.withUnsafeMutableBufferPointer { pointers in
            pointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constPointers in
                comfyq_lua_install(state, library, constPointers.baseAddress, Int32(names.count), hostCallback, context, &buffer)
            }
        }
        _ = try result(status, expectsValue: false)
    }

    private func result(_ status: Int32, expectsValue: Bool = true) throws(LuaError) -> JSONValue {
        guard status == 0 else {
            let message = (try? decoded().first?.stringValue) ?? nil
            throw LuaError(message: message ?? "\(name): Lua error \(status)")
        }
        guard expectsValue else { return .null }
        do {
            return try decoded().first ?? .null
        } catch {
            throw LuaError(message: "\(name): the returned value cannot be used: \(error)")
        }
    }

    private func decoded() throws(LuaValueCodec.Unconvertible) -> [JSONValue] {
        guard let data = buffer.data, buffer.length > 0 else { return [] }
        return try LuaValueCodec.decodeAll(UnsafeRawBufferPointer(start: data, count: buffer.length))
    }
}

/// What a host function's C trampoline reaches through its context pointer.
final class HostBox {
    let handler: LuaScript.HostHandler
    let names: [String]
    init(handler: @escaping LuaScript.HostHandler, names: [String]) {
        self.handler = handler
        self.names = names
    }
}

/// Called by the C trampoline with plain bytes; never touches the Lua state.
private let hostCallback: comfyq_host_callback = { context, function, arguments, length, results in
    guard let context, let results else { return }
    let box = Unmanaged<HostBox>.fromOpaque(context).takeUnretainedValue()
    let decoded: Result<[JSONValue], LuaError>
    if let arguments, length > 0 {
        do {
            decoded = .success(try LuaValueCodec.decodeAll(UnsafeRawBufferPointer(start: arguments, count: length)))
        } catch {
            decoded = .failure(LuaError(message: "\(box.names[Int(function)]): \(error)"))
        }
    } else {
        decoded = .success([])
    }
    let bytes = LuaValueCodec.encode(box.handler(Int(function), decoded))
    guard !bytes.isEmpty, comfyq_buffer_reserve(results, bytes.count) != 0, let data = results.pointee.data else { return }
    bytes.withUnsafeBytes { raw in
        (data + results.pointee.length).withMemoryRebound(to: UInt8.self, capacity: bytes.count) { target in
            target.update(from: raw.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count)
        }
    }
    results.pointee.length += bytes.count
}
