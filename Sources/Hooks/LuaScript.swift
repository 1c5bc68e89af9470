import CLua
import CLuaShim

/// A Lua error: load-time (syntax, missing file) or run-time, with Lua's own `file:line` message.
public struct LuaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One Lua 5.4 state running one script. Not `Sendable`: a state belongs to the one thread that
/// created it. Every call into Lua is protected and gets a traceback; no Lua error ever unwinds
/// through Swift frames.
public final class LuaScript {
    /// Per call and per script: how long one call may run, how much memory the script may hold.
    public struct Limits: Sendable {
        public var time: Double = 5
        public var memory: Int = 64 << 20
        public init(time: Double = 5, memory: Int = 64 << 20) {
            self.time = time
            self.memory = memory
        }
    }

    private let state: OpaquePointer
    /// Counted by the C allocator and read by the count hook; lives as long as the state.
    private let limits: UnsafeMutablePointer<comfyq_lua_limits>
    public let limitSettings: Limits
    /// The file or chunk name, used in messages.
    public let name: String

    /// Loads and runs the script's top-level chunk.
    public init(path: String, limits: Limits = Limits()) throws(LuaError) {
        (state, self.limits) = try Self.makeState(path, limits)
        limitSettings = limits
        self.name = path
        guard comfyq_lua_loadfile(state, path) == LUA_OK else { throw popError() }
        try callTop(arguments: 0)
    }

    /// Loads and runs `source` as a chunk named `name`.
    public init(source: String, name: String, limits: Limits = Limits()) throws(LuaError) {
        (state, self.limits) = try Self.makeState(name, limits)
        limitSettings = limits
        self.name = name
        let status = source.withCString { pointer in
            comfyq_lua_loadstring(state, pointer, strlen(pointer), "=" + name)
        }
        guard status == LUA_OK else { throw popError() }
        try callTop(arguments: 0)
    }

    deinit {
        lua_close(state)
        limits.deallocate()
    }

    private static func makeState(_ name: String, _ settings: Limits) throws(LuaError) -> (OpaquePointer, UnsafeMutablePointer<comfyq_lua_limits>) {
        let limits = UnsafeMutablePointer<comfyq_lua_limits>.allocate(capacity: 1)
        limits.initialize(to: comfyq_lua_limits(used: 0, memory_limit: settings.memory, deadline: 0, time_limit: settings.time))
        guard let state = comfyq_lua_newstate(limits) else {
            limits.deallocate()
            throw LuaError(message: "\(name): cannot create a Lua state")
        }
        luaL_openlibs(state)
        return (state, limits)
    }

    /// Bytes the script holds now.
    public var memoryInUse: Int { limits.pointee.used }

    /// Whether the script defines a global function with this name.
    public func hasFunction(_ name: String) -> Bool {
        lua_getglobal(state, name)
        defer { comfyq_lua_pop(state, 1) }
        return comfyq_lua_isfunction(state, -1) != 0
    }

    /// Calls a global function with string arguments and returns its first result as a string
    /// (nil when it returned nothing, nil or a non-string).
    public func call(_ function: String, _ arguments: [String] = []) throws(LuaError) -> String? {
        lua_getglobal(state, function)
        guard comfyq_lua_isfunction(state, -1) != 0 else {
            comfyq_lua_pop(state, 1)
            throw LuaError(message: "\(name): no function '\(function)'")
        }
        for argument in arguments { lua_pushstring(state, argument) }
        try callTop(arguments: Int32(arguments.count), results: 1)
        defer { comfyq_lua_pop(state, 1) }
        guard lua_type(state, -1) == LUA_TSTRING, let text = comfyq_lua_tostring(state, -1) else { return nil }
        return String(cString: text)
    }

    /// Calls the function below its arguments on the stack under a traceback handler.
    private func callTop(arguments: Int32, results: Int32 = 0) throws(LuaError) {
        limits.pointee.deadline = limitSettings.time > 0 ? comfyq_lua_now() + limitSettings.time : 0
        comfyq_lua_arm(state)
        defer { limits.pointee.deadline = 0 }
        let base = lua_gettop(state) - arguments
        comfyq_lua_push_traceback_handler(state)
        lua_rotate(state, base, 1)  // handler below the function
        let status = comfyq_lua_pcall(state, arguments, results, base)
        lua_rotate(state, base, -1)  // handler to the top
        comfyq_lua_pop(state, 1)
        guard status == LUA_OK else { throw popError() }
    }

    private func popError() -> LuaError {
        let message = comfyq_lua_tostring(state, -1).map { String(cString: $0) } ?? "unknown Lua error"
        comfyq_lua_pop(state, 1)
        return LuaError(message: message)
    }
}
