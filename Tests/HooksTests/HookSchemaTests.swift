import ComfyCore
import Foundation
import Hooks
import TestSupport
import Testing

/// The hook API as data, and what is made of it: the LuaLS definitions shipped in scripts/types,
/// the README's tables, and the events themselves must all say the same.
@Suite struct HookSchemaTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let shipped = packageRoot.appendingPathComponent("scripts/types/comfyq.lua")

    @Test func theShippedDefinitionsAreTheSchemas() throws {
        let text = try String(contentsOf: Self.shipped, encoding: .utf8)
        #expect(text == HookSchema.luaDefinitions, "scripts/types/comfyq.lua is stale: regenerate it with `comfyq hook types > scripts/types/comfyq.lua`")
    }

    @Test func theDefinitionsAreLuaThatDeclaresEveryHookAndLibraryFunction() throws {
        let lua = try LuaScript(source: HookSchema.luaDefinitions, name: "comfyq.lua")
        let globals = Set(lua.globalFunctions())
        for kind in HookEventKind.allCases { #expect(globals.contains(kind.function), "\(kind.function)") }
        for function in HookSchema.library {
            let parts = function.name.split(separator: ".").map { "\"\($0)\"" }.joined(separator: ", ")
            let found = try lua.run(
                source: "local t = _G; for _, k in ipairs({\(parts)}) do t = t[k] end; return type(t)", name: "probe")
            #expect(found == "function", "\(function.name)")
        }
        #expect(HookSchema.luaDefinitions.hasPrefix("---@meta comfyq\n"))
    }

    @Test func everySampleEventConforms() {
        let events = HookSamples.events()
        #expect(Set(events.map(\.kind)) == Set(HookEventKind.allCases))
        for event in events {
            let problems = HookSchema.problems(in: .object(event.table), className: HookSchema.className(for: event.kind))
            #expect(problems.isEmpty, "\(event.kind): \(problems)")
        }
    }

    /// What the checker catches, so the end-to-end check of real runs can fail.
    @Test(arguments: [
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r", "restarts": 0}"#, [String]()),
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r", "restarts": 0.5}"#, ["restarts: 0.5 is not an integer"]),
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "sleeping", "previous_state": "down", "reason": "r", "restarts": 0}"#, [#"state: "sleeping" is not a comfyq.ServerState"#]),
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r"}"#, ["restarts: missing from comfyq.ServerEvent"]),
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r", "restarts": 0, "uptime": 3}"#, ["uptime: not in comfyq.ServerEvent"]),
        (#"{"event": "server", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r", "restarts": 0, "log_tail": [1]}"#, ["log_tail[1]: 1 is not a string"]),
        (#"{"event": "pause", "server": "gpu0", "url": "u", "state": "up", "previous_state": "down", "reason": "r", "restarts": 0}"#, [#"event: "pause" is not "server""#]),
    ])
    func theCheckerCatchesWhatDiffers(json: String, expected: [String]) throws {
        let problems = HookSchema.problems(in: try JSONValue(parsing: json), className: "comfyq.ServerEvent")
        #expect(problems == expected)
    }

    @Test func promptEventsCheckTheirNestedTables() throws {
        let event = try JSONValue(
            parsing: #"""
                {"event": "complete", "job": "j", "item": 0, "prompt_id": "p", "server": "s", "attempt": 1, "elapsed": 1.5,
                 "params": {"KSampler.seed": 3, "Load Image.image": {"file": "/a.png", "size": 10, "mtime": 1.5, "colour": "red"}},
                 "node": {"id": "3", "class": "KSampler"}, "outputs": {}}
                """#)
        #expect(
            HookSchema.problems(in: event, className: "comfyq.PromptEvent").sorted() == [
                #"node.class: not in comfyq.Node"#, #"params["Load Image.image"]: {"file":"/a.png","size":10,"mtime":1.5,"colour":"red"} is not string|number|boolean|comfyq.InputFile"#,
            ])
    }

    /// scripts/README.md documents every key of every table, in one of its tables.
    @Test func theReadmeDocumentsEveryKey() throws {
        let readme = try String(contentsOf: Self.packageRoot.appendingPathComponent("scripts/README.md"), encoding: .utf8)
        // The keys the README's tables define: the first cell of each row.
        let keys = readme.split(separator: "\n").filter { $0.hasPrefix("| ") }.map { $0.split(separator: "|").first.map(String.init) ?? "" }
        for type in HookSchema.classes where !["comfyq.InputFile", "comfyq.Node", "comfyq.Timings", "comfyq.Error", "comfyq.Failure", "comfyq.Report", "comfyq.Held"].contains(type.name) {
            for field in type.fields {
                #expect(keys.contains { $0.contains("`\(field.name)`") }, "\(type.name).\(field.name) is not in scripts/README.md")
            }
        }
        for kind in HookEventKind.allCases { #expect(readme.contains("`\(kind.function)("), "\(kind.function)") }
        for function in HookSchema.library { #expect(readme.contains("`\(function.name)"), "\(function.name)") }
    }

    @Test func theStarterScriptHasEveryHookAndIsLua() throws {
        let text = HookSchema.starterScript(name: "mine")
        for kind in HookEventKind.allCases { #expect(text.contains("-- function \(kind.function)("), "\(kind.function)") }
        // As written (everything commented) and with every stub uncommented, it is valid Lua.
        let lua = try LuaScript(source: text, name: "mine.lua")
        #expect(lua.globalFunctions().filter { $0.hasPrefix("on_") }.isEmpty)
        let uncommented = try LuaScript(source: uncommentHookStubs(text), name: "mine.lua")
        #expect(Set(uncommented.globalFunctions().filter { $0.hasPrefix("on_") }) == Set(HookEventKind.allCases.map(\.function)))
    }
}
