import ComfyCore
import Foundation
import Testing

/// What newer ComfyUIs send, fed through the decoder and the engine: unknown message types and
/// fields change nothing; partial execution (PRs #14918/#15325: `execution_node_error`, then
/// `execution_success` with `completion_status: "partial_success"`) ends the prompt failed,
/// naming the node, because an item succeeds only when every output node made its outputs.
@Suite struct FutureProtocolTests {
    static func lines(_ name: String) throws -> [JSONValue] {
        try Fixtures.trace(name).split(separator: "\n").map { try JSONValue(parsing: String($0)) }
    }

    static func replay(_ lines: [JSONValue]) throws -> (TraceReplay, [TraceReplay.Record]) {
        var replay = TraceReplay()
        var records: [TraceReplay.Record] = []
        for (offset, line) in lines.enumerated() { records += try replay.feed(line: line.serialized(), number: offset + 1) }
        return (replay, records)
    }

    /// Every message gains fields at the top and in its data, and an unknown message follows
    /// each one (a text type, and the asset seeder's, as 0.38 broadcasts).
    static func withTheUnknown(_ lines: [JSONValue]) -> [JSONValue] {
        var out: [JSONValue] = []
        for line in lines {
            guard case .object(var object) = line, case .object(var message)? = object["ws"] else {
                out.append(line)
                continue
            }
            if case .object(var data)? = message["data"] {
                data["future_field"] = ["nested": [1, 2, 3], "flag": true]
                data["activity"] = "loading"
                message["data"] = .object(data)
            }
            message["version"] = 2
            object["ws"] = .object(message)
            out.append(.object(object))
            for type in ["assets.seed.progress", "some_custom_node.status"] {
                var extra = object
                extra["ws"] = ["type": .string(type), "data": ["prompt_id": "anything", "value": 0.5]]
                out.append(.object(extra))
            }
        }
        return out
    }

    @Test(arguments: TraceCatalog.expected.keys.sorted())
    func unknownTypesAndFieldsChangeNothing(_ name: String) throws {
        let original = try Self.lines(name)
        let (plain, plainRecords) = try Self.replay(original)
        let (noisy, noisyRecords) = try Self.replay(Self.withTheUnknown(original))
        #expect(noisy.finished == plain.finished, "\(name)")
        #expect(noisyRecords.map(\.update) == plainRecords.map(\.update), "\(name)")
        #expect(noisy.skippedTypes["assets.seed.progress"] ?? 0 > 0)
    }

    /// txt2img.jsonl as a server with partial execution would have sent it had node 8 failed:
    /// its error, the run going on, then success with `partial_success`.
    @Test func partialSuccessIsAFailureNamingTheNode() throws {
        var lines = try Self.lines("txt2img.jsonl")
        let success = try #require(lines.firstIndex { $0["ws"]?["type"] == "execution_success" })
        let promptID = try #require(lines[success]["ws"]?["data"]?["prompt_id"])
        guard case .object(var line) = lines[success], case .object(var message)? = line["ws"], case .object(var data)? = message["data"] else {
            Issue.record("unexpected trace shape")
            return
        }
        data["completion_status"] = "partial_success"
        message["data"] = .object(data)
        line["ws"] = .object(message)
        lines[success] = .object(line)
        var error = line
        error["ws"] = [
            "type": "execution_node_error",
            "data": [
                "prompt_id": promptID, "node_id": "8", "node_type": "VAEDecode", "exception_type": "torch.OutOfMemoryError",
                "exception_message": "CUDA out of memory", "executed": [], "traceback": [], "timestamp": 0,
            ],
        ]
        lines.insert(.object(error), at: success)
        let (replay, records) = try Self.replay(lines)
        let final = try #require(replay.finished.first)
        #expect(final.phase == .failed)
        guard case .failed(let failure)? = final.outcome else {
            Issue.record("expected a failure, got \(String(describing: final.outcome))")
            return
        }
        #expect(failure.nodeID == "8" && failure.classType == "VAEDecode" && failure.exceptionType == "torch.OutOfMemoryError")
        #expect(failure.message == "CUDA out of memory (the other outputs were made)")
        // The progress until then is the same as the original's.
        #expect(records.dropLast().allSatisfy { !$0.update.snapshot.phase.isTerminal })
    }

    @Test func aHistoryWithNodeErrorsIsAFailure() throws {
        let entry = try JSONValue(
            parsing: #"""
                {"status": {"status_str": "success", "completed": true, "messages": [
                  ["execution_start", {"prompt_id": "p"}],
                  ["execution_node_error", {"prompt_id": "p", "node_id": "12", "node_type": "SaveVideo", "exception_type": "ValueError", "exception_message": "bad codec"}],
                  ["execution_node_error", {"prompt_id": "p", "node_id": "15", "node_type": "SaveImage", "exception_type": "OSError", "exception_message": "disk"}],
                  ["execution_success", {"prompt_id": "p", "completion_status": "partial_success"}]]},
                 "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}}
                """#)
        let record = HistoryRecord(promptID: "p", entry: try #require(entry.objectValue))
        #expect(
            record.outcome
                == .failed(
                    ExecutionFailure(
                        nodeID: "12", classType: "SaveVideo", exceptionType: "ValueError",
                        message: "bad codec (and 1 more node failed; the other outputs were made)")))
    }
}
