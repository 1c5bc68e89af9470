import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing

@Suite struct ReplayCommandTests {
    @Test func textOutputShowsStepsAndTransitions() async {
        let run = await comfyq("replay", Paths.trace("two-samplers.jsonl"))
        #expect(run.status == .success)
        #expect(run.stdout.contains("queued → setup"))
        #expect(run.stdout.contains("setup → sampling  sampler 1/2  step 1/4"))
        #expect(run.stdout.contains("sampler 2/2  step 3/3"))
        #expect(run.stdout.contains("saving → done"))
        #expect(run.stderr.hasPrefix("81943bb5: done"))
    }

    @Test func jsonOutputHasTheDocumentedKeys() async throws {
        let run = await comfyq("replay", "--json", Paths.trace("runtime-error.jsonl"))
        #expect(run.status == .success)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let objects = try lines.map { try JSONValue(parsing: $0) }
        for object in objects {
            for key in ["schema", "t", "prompt_id", "phase", "node", "sampler", "samplers", "step", "steps", "fraction", "event"] {
                #expect(object[key] != nil, "missing \(key) in \(object.serialized())")
            }
        }
        let last = try #require(objects.last)
        #expect(last["event"] == "transition")
        #expect(last["from"] == "sampling")
        #expect(last["to"] == "failed")
        #expect(last["error"]?["class_type"] == "FakeSampler")
        #expect(last["error"]?["exception_type"] == "RuntimeError")
    }

    @Test func malformedLineFailsWithItsNumber() async throws {
        let path = TestFolder.root.appendingPathComponent("bad-\(UUID()).jsonl").path
        try "{\"t\": 0, \"note\": \"ok\"}\n{\"t\": 1, \"ws\": {\"type\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = await comfyq("replay", path)
        #expect(run.status == .failure)
        #expect(run.stderr.hasPrefix("Error: \(path): line 2: malformed JSON"))
    }

    @Test func missingFileIsOneLine() async {
        let run = await comfyq("replay", "/nonexistent/trace.jsonl")
        #expect(run.status == .failure)
        #expect(run.stderr.hasPrefix("Error: /nonexistent/trace.jsonl: cannot read the trace"))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    @Test func unknownTypesAreSummarisedOnStderr() async throws {
        let path = TestFolder.root.appendingPathComponent("unknown-\(UUID()).jsonl").path
        try #"{"t": 0, "ws": {"type": "crystools.monitor", "data": {}}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = await comfyq("replay", path)
        #expect(run.status == .success)
        #expect(run.stderr.contains("skipped message types: crystools.monitor ×1"))
    }

    /// The real binary, as a user runs it.
    @Test func binaryReplaysATrace() async throws {
        let run = try await runBinary(["replay", "--json", Paths.trace("txt2img.jsonl")])
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stdout.contains(#""to":"done""#))
        let usage = try await runBinary(["replay"])
        #expect(usage.status == .usage)
        #expect(usage.stderr.hasPrefix("Error: missing expected argument '<trace>'"))
    }
}
