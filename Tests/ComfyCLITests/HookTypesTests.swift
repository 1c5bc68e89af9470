import ComfyCLI
import ComfyCore
import Foundation
import Hooks
import TestSupport
import Testing

/// The hook API's definitions against what hooks really get, and `comfyq hook init`, as a user
/// runs them.
@Suite(.serialized) struct HookTypesTests {
    /// Every event of a real night (a crash, a restart, a poison item that fails) matches the
    /// schema the LuaLS definitions are made of.
    @Test func everyEventOfARealRunMatchesTheTypeDefinitions() async throws {
        let night = try Night("types")
        try night.writeServers(extraArguments: "--crash-on-seed 3")
        let job = try night.writeJob(count: 4)
        let dump = night.path("events.jsonl")
        let script = night.path("dump.lua")
        let hooks = HookEventKind.allCases.map { "\($0.function) = dump" }.joined(separator: "\n")
        try """
            local function dump(e)
              local file = assert(io.open("\(dump)", "a"))
              file:write(assert(comfyq.json.encode(e)), "\\n")
              file:close()
            end
            \(hooks)
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let run = try night.startRun([job, "--concurrency", "1", "--hook", script])
        #expect(try await night.wait(run) == 1, "\(night.output("run"))")  // the poison item failed

        let lines = try String(contentsOfFile: dump, encoding: .utf8).split(separator: "\n")
        var kinds: Set<String> = []
        for line in lines {
            let event = try JSONValue(parsing: String(line))
            let name = event["event"]?.stringValue ?? ""
            guard let kind = HookEventKind(rawValue: name) else {
                Issue.record("an event the API does not name: \(line)")
                continue
            }
            kinds.insert(name)
            let problems = HookSchema.problems(in: event, className: HookSchema.className(for: kind))
            #expect(problems.isEmpty, "\(name): \(problems)\n\(line)")
        }
        #expect(kinds.isSuperset(of: ["batch_start", "submit", "phase", "progress", "complete", "error", "batch_done", "server"]), "\(kinds)")
    }

    @Test func hookInitWritesAStarterThatRunsOnceUncommented() async throws {
        let folder = TestFolder.root.appendingPathComponent("comfyq-hook-init-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("night-notes.lua").path
        let written = try await runBinary(["hook", "init", folder.appendingPathComponent("night-notes").path])
        #expect(written.status == .success, "\(written.stderr)")
        #expect(written.stdout.hasPrefix("wrote \(path): every hook commented out"))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == HookSchema.starterScript(name: "night-notes"))

        // As written it defines no hook; uncommented, every hook runs on the sample events.
        let idle = try await runBinary(["hook", "test", path])
        #expect(idle.stdout.contains("hooks: none"), "\(idle.stdout)")
        try uncommentHookStubs(text).write(toFile: path, atomically: true, encoding: .utf8)
        let tested = try await runBinary(["hook", "test", path, "--dry-run"])
        #expect(tested.status == .success, "\(tested.stdout)\(tested.stderr)")
        #expect(tested.stdout.contains("hooks: \(HookEventKind.allCases.map(\.function).joined(separator: ", "))"), "\(tested.stdout)")
        #expect(tested.stdout.hasSuffix("\(HookSamples.events().count) calls, 0 failed\n"), "\(tested.stdout)")

        // Never over a file that exists; a name that is not one is refused.
        let again = try await runBinary(["hook", "init", path])
        #expect(again.status == .failure)
        #expect(again.stderr == "Error: \(path): already exists; not overwritten\n")
        let odd = try await runBinary(["hook", "init", "no spaces"])
        #expect(odd.status == .usage)
    }

    @Test func hookTypesPrintsTheShippedDefinitions() async throws {
        let printed = try await runBinary(["hook", "types"])
        #expect(printed.status == .success)
        let shipped = try String(contentsOf: Paths.packageRoot.appendingPathComponent("scripts/types/comfyq.lua"), encoding: .utf8)
        #expect(printed.stdout == shipped)
    }
}
