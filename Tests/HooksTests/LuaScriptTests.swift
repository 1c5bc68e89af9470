import Foundation
import Hooks
import Testing

@Suite struct LuaScriptTests {
    @Test func callsAGlobalFunction() throws {
        let script = try LuaScript(source: "function greet(name) return 'hello ' .. name end", name: "greet.lua")
        #expect(script.hasFunction("greet"))
        #expect(!script.hasFunction("on_compelte"))
        #expect(try script.call("greet", ["comfyq"]) == "hello comfyq")
    }

    @Test func syntaxErrorsNameFileAndLine() {
        #expect {
            try LuaScript(source: "x = = 1", name: "bad.lua")
        } throws: { error in
            "\(error)".hasPrefix("bad.lua:1:")
        }
    }

    @Test func runtimeErrorsCarryATracebackAndLeaveTheStateUsable() throws {
        let script = try LuaScript(
            source: "function fail() error('boom') end\nfunction ok() return 'fine' end", name: "hooks.lua")
        #expect {
            try script.call("fail")
        } throws: { error in
            let text = "\(error)"
            return text.contains("hooks.lua:1: boom") && text.contains("stack traceback")
        }
        #expect(try script.call("ok") == "fine")
    }

    @Test func missingFileIsAnError() {
        #expect(throws: LuaError.self) { try LuaScript(path: "/nonexistent/hook.lua") }
    }
}
