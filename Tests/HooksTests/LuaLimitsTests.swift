import ComfyCore
import Foundation
import Hooks
import Testing

/// A faulty script cannot hang or exhaust the runner: calls have a deadline and scripts a memory cap.
@Suite struct LuaLimitsTests {
    static let limits = LuaScript.Limits(time: 0.2, memory: 8 << 20)

    static func elapsed(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let duration = ContinuousClock.now - start
        return duration.seconds
    }

    @Test(arguments: [
        "function spin() while true do end end",
        // Catching the error does not help: the hook raises again, outside the pcall.
        "function spin() while true do pcall(function() while true do end end) end end",
        "function spin() local co = coroutine.wrap(function() while true do end end) co() end",
    ])
    func runawayLoopsStopAtTheDeadline(source: String) throws {
        let script = try LuaScript(source: source + "\nfunction ok() return 'still fine' end", name: "spin.lua", limits: Self.limits)
        var message = ""
        let seconds = Self.elapsed {
            do { _ = try script.call("spin") } catch { message = "\(error)" }
        }
        #expect(message.contains("time limit of 0.2 s exceeded"), "\(message)")
        #expect(seconds < 20)  // stopped, not run for ever (how soon is the machine's business)
        #expect(try script.call("ok") == "still fine")  // the next call has its own deadline
    }

    @Test func memoryIsCappedPerScript() throws {
        let script = try LuaScript(
            source: "function hog() local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end end\nfunction ok() return 'ok' end",
            name: "hog.lua", limits: LuaScript.Limits(time: 30, memory: 8 << 20))  // memory, not time, must stop it
        #expect {
            try script.call("hog")
        } throws: { error in
            "\(error)".contains("not enough memory")
        }
        #expect(script.memoryInUse < 8 << 20)
        #expect(try script.call("ok") == "ok")
    }
}
