import ComfyCLI
import ComfyCore
import Foundation
import Simulator
import TestSupport
import Testing

/// From what the user has (a workflow, a picture ComfyUI saved) to a batch in one command, and
/// `comfyq inspect`, through the real binary.
@Suite(.serialized) struct OneLineTests {
    static let workflows = Paths.packageRoot.appendingPathComponent("jobs/workflows").path
    static let saver = Support.path("Support/comfy_save.py", besides: #filePath)

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func simulator(_ folder: CLIHome) throws -> Simulator {
        var options = SimulatorOptions(outputDirectory: folder.path("sim"))
        options.port = 0
        options.instant()
        return try Simulator(options: options)
    }

    /// Every address `comfyq inspect --json` lists.
    static func addresses(_ json: JSONValue) -> Set<String> {
        Set((json["nodes"]?.arrayValue ?? []).flatMap { $0["inputs"]?.arrayValue ?? [] }.compactMap { $0["address"]?.stringValue })
    }

    static func input(_ json: JSONValue, node: String, _ name: String) -> JSONValue? {
        json["nodes"]?.arrayValue?.first { $0["id"]?.stringValue == node }?["inputs"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]
    }

    // MARK: The issue's one-liner

    /// `comfyq run picture.png --seeds 3 --set KSampler.steps=2`: three items, three seeds, two
    /// steps each, on the simulator.
    @Test func aPictureRunsWithSeedsAndASetOnTheSimulator() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let picture = try await folder.picture("portrait.png")
        let run = try await runBinary(
            ["run", picture, "--seeds", "3", "--set", "KSampler.steps=2", "--output", folder.path("out"), "--simulate"], environment: folder.environment)
        #expect(run.status == .success, "\(run.stderr)")
        let status = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: folder.environment).stdout)
        let job = status["jobs"]?.arrayValue?.first
        #expect(job?["name"] == "portrait" && job?["counts"]?["done"] == 3, "\(status.serialized())")
        var seeds: Set<Int> = []
        for index in 0..<3 {
            let sidecar = try JSONValue(parsing: try String(contentsOfFile: folder.path("out/portrait_\(index).json"), encoding: .utf8))
            #expect(sidecar["parameters"]?["KSampler.steps"] == 2, "\(sidecar.serialized())")
            if let seed = sidecar["parameters"]?["3.seed"]?.numberValue?.int { seeds.insert(seed) }
        }
        #expect(seeds == [1, 2, 3])
    }

    /// Each container ComfyUI's savers write gives the graph that ran: its API `prompt` when it is
    /// there (here with 33 steps, while the UI form has 20), exactly what ran.
    @Test(arguments: ["png", "png-itxt", "png-ztxt", "webp"])
    func everyContainerGivesThePromptThatRan(_ kind: String) async throws {
        let folder = try CLIHome("comfyq-one-line")
        var prompt = try JSONValue(parsing: try String(contentsOfFile: Self.workflows + "/txt2img.json", encoding: .utf8)).objectValue ?? JSONObject()
        var sampler = prompt["3"]?.objectValue ?? JSONObject()
        var inputs = sampler["inputs"]?.objectValue ?? JSONObject()
        inputs["steps"] = 33
        sampler["inputs"] = .object(inputs)
        prompt["3"] = .object(sampler)
        let promptFile = try folder.write("prompt.json", JSONValue.object(prompt).serialized())
        let picture = try await folder.picture("saved.\(kind == "webp" ? "webp" : "png")", kind: kind, prompt: promptFile)
        let inspect = try await runBinary(["inspect", picture, "--json"], environment: folder.environment)
        #expect(inspect.status == .success, "\(inspect.stderr)")
        let json = try JSONValue(parsing: inspect.stdout)
        #expect(Self.input(json, node: "3", "steps") == 33, "\(inspect.stdout)")
        #expect(json["seed"] == "KSampler.seed" && json["outputs"] == ["9"])
    }

    /// FLAC (`SaveAudio`): Vorbis comments `prompt=` and `workflow=`.
    @Test func aFLACFileGivesItsWorkflow() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let prompt = try String(contentsOfFile: Self.workflows + "/txt2img.json", encoding: .utf8)
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
        var comments = le32(4) + Array("test".utf8) + le32(1)
        let entry = Array("prompt=".utf8) + Array(prompt.utf8)
        comments += le32(entry.count) + entry
        var flac = Array("fLaC".utf8) + [0x00, 0, 0, 34] + [UInt8](repeating: 0, count: 34)
        flac += [0x84, UInt8(comments.count >> 16), UInt8((comments.count >> 8) & 0xFF), UInt8(comments.count & 0xFF)] + comments
        let path = folder.path("voice.flac")
        try Data(flac).write(to: URL(fileURLWithPath: path))
        let inspect = try await runBinary(["inspect", path, "--json"], environment: folder.environment)
        #expect(inspect.status == .success, "\(inspect.stderr)")
        #expect(Self.addresses(try JSONValue(parsing: inspect.stdout)).contains("Positive prompt.text"), "\(inspect.stdout)")
    }

    /// A picture with only the page's graph (no API prompt) is converted, with a server's node
    /// definitions, as ComfyUI's page would; `inspect --server` adds types and ranges.
    @Test func aPictureWithOnlyItsUIWorkflowIsConverted() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let server = try Self.simulator(folder)
        defer { server.stop() }
        let picture = try await folder.picture("ui-only.png", prompt: nil)
        let inspect = try await runBinary(["inspect", picture, "--server", server.url, "--json"], environment: folder.environment)
        #expect(inspect.status == .success, "\(inspect.stderr)")
        let json = try JSONValue(parsing: inspect.stdout)
        #expect(json["converted_from_ui_format"] != nil, "\(inspect.stdout)")
        let steps = json["nodes"]?.arrayValue?.flatMap { $0["inputs"]?.arrayValue ?? [] }.first { $0["address"] == "KSampler.steps" }
        #expect(steps?["type"] == "INT 1…10000", "\(steps?.serialized() ?? "no KSampler.steps")")
        let text = try await runBinary(["inspect", picture, "--server", server.url], environment: folder.environment)
        #expect(text.stdout.contains("KSampler.sampler_name    one of "), "\(text.stdout)")
    }

    /// With a server, `inspect` marks the nodes it lacks (and `--json` says `on_server: false`).
    @Test func inspectMarksTheNodesTheServerLacks() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let server = try Self.simulator(folder)
        defer { server.stop() }
        let text = try String(contentsOfFile: Self.workflows + "/txt2img.json", encoding: .utf8)
        let prompt = try folder.write("custom.json", text.replacingOccurrences(of: "\"VAEDecode\"", with: "\"VAEDecodeTiledPlus\""))
        let picture = try await folder.picture("custom.png", prompt: prompt)
        let shown = try await runBinary(["inspect", picture, "--server", server.url], environment: folder.environment)
        #expect(shown.status == .success, "\(shown.stderr)")
        #expect(shown.stdout.contains("8  VAE Decode (VAEDecodeTiledPlus)  [not on the server:"), "\(shown.stdout)")
        let json = try JSONValue(parsing: try await runBinary(["inspect", picture, "--server", server.url, "--json"], environment: folder.environment).stdout)
        let missing = json["nodes"]?.arrayValue?.filter { $0["on_server"] == false }.compactMap { $0["id"]?.stringValue }
        #expect(missing == ["8"], "\(json.serialized())")
    }

    /// `inspect` of each example job lists every address the example uses.
    @Test func inspectListsTheAddressesTheExamplesUse() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let server = try Self.simulator(folder)
        defer { server.stop() }
        let jobs = Paths.packageRoot.appendingPathComponent("jobs").path
        let names = try FileManager.default.contentsOfDirectory(atPath: jobs).filter { $0.hasSuffix(".json") }.sorted()
        #expect(names.count >= 5)
        for name in names {
            let job = try JSONValue(parsingJSON5: try String(contentsOfFile: jobs + "/" + name, encoding: .utf8))
            var used = ["set", "matrix", "zip"].flatMap { job[$0]?.objectValue?.keys ?? [] }
            if let seed = job["seeds"]?["input"]?.stringValue { used.append(seed) }
            let inspect = try await runBinary(["inspect", jobs + "/" + name, "--server", server.url, "--json"], environment: folder.environment)
            #expect(inspect.status == .success, "\(name): \(inspect.stderr)")
            let listed = Self.addresses(try JSONValue(parsing: inspect.stdout))
            for address in used { #expect(listed.contains(address), "\(name): \(address) not among \(listed.sorted())") }
            #expect(try JSONValue(parsing: inspect.stdout)["job"]?["items"]?.numberValue != nil, "\(name)")
        }
    }

    /// A one-liner and the job file `--print-job` writes for it give the same items.
    @Test func aMatrixOneLinerAndItsPrintedJobGiveTheSameItems() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let line = [
            Self.workflows + "/txt2img.json", "--matrix", "KSampler.cfg=5,7.5", "--matrix", #"KSampler.sampler_name=["euler","dpmpp_2m"]"#,
            "--seeds", "2..3", "--set", "Positive prompt.text=a red fox", "--set", "KSampler.steps=12", "--name", "foxes",
            "--output", folder.path("out"), "--name-template", "{job}_{index}_{sampler_name}",
        ]
        let oneLiner = try await runBinary(["add"] + line + ["--dry-run", "--no-preflight"], environment: folder.environment)
        #expect(oneLiner.status == .success, "\(oneLiner.stderr)")
        #expect(oneLiner.stdout.hasPrefix("foxes: 8 items (dry run, nothing added)"), "\(oneLiner.stdout)")
        #expect(oneLiner.stdout.contains(#""Positive prompt.text":"a red fox""#), "\(oneLiner.stdout)")
        let printed = try await runBinary(["add"] + line + ["--print-job", "--no-preflight"], environment: folder.environment)
        #expect(printed.status == .success, "\(printed.stderr)")
        let file = try folder.write("foxes.json5", printed.stdout)
        let fromFile = try await runBinary(["add", file, "--dry-run", "--no-preflight"], environment: folder.environment)
        #expect(fromFile.status == .success, "\(fromFile.stderr)")
        #expect(fromFile.stdout == oneLiner.stdout)
        // And the options apply to a job file too: --set overrides the file's value.
        let over = try await runBinary(["add", file, "--set", "KSampler.steps=3", "--dry-run", "--no-preflight"], environment: folder.environment)
        #expect(over.stdout.contains(#""KSampler.steps":3"#) && !over.stdout.contains(#""KSampler.steps":12"#), "\(over.stdout)")
    }

    // MARK: Bad input

    struct Bad: Sendable, CustomTestStringConvertible {
        var name: String
        var make: @Sendable (CLIHome) async throws -> [String]
        var says: String
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "a PNG without a workflow", make: { [try await $0.picture("plain.png", prompt: nil, workflow: nil)] },
            says: "plain.png: a PNG file without a workflow (no \"prompt\" or \"workflow\" in it)"),
        Bad(name: "a JSON file that is neither a job nor a workflow", make: { [try $0.write("notes.json", #"{"title": "x", "tags": [1]}"#)] },
            says: #"notes.json: neither a job file (no "workflow" field) nor a workflow (no node with "class_type", no "nodes"); its keys: "title", "tags""#),
        Bad(name: "a file that is none of them", make: { folder in
                let path = folder.path("blob.bin")
                try Data([0xFF, 0xFE, 0x00, 0x81]).write(to: URL(fileURLWithPath: path))
                return [path]
            }, says: "blob.bin: not a job file, a workflow, or a picture or sound ComfyUI saved with its workflow (PNG, WebP, FLAC)"),
        Bad(name: "a picture whose prompt has a node the server lacks", make: { folder in
                let text = try String(contentsOfFile: OneLineTests.workflows + "/txt2img.json", encoding: .utf8)
                let prompt = try folder.write("custom.json", text.replacingOccurrences(of: "\"VAEDecode\"", with: "\"VAEDecodeTiledPlus\""))
                return [try await folder.picture("custom.png", prompt: prompt)]
            }, says: "VAEDecodeTiledPlus"),
    ]

    /// Each bad input is one line naming the file, exit 65, and nothing is queued.
    @Test(arguments: bad)
    func badInputIsOneLineAndQueuesNothing(_ bad: Bad) async throws {
        let folder = try CLIHome("comfyq-one-line")
        let server = try Self.simulator(folder)
        defer { server.stop() }
        let files = try await bad.make(folder)
        let add = try await runBinary(["add"] + files + ["--server", server.url], environment: folder.environment)
        #expect(add.status == .dataError, "\(add.stdout)\(add.stderr)")
        let lines = add.stderr.split(separator: "\n").filter { !$0.hasPrefix("note:") }
        #expect(lines.count == 1 && lines[0].contains(bad.says), "\(add.stderr)")
        let status = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: folder.environment).stdout)
        #expect(status["jobs"]?.arrayValue?.isEmpty ?? true, "\(status.serialized())")
    }

    /// Options written wrong are usage errors (exit 64), one line, before anything is read.
    @Test(arguments: [
        (["--seeds", "many"], "--seeds takes N, A..B or random:N"),
        (["--seeds", "5..2"], "--seeds takes N, A..B or random:N"),
        (["--set", "KSampler.steps"], "--set takes ADDRESS=VALUE"),
        (["--matrix", "KSampler.cfg=[5,"], "--matrix KSampler.cfg: '[5,' is not a JSON list"),
        (["--repeat", "0"], "--repeat takes a whole number of at least 1"),
    ])
    func sweepOptionsWrittenWrongAreUsageErrors(_ options: [String], _ says: String) async throws {
        let folder = try CLIHome("comfyq-one-line")
        let add = try await runBinary(["add", Self.workflows + "/txt2img.json"] + options, environment: folder.environment)
        #expect(add.status == .usage, "\(add.stderr)")
        #expect(add.stderr.contains(says), "\(add.stderr)")
    }

    /// A bad address names the input as a job file's would.
    @Test func aWrongAddressIsOneLineNamingIt() async throws {
        let folder = try CLIHome("comfyq-one-line")
        let add = try await runBinary(
            ["add", Self.workflows + "/txt2img.json", "--set", "KSampler.stepz=3", "--no-preflight"], environment: folder.environment)
        #expect(add.status == .dataError)
        #expect(add.stderr.contains(#"txt2img.json: set["KSampler.stepz"]: KSampler has no input "stepz""#), "\(add.stderr)")
    }
}

extension CLIHome {
    /// A picture saved the way ComfyUI's save nodes write it (`comfy_save.py`, Pillow).
    func picture(_ name: String, kind: String = "png", prompt: String? = "txt2img.json", workflow: String? = "txt2img.ui.json") async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PythonServer.interpreter)
        process.arguments = [
            OneLineTests.saver, kind, prompt.map { $0.hasPrefix("/") ? $0 : OneLineTests.workflows + "/" + $0 } ?? "-",
            workflow.map { OneLineTests.workflows + "/" + $0 } ?? "-", path(name),
        ]
        let log = path("\(name).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        let status = try await eventually("comfy_save.py \(kind) to exit", timeout: 60, interval: 0.05) { process.isRunning ? nil : process.terminationStatus }
        let message = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw OneLineTests.TestFailure("comfy_save.py \(kind) failed (Pillow is installed by scripts/setup.sh as python3-pil): \(message)")
        }
        return path(name)
    }
}
