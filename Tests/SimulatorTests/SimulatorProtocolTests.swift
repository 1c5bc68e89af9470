import ComfyClient
import ComfyCore
import Foundation
import Simulator
import TestSupport
import Testing
import Workloads

@Suite struct SimulatorProtocolTests {
    static func txt2img(seed: Int = 1, steps: Int = 4, prefix: String = "sim") -> Workflow {
        Workloads.txt2img(seed: seed, steps: steps, height: 48, prefix: prefix)
    }

    @Test func aPromptRunsWithComfyUIsMessagesAndOutputs() async throws {
        let fixture = try SimulatorFixture()
        let listener = try await fixture.listen(clientID: "client-1")
        _ = try await fixture.api.submit(Self.txt2img(), promptID: "p1", clientID: "client-1")
        let messages = await listener.until(end: "p1")
        let types = messages.compactMap { $0["type"]?.stringValue }
        #expect(types.first == "status")
        #expect(messages.first?["data"]?["sid"] == "client-1")
        #expect(types.filter { $0 == "progress" }.count == 4)
        #expect(Array(types.suffix(3)) == ["execution_success", "status", "executing"])
        #expect(types.filter { $0 == "executing" }.count == 8)  // 7 nodes and the end

        let record = try #require(try await fixture.api.history("p1"))
        guard case .success(let outputs)? = record.outcome else {
            Issue.record("no success: \(String(describing: record.outcome))")
            return
        }
        #expect(outputs == [OutputFile(filename: "sim_00001_.png")])
        let destination = TestFolder.root.appendingPathComponent("sim-\(UUID()).png")
        defer { try? FileManager.default.removeItem(at: destination) }
        _ = try await fixture.api.download(outputs[0], to: destination)
        let png = try Data(contentsOf: destination)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(png[16..<24]) == [0, 0, 0, 64, 0, 0, 0, 48])  // IHDR width, height from the latent
        listener.close()
    }

    @Test func anIdenticalPromptIsServedFromTheCache() async throws {
        let fixture = try SimulatorFixture()
        let listener = try await fixture.listen(clientID: "c")
        _ = try await fixture.api.submit(Self.txt2img(), promptID: "first", clientID: "c")
        _ = await listener.until(end: "first")
        _ = try await fixture.api.submit(Self.txt2img(), promptID: "second", clientID: "c")
        let cached = await listener.until(end: "second").map(shape)
        #expect(cached.contains("execution_cached{nodes,prompt_id,timestamp} 7 nodes"))
        #expect(!cached.contains { $0.hasPrefix("progress{") })
        // A new seed reruns the sampler and what follows it, not the loader and encoders.
        _ = try await fixture.api.submit(Self.txt2img(seed: 2), promptID: "third", clientID: "c")
        let partly = await listener.until(end: "third").map(shape)
        #expect(partly.contains("execution_cached{nodes,prompt_id,timestamp} 4 nodes"))
        #expect(partly.filter { $0.hasPrefix("progress{") }.count == 4)
        listener.close()
    }

    @Test(arguments: [
        (#"{"1": {"class_type": "Nope", "inputs": {}}}"#, "invalid_prompt", "Cannot execute because node Nope does not exist."),
        (#"{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 8, "height": 8, "batch_size": 1}}}"#, "prompt_no_outputs", "Prompt has no outputs"),
        (#"{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}}, "2": {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0], "vae": ["1", 2]}}, "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}"#, "prompt_outputs_failed_validation", "Prompt outputs failed validation"),
    ])
    func validationAnswers400InComfyUIsShape(graph: String, type: String, message: String) async throws {
        let fixture = try SimulatorFixture()
        let answer = try await fixture.post("/prompt", ["prompt": try JSONValue(parsing: graph)])
        #expect(answer["error"]?["type"]?.stringValue == type)
        #expect(answer["error"]?["message"]?.stringValue == message)
        if type == "prompt_outputs_failed_validation" {
            let error = answer["node_errors"]?["2"]?["errors"]?.arrayValue?.first
            #expect(error?["type"] == "return_type_mismatch")
            #expect(error?["details"] == "samples, received_type(MODEL) mismatch input_type(LATENT)")
        }
        #expect(try await fixture.post("/prompt", [:])["error"]?["type"] == "no_prompt")
    }

    @Test func interruptFailureAndQueueControl() async throws {
        let fixture = try SimulatorFixture()
        let listener = try await fixture.listen(clientID: "c")
        // Interrupt at the second step (held there until the interrupt lands).
        _ = try await fixture.post("/sim/hold", ["at_step": 2])
        _ = try await fixture.api.submit(Self.txt2img(steps: 50), promptID: "slow", clientID: "c")
        let api = fixture.api
        let interrupted = await listener.until(end: "slow") { message in
            if message["type"] == "progress", message["data"]?["value"] == 2 { try? await api.interrupt("slow") }
        }
        #expect(interrupted.contains { $0["type"] == "execution_interrupted" })
        guard case .interrupted? = try await fixture.api.history("slow")?.outcome else {
            Issue.record("history should record the interrupt")
            return
        }
        // An injected node failure.
        _ = try await fixture.post("/sim/fail-node", ["class_type": "VAEDecode", "exception_type": "OutOfMemoryError", "message": "simulated OOM"])
        _ = try await fixture.api.submit(Self.txt2img(seed: 5), promptID: "oom", clientID: "c")
        let failed = await listener.until(end: "oom")
        let error = try #require(failed.first { $0["type"] == "execution_error" })
        #expect(error["data"]?["node_type"] == "VAEDecode")
        #expect(error["data"]?["exception_type"] == "OutOfMemoryError")
        // Submits answering 500.
        _ = try await fixture.post("/sim/fail-submit", ["count": 1])
        await #expect(throws: ComfyAPIError.self) { try await fixture.api.submit(Self.txt2img(), promptID: "x", clientID: "c") }
        _ = try await fixture.api.submit(Self.txt2img(seed: 9), promptID: "after", clientID: "c")
        _ = await listener.until(end: "after")
        let stats = try await fixture.post("/sim/stats")
        #expect(stats["completed"] == 1)
        #expect(stats["failed"] == 2)
        listener.close()
    }

    @Test func restartLosesQueueAndHistoryAndDropsSockets() async throws {
        let fixture = try SimulatorFixture()
        let listener = try await fixture.listen(clientID: "c")
        _ = try await fixture.api.submit(Self.txt2img(), promptID: "done-before", clientID: "c")
        _ = await listener.until(end: "done-before")
        #expect(try await fixture.api.history("done-before") != nil)
        _ = try await fixture.post("/sim/restart")
        #expect(try await fixture.api.history("done-before") == nil)
        let queue = try await fixture.api.queue()
        #expect(queue.running.isEmpty && queue.pending.isEmpty)
        var iterator = listener.socket.messages.makeAsyncIterator()
        while (try? await iterator.next()) ?? nil != nil {}  // the socket was dropped: the stream ends
    }

    @Test func reconnectingClientGetsStatusAndTheRunningNode() async throws {
        let fixture = try SimulatorFixture { options in
            options.instant()
            options.stepTime = 0.05
        }
        let first = try await fixture.listen(clientID: "same")
        // The sampler waits at step 2 until released: the prompt is still running whenever the
        // second socket gets there, however loaded the machine is.
        _ = try await fixture.post("/sim/hold", ["at_step": 2, "seconds": 120])
        _ = try await fixture.api.submit(Self.txt2img(steps: 4), promptID: "long", clientID: "same")
        // Sampling has begun once a progress message arrives (no fixed sleep).
        let sampling = await first.first { $0["type"] == "progress" }
        #expect(sampling != nil)
        first.socket.abort()
        // The first socket's cleanup clears whatever is registered under its clientId, as
        // ComfyUI's does: reconnect only once the server has let it go.
        _ = try await eventually("the simulator to drop the first socket", describe: { "\((try? await fixture.post("/sim/stats")) ?? .null)" }) {
            try await fixture.post("/sim/stats")["clients"] == 0 ? true : nil
        }
        let second = try await fixture.listen(clientID: "same")
        // The status with the socket's sid, then the running node replayed without a prompt id.
        let opening = await second.next(2)
        #expect(opening.map(shape) == ["status{sid,status} sid", "executing{node} replay"], "\(opening.map { $0.serialized() }); \(second.ending)")
        _ = try await fixture.post("/sim/release")
        let rest = await second.until(end: "long")
        // (Seen once in CI under load: nothing at all after the release for 20 s; the server's
        // queue and counters say where the prompt was, should it happen again.)
        let seen = rest.last.map(shape) == "executing{node,prompt_id} end" ? JSONValue.null : ((try? await fixture.post("/sim/stats")) ?? .null)
        let queue = seen == .null ? "" : ((try? await fixture.api.queue()).map { "running \($0.running.count), pending \($0.pending.count)" } ?? "?")
        #expect(rest.last.map(shape) == "executing{node,prompt_id} end", "\(rest.map(shape)); \(second.ending); server: \(seen.serialized()) \(queue)")
        second.close()
    }
}
