import ComfyClient
import ComfyCore
import Foundation
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A private session per test server: a shared one can keep a pooled connection to an earlier
/// test's server whose port the system has since handed to this one.
func isolatedSession() -> URLSession { URLSession(configuration: .ephemeral) }

/// The API for a local test server.
func localAPI(_ port: Int, timeout: TimeInterval = 5) -> ComfyAPI {
    ComfyAPI(baseURL: URL(string: "http://127.0.0.1:\(port)")!, session: isolatedSession(), timeout: timeout)
}
import Testing

/// The API client against an independent ComfyUI look-alike (Python, standard library only).
@Suite struct ComfyAPITests {
    static let script = Support.path("Support/fake_comfyui.py", besides: #filePath)

    static func withServer(_ arguments: [String] = [], _ body: (ComfyAPI) async throws -> Void) async throws {
        let server = try await PythonServer.start(script: script, arguments: arguments)
        defer { server.stop() }
        try await body(localAPI(server.port))
    }

    static let workflow = Workflow([
        WorkflowNode(id: "4", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "sd15.safetensors"]),
        WorkflowNode(id: "9", classType: "SaveImage", inputs: ["images": ["4", 0]]),
    ])

    @Test func submitTrackAndCollect() async throws {
        try await Self.withServer { api in
            let submitted = try await api.submit(Self.workflow, promptID: "p-1", clientID: "c-1")
            #expect(submitted.promptID == "p-1")
            #expect(try await api.queue().pending == ["p-1"])
            #expect(try await api.queueRemaining() == 1)
            try await api.delete(["p-1"])
            #expect(try await api.queue().contains("p-1") == false)
            try await api.interrupt("p-1")
            try await api.interrupt(nil)

            let record = try #require(try await api.history("p-1"))
            #expect(record.outcome == .success(outputs: [OutputFile(filename: "out_00001_.png")]))
            #expect(try await api.history("unknown") == nil)

            let destination = TestFolder.root.appendingPathComponent("comfyq-\(UUID()).png")
            defer { try? FileManager.default.removeItem(at: destination) }
            let size = try await api.download(OutputFile(filename: "out_00001_.png"), to: destination)
            #expect(size == 2008)
            let bytes = try Data(contentsOf: destination)
            #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        }
    }

    @Test func validationErrorsNameNodeClassAndInput() async throws {
        try await Self.withServer { api in
            let bad = Workflow([
                WorkflowNode(id: "4", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "missing.safetensors"]),
                WorkflowNode(id: "9", classType: "SaveImage", inputs: ["images": ["4", 0]]),
            ])
            await #expect {
                try await api.submit(bad, promptID: "p-2", clientID: "c")
            } throws: { error in
                guard let error = error as? ComfyAPIError, case .rejected(let rejection) = error.kind else { return false }
                return rejection.description
                    == "node 4 (CheckpointLoaderSimple) input ckpt_name: Value not in list: ckpt_name: 'missing.safetensors' not in ['sd15.safetensors']"
                    && "\(error)".hasPrefix("http://127.0.0.1:")
            }
        }
    }

    /// Every 400 of 0.3.64 (the exact bodies of validation-error.jsonl) and of 0.38 (from its
    /// source): one line each, with the type, the node and the input where there is one.
    @Test(arguments: [
        (#"{"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.", "details": "Node ID '#3'", "extra_info": {}}, "node_errors": {}}"#,
         "invalid_prompt: Cannot execute because node NoSuchNode does not exist. (Node ID '#3')"),
        (#"{"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}"#,
         "prompt_no_outputs: Prompt has no outputs"),
        (#"{"error": {"type": "missing_node_type", "message": "Node 'Upscaler' not found. The custom node may not be installed.", "details": "Node ID '#12'", "extra_info": {"node_id": "12", "class_type": "UltimateSDUpscale", "node_title": "Upscaler"}}, "node_errors": {}}"#,
         "missing_node_type: Node 'Upscaler' not found. The custom node may not be installed. (node 12, class UltimateSDUpscale)"),
        (#"{"error": {"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID", "details": "P-1 is not a UUID", "extra_info": {}}, "node_errors": {}}"#,
         "invalid_prompt_id: prompt_id must be a valid UUID (P-1 is not a UUID)"),
        (#"{"error": {"type": "dependency_cycle", "message": "Dependency cycle detected", "details": "Nodes #3 → #8 → #3 depend on each other", "extra_info": {}}, "node_errors": {}}"#,
         "dependency_cycle: Dependency cycle detected (Nodes #3 → #8 → #3 depend on each other)"),
        (#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {"4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'x.safetensors' not in ['a.safetensors']", "extra_info": {"input_name": "ckpt_name"}}], "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}}}"#,
         "node 4 (CheckpointLoaderSimple) input ckpt_name: Value not in list: ckpt_name: 'x.safetensors' not in ['a.safetensors']"),
        (#"{"error": {"type": "something_new", "message": "A future check failed"}}"#, "something_new: A future check failed"),
    ])
    func rejectionsAreOneLine(_ body: String, _ line: String) throws {
        #expect(PromptRejection(json: try JSONValue(parsing: body)).description == line)
    }

    @Test func serverErrorsAreOneLine() async throws {
        try await Self.withServer { api in
            await #expect {
                try await api.submit(Self.workflow, promptID: "p", clientID: "explode")
            } throws: { error in
                guard let error = error as? ComfyAPIError else { return false }
                return error.kind == .httpStatus(500, "500 Internal Server Error")
                    && "\(error)".hasSuffix("POST /prompt answered HTTP 500: 500 Internal Server Error")
            }
            await #expect {
                try await api.download(OutputFile(filename: "nope.png"), to: URL(fileURLWithPath: "/tmp/x.png"))
            } throws: { error in (error as? ComfyAPIError)?.kind == .httpStatus(404, "") }
        }
    }

    @Test func notComfyUIIsRecognised() async throws {
        try await Self.withServer(["--not-comfyui"]) { api in
            await #expect {
                try await api.systemStats()
            } throws: { error in
                guard let error = error as? ComfyAPIError, case .notComfyUI = error.kind else { return false }
                return true
            }
        }
    }

    @Test func refusedConnectionNamesTheServer() async {
        let api = ComfyAPI(baseURL: URL(string: "http://127.0.0.1:1")!, timeout: 5)
        await #expect {
            try await api.queue()
        } throws: { error in
            "\(error)" == "http://127.0.0.1:1: connection refused (GET /queue)"
        }
    }

    @Test(arguments: [
        ("127.0.0.1:8188", "http://127.0.0.1:8188"), ("https://gpu.example.com/comfy", "https://gpu.example.com/comfy"),
    ])
    func serverURLs(text: String, expected: String) {
        #expect(ComfyAPI.serverURL(text)?.absoluteString == expected)
    }

    @Test func webSocketURLFollowsTheScheme() throws {
        let api = ComfyAPI(baseURL: URL(string: "https://gpu.example.com/comfy/")!)
        #expect(try api.webSocketURL(clientID: "abc").description == "wss://gpu.example.com/comfy/ws?clientId=abc")
        #expect(ComfyAPI.serverURL("ftp://x") == nil)
    }
}

@Suite struct DoctorTests {
    @Test func healthyServerPassesEveryCheck() async throws {
        let server = try await PythonServer.start(script: ComfyAPITests.script)
        defer { server.stop() }
        let report = await Doctor.examine(localAPI(server.port), clientID: "doctor-1")
        #expect(report.checks.map(\.name) == Doctor.checkNames)
        #expect(report.passed, "\(report.checks.filter { $0.status != .passed })")
        #expect(report.checks.first { $0.name == "version" }?.detail.hasPrefix("ComfyUI 0.3.64") == true)
        #expect(report.checks.first { $0.name == "status" }?.detail == "first message is status, sid doctor-1")
    }

    @Test func wrongAcceptIsReported() async throws {
        let server = try await PythonServer.start(script: ComfyAPITests.script, arguments: ["--wrong-accept"])
        defer { server.stop() }
        let report = await Doctor.examine(localAPI(server.port))
        let check = try #require(report.checks.first { $0.name == "websocket" })
        #expect(check.status == .failed)
        #expect(check.detail.hasPrefix("wrong Sec-WebSocket-Accept"))
        #expect(check.hint?.contains("proxy") == true)
        #expect(!report.passed)
    }

    @Test func refusedServerSkipsTheRestWithAHint() async {
        let report = await Doctor.examine(ComfyAPI(baseURL: URL(string: "http://127.0.0.1:1")!))
        #expect(report.checks.first?.status == .failed)
        #expect(report.checks.first?.hint == "is ComfyUI running, and listening on this address? (--listen)")
        #expect(report.checks.dropFirst().allSatisfy { $0.status == .skipped })
        #expect(report.checks.count == Doctor.checkNames.count)
    }

    @Test func untrustedHTTPSIsAClearErrorWithAHint() async throws {
        let pair = try await TestCertificate.generate("IP:127.0.0.1")
        let server = try await PythonServer.start(script: ComfyAPITests.script, arguments: ["--tls", pair.cert, pair.key])
        defer { server.stop() }
        let api = ComfyAPI(baseURL: URL(string: "https://127.0.0.1:\(server.port)")!, session: isolatedSession(), timeout: 5)
        let report = await Doctor.examine(api)
        #expect(report.checks[0].status == .failed)
        #expect(report.checks[0].detail.contains("SSL certificate problem"))
        #expect(report.checks[0].hint?.contains("update-ca-certificates") == true)
    }

    @Test func notComfyUIFailsTheComfyUICheck() async throws {
        let server = try await PythonServer.start(script: ComfyAPITests.script, arguments: ["--not-comfyui"])
        defer { server.stop() }
        let report = await Doctor.examine(localAPI(server.port))
        #expect(report.checks[0].status == .passed)
        #expect(report.checks[1].status == .failed)
        #expect(report.checks[1].name == "comfyui")
    }
}
