import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing
import WebSocket
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// UI-format workflows and pre-flight as a user meets them: `comfyq convert`, `validate`, `add`
/// and `run` as real processes against `comfyq simulate` servers with different checkpoints.
@Suite(.serialized) struct PreflightCommandTests {
    static let fixtures = Paths.packageRoot.appendingPathComponent("Tests/Fixtures/ui-api")
    static let exampleJob = Paths.packageRoot.appendingPathComponent("jobs/ui-workflow.json").path

    /// A simulator whose checkpoints are `models`, in its own process.
    final class Server: @unchecked Sendable {
        let process: Process
        let url: String

        init(models: [String], output: String) async throws {
            process = Process()
            process.executableURL = Paths.binary
            process.environment = Hermetic.childEnvironment()
            process.arguments = [
                "simulate", "--port", "0", "--output", output, "--step-time", "5ms", "--load-time", "0", "--node-time", "0", "--warm-up", "0",
                "--models", models.joined(separator: ","),
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let first = try await firstLine(of: pipe.fileHandleForReading)
            url = String(first.split(separator: " ").last ?? "")
        }

        deinit { kill(process.processIdentifier, SIGKILL) }

        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        /// How many prompts it has run.
        func completed() async throws -> Int {
            var request = URLRequest(url: URL(string: url + "/sim/stats")!)
            request.httpMethod = "POST"
            let (data, _) = try await URLSession(configuration: .ephemeral).data(for: request)
            return try JSONValue(parsing: Array(data))["completed"]?.numberValue?.int ?? -1
        }
    }

    /// A folder with its own state (the object_info cache), config and queue.
    struct Folder {
        let root = TestFolder.root.appendingPathComponent("comfyq-preflight-\(UUID())")
        var db: String { path("queue.db") }
        var environment: [String: String] { ["XDG_STATE_HOME": path("state"), "XDG_CONFIG_HOME": path("config"), "COMFYQ_DB": db] }

        init() throws { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) }
        func path(_ name: String) -> String { root.appendingPathComponent(name).path }
        func remove() { try? FileManager.default.removeItem(at: root) }

        func job(_ body: String, name: String = "night.json") throws -> String {
            try body.write(toFile: path(name), atomically: true, encoding: .utf8)
            return path(name)
        }

        func run(_ arguments: [String]) async throws -> CapturedRun { try await runBinary(arguments, environment: environment) }

        func jobs() async throws -> [JSONValue] {
            let status = try await run(["status", "--json"])
            return try JSONValue(parsing: status.stdout)["jobs"]?.arrayValue ?? []
        }
    }

    static func txt2img(_ extra: String) -> String {
        """
        {name: "night", workflow: "\(RunCommandTests.workflow)", output: {folder: "out", name: "{job}_{index}"},
         set: {"Empty Latent Image.width": 64, "Empty Latent Image.height": 64}, \(extra)}
        """
    }

    @Test func aJobNoServerCanRunIsRefusedAndAQueuedOneIsHeldWhileTheRestRuns() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try await Server(models: ["v1-5-pruned-emaonly.safetensors", "sdxl.safetensors"], output: folder.path("sim"))
        let job = try folder.job(
            Self.txt2img(
                #"""
                zip: {"KSampler.sampler_name": ["eulr", "eulr", "eulr", "euler"], "KSampler.steps": [20000, 4, 4, 4],
                      "Load Checkpoint.ckpt_name": ["v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly.safetensors", "v1-5-prunedemaonly.safetensors", "v1-5-pruned-emaonly.safetensors"]}
                """#))
        let expected = [
            "Error: \(job): 'eulr' is not a sampler on \(server.url) (node 3 KSampler.sampler_name); did you mean 'euler'? (3 items)",
            "Error: \(job): node 3 KSampler.steps = 20000 is out of range on \(server.url): it must be at least 1 and at most 10000 (1 item)",
            "Error: \(job): 'v1-5-prunedemaonly.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name); did you mean 'v1-5-pruned-emaonly.safetensors'? (1 item)",
        ]
        // `run JOB` checks the file before it queues it, as `add` does: the bad job never joins the
        // queue, so it cannot stand in front of the next one.
        for command in ["validate", "add", "run"] {
            let refused = try await folder.run([command, job, "--server", server.url])
            #expect(refused.status == .dataError, "\(command): \(refused.stdout)\(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").map(String.init) == expected, "\(command)")
        }
        #expect(try await folder.jobs().isEmpty, "nothing queued")
        #expect(try await folder.run(["run", "--server", server.url]).status == .success, "an empty queue runs")

        // --no-preflight adds it, as a job whose checkpoint was deleted after it was added would
        // stand in the queue, with a good job behind it. The run holds what no server can run,
        // runs everything else, says what is held and ends with exit 2.
        #expect(try await folder.run(["add", job, "--no-preflight", "--server", server.url]).status == .success)
        let good = try folder.job(Self.txt2img("seeds: {start: 1, count: 2}, set: {\"KSampler.steps\": 2}").replacingOccurrences(of: "\"night\"", with: "\"good\""), name: "good.json")
        #expect(try await folder.run(["add", good, "--server", server.url]).status == .success)
        let run = try await folder.run(["run", "--server", server.url])
        #expect(run.status == .held, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("night: 3 items held, no server can run them: 'eulr' is not a sampler on \(server.url)"), "\(run.stdout)")
        #expect(run.stderr.contains("finished: 3 done, 0 failed, 3 held (no server can run them)"), "\(run.stderr)")
        #expect(run.stderr.contains("held: night (#1): 3 items: "), "\(run.stderr)")
        #expect(try await server.completed() == 3)
        var jobs = try await folder.jobs()
        #expect(jobs.first?["counts"]?["held"] == 3 && jobs.first?["counts"]?["done"] == 1 && jobs.last?["counts"]?["done"] == 2)
        #expect(jobs.first?["held"]?["items"] == 3 && jobs.first?["held"]?["reason"]?.stringValue?.contains("on \(server.url)") == true)
        let status = try await folder.run(["status"])
        #expect(status.stdout.contains("  held: 3 items no server can run: "), "\(status.stdout)")
        // serve says it on the overview and on the job's page.
        let port = try Ports.outsideEphemeralRange(1)
        let serve = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"], environment: folder.environment)
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let overview = try await eventually("comfyq serve to answer") { try? await ServeCommandTests.Served.get("http://127.0.0.1:\(port)/") }
        #expect(overview.body.contains("<b>night</b>: 3 items held, no server can run them: "), "\(overview.body)")
        let page = try await ServeCommandTests.Served.get("http://127.0.0.1:\(port)/jobs/night")
        #expect(page.body.contains("3 items held, no server can run them: ") && page.body.contains("action=\"/jobs/night/retry\""))
        // A run finds them held still, and says so without running anything.
        let again = try await folder.run(["run", "--server", server.url])
        #expect(again.status == .held && again.stderr.contains("finished: 0 done, 0 failed, 3 held"), "\(again.stderr)")
        #expect(try await server.completed() == 3)

        // retry puts them back in the queue.
        #expect(try await folder.run(["retry", "night"]).status == .success)
        jobs = try await folder.jobs()
        #expect(jobs.first?["counts"]?["pending"] == 3 && jobs.first?["held"] == .null)
        // A run that skips it submits them, and the server rejects what pre-flight would have.
        let unchecked = try await folder.run(["run", "--server", server.url, "--no-preflight"])
        #expect(unchecked.status == .failure)
        #expect(try await folder.jobs().first?["counts"]?["failed"] == 3)
        #expect(try await folder.jobs().first?["counts"]?["done"] == 1)
        #expect(try await server.completed() == 3, "rejected at submission, not run")
    }

    @Test func aModelOnlySomeServersHaveGoesOnlyToThem() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let a = try await Server(models: ["common.safetensors", "only-a.safetensors"], output: folder.path("sim-a"))
        let b = try await Server(models: ["common.safetensors", "only-b.safetensors"], output: folder.path("sim-b"))
        let job = try folder.job(
            Self.txt2img(
                #"""
                set: {"KSampler.steps": 2}, seeds: {start: 1, count: 3},
                matrix: {"Load Checkpoint.ckpt_name": ["only-b.safetensors", "only-a.safetensors"]}
                """#))
        let valid = try await folder.run(["validate", job, "--server", a.url, "--server", b.url])
        #expect(valid.status == .success, "\(valid.stderr)")
        #expect(
            valid.stdout.split(separator: "\n").map(String.init) == [
                "note: \(job): 'only-b.safetensors' is not a checkpoint on \(a.url) (node 4 Load Checkpoint.ckpt_name): 3 items go only to \(b.url) instead",
                "note: \(job): 'only-a.safetensors' is not a checkpoint on \(b.url) (node 4 Load Checkpoint.ckpt_name): 3 items go only to \(a.url) instead",
                "pre-flight: 6 items checked against \(a.url), \(b.url)",
                "\(job): ok, 6 items (night)",
            ])
        let added = try await folder.run(["add", job, "--server", a.url, "--server", b.url])
        #expect(added.status == .success, "\(added.stderr)")

        let run = try await folder.run(["run", "--server", a.url, "--server", b.url, "--concurrency", "1"])
        #expect(run.status == .success, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("pre-flight: 6 pending items checked against \(a.url), \(b.url)"), "\(run.stdout)")
        #expect(try await folder.jobs().first?["counts"]?["done"] == 6)
        // Each server ran exactly the items of its own model; none was sent where it would fail.
        #expect(try await a.completed() == 3)
        #expect(try await b.completed() == 3)
    }

    @Test func validateSaysWhenNoServerAnswered() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let job = try folder.job(Self.txt2img(#"seeds: {start: 1, count: 2}"#))
        let valid = try await folder.run(["validate", job, "--server", "http://127.0.0.1:9"])
        #expect(valid.status == .success, "\(valid.stderr)")
        #expect(valid.stdout == "pre-flight skipped: no server answered (http://127.0.0.1:9: connection refused)\n\(job): ok, 2 items (night)\n")
        let unchecked = try await folder.run(["validate", job, "--server", "http://127.0.0.1:9", "--no-preflight"])
        #expect(unchecked.stdout == "\(job): ok, 2 items (night)\n")
    }

    /// Servers behind a proxy: `--header` goes with every request for their definitions.
    @Test func headersReachTheServerAndABadOneIsAUsageError() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let listener = try await HTTPListener.start(status: 401)
        defer { listener.stop() }
        let job = try folder.job(Self.txt2img(#"seeds: {start: 1, count: 2}"#))
        let valid = try await folder.run(["validate", job, "--server", listener.url, "--header", "Authorization: Bearer night-token"])
        #expect(valid.status == .success, "\(valid.stderr)")
        #expect(valid.stdout.hasPrefix("pre-flight skipped: no server answered (\(listener.url): "), "\(valid.stdout)")
        let requests = try await listener.requests()
        #expect(!requests.isEmpty)
        for request in requests {
            #expect((request["headers"] as? [String: String])?["Authorization"] == "Bearer night-token", "\(request)")
        }
        let bad = try await folder.run(["validate", job, "--server", listener.url, "--header", "no-colon"])
        #expect(bad.status == .usage)
        #expect(bad.stderr.hasPrefix("Error: --header must be name:value, got 'no-colon'\n"), "\(bad.stderr)")
    }

    // MARK: - UI-format workflows

    @Test(arguments: ["edge_reroute", "edge_primitive_seed", "edge_subgraph_promoted_widget", "sdxl_simple_example"])
    func convertOfflineGivesTheFrontendsAPIForm(name: String) async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let ui = Self.fixtures.appendingPathComponent("\(name).ui.json").path
        let objectInfo = Self.fixtures.appendingPathComponent("object_info.json").path
        let printed = try await folder.run(["convert", ui, "--object-info", objectInfo])
        #expect(printed.status == .success, "\(printed.stderr)")
        let expected = try JSONValue(parsing: String(contentsOfFile: Self.fixtures.appendingPathComponent("\(name).api.json").path, encoding: .utf8))
        let converted = try JSONValue(parsing: printed.stdout)
        // Every node's class_type and inputs (titles aside: the frontend's _meta is not compared).
        #expect(Self.graph(converted) == Self.graph(expected))

        let out = folder.path("out.json")
        let written = try await folder.run(["convert", ui, "--object-info", objectInfo, "-o", out])
        #expect(written.status == .success && written.stdout.isEmpty)
        #expect(written.stderr.hasPrefix("wrote \(out) ("), "\(written.stderr)")
        #expect(Self.graph(try JSONValue(parsing: String(contentsOfFile: out, encoding: .utf8))) == Self.graph(expected))
    }

    /// Each node's class_type and inputs, by id (orders aside).
    static func graph(_ json: JSONValue) -> [String: [String: JSONValue]] {
        var nodes: [String: [String: JSONValue]] = [:]
        for (id, node) in json.objectValue ?? [:] {
            var inputs: [String: JSONValue] = ["class_type": node["class_type"] ?? .null]
            for (name, value) in node["inputs"]?.objectValue ?? [:] { inputs["input " + name] = value }
            nodes[id] = inputs
        }
        return nodes
    }

    @Test func convertNamesNodeTypesTheServerLacksAndRefusesAPIFiles() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try await Server(models: ["v1-5-pruned-emaonly.safetensors"], output: folder.path("sim"))
        // The example workflow converts with the simulator's definitions…
        let ui = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.ui.json").path
        let converted = try await folder.run(["convert", ui, "--server", server.url])
        #expect(converted.status == .success, "\(converted.stderr)")
        #expect(try JSONValue(parsing: converted.stdout)["3"]?["inputs"]?["seed"] == 123_456_789)
        // …a custom node it lacks is one line with its id and title, exit 65.
        let json: JSONValue
        let original = try JSONValue(parsing: String(contentsOfFile: ui, encoding: .utf8))
        var nodes = original["nodes"]!.arrayValue!
        let index = nodes.firstIndex { $0["type"] == "VAEDecode" }!
        var node = nodes[index].objectValue!
        node["type"] = "FaceDetailerPipe"
        node["title"] = "Fix faces"
        nodes[index] = .object(node)
        var object = original.objectValue!
        object["nodes"] = .array(nodes)
        json = .object(object)
        let custom = try folder.job(json.serialized(), name: "custom.ui.json")
        let refused = try await folder.run(["convert", custom, "--server", server.url])
        #expect(refused.status == .dataError)
        let id = node["id"]!.serialized()
        #expect(refused.stderr.hasPrefix("Error: \(custom): node \(id) \"Fix faces\": node type FaceDetailerPipe is not on the server"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        // An API-format file needs no conversion.
        let api = try await folder.run(["convert", RunCommandTests.workflow, "--server", server.url])
        #expect(api.status == .dataError)
        #expect(api.stderr == "Error: \(RunCommandTests.workflow): already in the API format (a job can use it as it is)\n")
    }

    @Test func aJobWithAUIWorkflowIsConvertedAtAddRunsAndItsSidecarsRecordBothFiles() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try await Server(models: ["v1-5-pruned-emaonly-fp16.safetensors"], output: folder.path("sim"))
        // Without a server or object_info, the job cannot be converted: one line saying what to give.
        let alone = try await folder.run(["validate", Self.exampleJob, "--server", "http://127.0.0.1:9"])
        #expect(alone.status == .dataError)
        #expect(alone.stderr.contains("txt2img.ui.json is a UI-format workflow (as ComfyUI's Save writes it); converting it needs a server's node definitions"))

        let valid = try await folder.run(["validate", Self.exampleJob, "--server", server.url])
        #expect(valid.status == .success, "\(valid.stderr)")
        #expect(valid.stdout.contains("ui-workflow.json: ok, 4 items (ui-workflow) (converted from the UI format with the node definitions of \(server.url) (ComfyUI"))

        // The converted graph is what is stored: the run needs no conversion, and the sidecar
        // names the UI file with its SHA-1 beside the submitted graph's.
        let job = try folder.job(
            """
            {name: "ui", workflow: "\(Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.ui.json").path)",
             set: {"KSampler.steps": 2, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             seeds: {start: 1, count: 2}, output: {folder: "out", name: "{job}_{index}"}}
            """, name: "ui.json")
        #expect(try await folder.run(["add", job, "--server", server.url]).status == .success)
        let run = try await folder.run(["run", "--server", server.url])
        #expect(run.status == .success, "\(run.stdout)\(run.stderr)")
        let sidecar = try JSONValue(parsing: String(contentsOfFile: folder.path("out/ui_0.json"), encoding: .utf8))
        let ui = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.ui.json").path
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: ui)))
        #expect(sidecar["ui_workflow"]?["sha1"] == .string(SHA1.hex(bytes)), "\(sidecar.serialized())")
        #expect(sidecar["ui_workflow"]?["path"]?.stringValue?.hasSuffix("txt2img.ui.json") == true)
        #expect(sidecar["workflow_sha1"]?.stringValue?.count == 40)

        // `run JOB` converts too, with the definitions of the servers it runs on.
        let direct = try folder.job(
            try String(contentsOfFile: job, encoding: .utf8).replacingOccurrences(of: #"name: "ui""#, with: #"name: "direct""#), name: "direct.json")
        let ran = try await folder.run(["run", direct, "--server", server.url])
        #expect(ran.status == .success, "\(ran.stdout)\(ran.stderr)")
        #expect(ran.stderr.contains("added job direct: 2 items"), "\(ran.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.path("out/direct_1.png")))
    }

    @Test func definitionsAreCachedByVersionAndUsedWhenTheServerIsDown() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let server = try await Server(models: ["v1-5-pruned-emaonly-fp16.safetensors"], output: folder.path("sim"))
        let first = try await folder.run(["validate", Self.exampleJob, "--server", server.url])
        #expect(first.status == .success, "\(first.stderr)")
        let port = URL(string: server.url)!.port!
        let cached = folder.path("state/comfyq/object_info/127.0.0.1_\(port)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cached).filter { $0.hasSuffix(".json") }.count == 1)

        server.stop()
        let offline = try await folder.run(["validate", Self.exampleJob, "--server", server.url])
        #expect(offline.status == .success, "\(offline.stderr)")
        #expect(offline.stdout.contains("the /object_info of \(server.url) cached 20"), "\(offline.stdout)")
        #expect(offline.stdout.contains("pre-flight: 4 items checked against \(server.url) (cached: it did not answer)"), "\(offline.stdout)")

        // A checkpoint the stale cache does not list (copied in since, perhaps) is said, not refused.
        let job = try folder.job(
            """
            {name: "later", workflow: "\(RunCommandTests.workflow)", output: {folder: "out"},
             set: {"Load Checkpoint.ckpt_name": "copied-in-since.safetensors"}}
            """, name: "later.json")
        for command in ["validate", "add"] {
            let stale = try await folder.run([command, job, "--server", server.url])
            #expect(stale.status == .success, "\(command): \(stale.stdout)\(stale.stderr)")
            #expect(
                (stale.stdout + stale.stderr).contains(
                    "'copied-in-since.safetensors' is not a checkpoint on \(server.url) (node 4 Load Checkpoint.ckpt_name) (1 item); not refused: by the /object_info of \(server.url) cached 20"),
                "\(command): \(stale.stdout)\(stale.stderr)")
        }
        #expect(try await folder.jobs().map { $0["name"] } == ["later"])
    }

    @Test func aJobCanCarryASavedObjectInfo() async throws {
        let folder = try Folder()
        defer { folder.remove() }
        let job = try folder.job(
            """
            {workflow: "\(Self.fixtures.appendingPathComponent("edge_reroute.ui.json").path)",
             object_info: "\(Self.fixtures.appendingPathComponent("object_info.json").path)", seeds: {start: 1, count: 3}}
            """)
        let valid = try await folder.run(["validate", job, "--server", "http://127.0.0.1:9", "--no-preflight"])
        #expect(valid.status == .success, "\(valid.stderr)")
        #expect(valid.stdout.contains("ok, 3 items (night) (converted from the UI format with the node definitions of "), "\(valid.stdout)")
        let broken = try folder.job(#"{workflow: "w.json", object_info: "nothing.json"}"#, name: "broken.json")
        let refused = try await folder.run(["validate", broken, "--no-preflight"])
        #expect(refused.status == .dataError)
        #expect(refused.stderr.contains("broken.json: object_info: "), "\(refused.stderr)")
    }
}
