import Foundation
import ComfyCore
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

/// Values cross the boundary as bytes (LuaValueCodec); Lua tables become lists or objects.
@Suite struct LuaValueTests {

    @Test(arguments: [
        JSONValue.null, true, false, 0, -7, 9_007_199_254_740_993, 2.5, "", "héllo\u{0}world",
        ["a", 1, true], ["k": "v", "n": ["x": [1, 2]]],
    ] as [JSONValue])
    func valuesSurviveARoundTrip(value: JSONValue) throws {
        let identity = try LuaScript(source: "function id(...) return ... end", name: "id.lua")
        #expect(try identity.call("id", [value]) == value)
    }

    @Test func tablesBecomeListsOrObjectsWithSortedKeys() throws {
        let script = try LuaScript(
            source: """
                function list() return {10, 20, 30} end
                function object() return {zeta = 1, alpha = 2, [3] = 'three'} end
                function holes() local t = {1, 2} t[4] = 4 return t end
                function float() return 7.0 end
                """, name: "tables.lua")
        #expect(try script.call("list") == [10, 20, 30])
        #expect(try script.call("object").serialized() == #"{"3":"three","alpha":2,"zeta":1}"#)
        #expect(try script.call("holes").serialized() == #"{"1":1,"2":2,"4":4}"#)
        #expect(try script.call("float").serialized() == "7.0")
    }

    @Test func valuesWithoutAFormAreErrorsNotCrashes() throws {
        let script = try LuaScript(
            source: "function fn() return {f = print} end\nfunction cycle() local t = {} t.self = t return t end", name: "odd.lua")
        #expect { try script.call("fn") } throws: { "\($0)".contains("a function cannot be converted") }
        #expect { try script.call("cycle") } throws: { "\($0)".contains("nested too deeply") }
    }
}
