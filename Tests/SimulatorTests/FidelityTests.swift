import ComfyClient
import ComfyCore
import Foundation
import Simulator
import Testing

/// The simulator against the recordings of a real ComfyUI: the same workflows, the same sequence
/// of message types and shapes (ids, timestamps and timing aside).
@Suite struct FidelityTests {
    struct Case: Sendable, CustomStringConvertible {
        var trace: String
        /// Run the graph once before, with the samplers' seeds changed, so the loaders and text
        /// encoders are cached as they were when the recording was made (or, with `same`, the
        /// identical graph, for the fully cached recording).
        var warmUp: WarmUp
        var interruptAfterStep: Int?
        var previews = false
        var description: String { trace }

        enum WarmUp: Sendable { case none, otherSeed, same }
    }

    static let cases: [Case] = [
        Case(trace: "txt2img.jsonl", warmUp: .none),
        Case(trace: "txt2img-cached.jsonl", warmUp: .same),
        Case(trace: "txt2img-gpu-warm.jsonl", warmUp: .otherSeed),
        Case(trace: "two-samplers.jsonl", warmUp: .otherSeed),
        Case(trace: "runtime-error.jsonl", warmUp: .otherSeed),
        Case(trace: "interrupted.jsonl", warmUp: .otherSeed, interruptAfterStep: 3),
        Case(trace: "previews.jsonl", warmUp: .none, previews: true),
    ]

    /// The recorded messages of the first prompt, from its POST to its `executing` null.
    static func recorded(_ name: String) throws -> (graph: JSONValue, shapes: [String]) {
        let lines = try Traces.lines(name)
        guard let post = lines.firstIndex(where: { $0["http"]?["path"]?.stringValue?.hasSuffix("/prompt") == true && $0["http"]?["method"] == "POST" }),
            let graph = lines[post]["http"]?["request"]?["prompt"], let id = lines[post]["http"]?["body"]?["prompt_id"]?.stringValue
        else { throw CocoaError(.fileReadCorruptFile) }
        var shapes: [String] = []
        for line in lines[(post + 1)...] {
            if let binary = line["binary"] {
                shapes.append("binary:\(binary["event"]?.numberValue?.int ?? -1)")
            } else if let message = line["ws"] {
                shapes.append(shape(message))
                if message["type"] == "executing", message["data"]?["node"] == .null, message["data"]?["prompt_id"]?.stringValue == id { break }
            }
        }
        return (graph, shapes)
    }

    /// The graph with other seeds and one step: it warms the cache without running long.
    static func reseeded(_ graph: JSONValue) -> JSONValue {
        guard case .object(var nodes) = graph else { return graph }
        for (id, node) in nodes {
            guard case .object(var object) = node, case .object(var inputs)? = object["inputs"] else { continue }
            for key in ["seed", "noise_seed"] where inputs[key] != nil { inputs[key] = .int(123_456) }
            if inputs["steps"] != nil { inputs["steps"] = 1 }  // only the loaders and encoders need warming
            object["inputs"] = .object(inputs)
            nodes[id] = .object(object)
        }
        return .object(nodes)
    }

    /// Every recording, answered as 0.3.64 (where it was made) and as 0.38 (whose messages for
    /// these graphs are the same; its extra broadcasts come before the prompt's).
    @Test(arguments: cases, ComfyUIProfile.allCases)
    func matchesTheRecording(_ testCase: Case, _ profile: ComfyUIProfile) async throws {
        let (graph, expected) = try Self.recorded(testCase.trace)
        let warmID = UUID().uuidString.lowercased()
        let recordedID = UUID().uuidString.lowercased()
        let fixture = try SimulatorFixture(profile: profile) { options in
            options.instant()
            options.previews = testCase.previews
        }
        let listener = try await fixture.listen(clientID: "fidelity")
        let workflow = try Workflow(json: graph)
        switch testCase.warmUp {
        case .none: break
        case .same, .otherSeed:
            let warm = testCase.warmUp == .same ? workflow : try Workflow(json: Self.reseeded(graph))
            _ = try await fixture.api.submit(warm, promptID: warmID, clientID: "fidelity")
            _ = await listener.until(end: warmID)
        }
        if let step = testCase.interruptAfterStep {
            // The sampler waits after that step until the interrupt lands, however loaded the machine
            // (the recording's steps took seconds; a fixed short step time raced the POST).
            _ = try await fixture.post("/sim/hold", ["at_step": .int(step)])
        }
        _ = try await fixture.api.submit(workflow, promptID: recordedID, clientID: "fidelity")
        let api = fixture.api
        let interruptAt = testCase.interruptAfterStep
        let messages = await listener.until(end: recordedID) { message in
            if let interruptAt, message["type"] == "progress", message["data"]?["value"]?.numberValue?.int == interruptAt {
                try? await api.interrupt(recordedID)
            }
        }
        // Each `until` resumes where the last one stopped; only the connect status (and 0.38's
        // asset broadcast) comes before.
        let actual = messages.map(shape).filter { $0 != "status{sid,status} sid" && !$0.hasPrefix("assets.") }
        #expect(expected.count >= 9, "the recording's sequence was not found")
        let mismatch = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(actual == expected, "\(testCase.trace): first difference at message \(mismatch ?? min(actual.count, expected.count))")
        listener.close()
    }

    /// The six rejected POSTs of validation-error.jsonl: the same error types, node by node
    /// (0.38 names an unknown class `missing_node_type` where 0.3.64 said `invalid_prompt`).
    @Test(arguments: ComfyUIProfile.allCases)
    func validationErrorsMatchTheRecording(_ profile: ComfyUIProfile) async throws {
        let fixture = try SimulatorFixture(profile: profile) { options in
            options.instant()
            options.models = ["random_sd15.safetensors"]
        }
        let posts = try Traces.lines("validation-error.jsonl").compactMap { $0["http"] }.filter { $0["method"] == "POST" }
        #expect(posts.count == 6)
        for post in posts {
            let recorded = post["body"] ?? .null
            let ours = try await fixture.post("/prompt", post["request"] ?? [:])
            if profile == .v0_38, recorded["error"]?["type"] == "invalid_prompt" {
                #expect(ours["error"]?["type"] == "missing_node_type", "\(post["tag"]?.stringValue ?? "")")
                #expect(ours["error"]?["extra_info"]?["class_type"]?.stringValue != nil)
                continue
            }
            #expect(ours["error"]?["type"] == recorded["error"]?["type"], "\(post["tag"]?.stringValue ?? "")")
            #expect(ours["error"]?["message"] == recorded["error"]?["message"], "\(post["tag"]?.stringValue ?? "")")
            func kinds(_ body: JSONValue) -> [String] {
                (body["node_errors"]?.objectValue ?? JSONObject()).flatMap { id, entry in
                    (entry["errors"]?.arrayValue ?? []).map { "\(id):\($0["type"]?.stringValue ?? ""):\($0["extra_info"]?["input_name"]?.stringValue ?? "")" }
                }.sorted()
            }
            #expect(kinds(ours) == kinds(recorded), "\(post["tag"]?.stringValue ?? "")")
        }
    }
}
