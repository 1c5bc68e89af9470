import Testing

@testable import ComfyCore

/// Pre-flight: every item against each server's node definitions, one line per distinct problem.
@Suite struct PreflightTests {
    /// Two servers that differ in their checkpoints (gpu1 lacks sdxl) and one custom node.
    static func definitions(checkpoints: [String], custom: Bool = false) -> NodeDefinitions {
        var classes = [
            NodeDefinition(
                name: "CheckpointLoaderSimple", displayName: "Load Checkpoint", inputs: [InputDefinition(name: "ckpt_name", kind: .combo(checkpoints))],
                outputs: ["MODEL", "CLIP", "VAE"]),
            NodeDefinition(
                name: "CLIPTextEncode", inputs: [InputDefinition(name: "text", kind: .string), InputDefinition(name: "clip", kind: .other("CLIP"))],
                outputs: ["CONDITIONING"]),
            NodeDefinition(
                name: "KSampler",
                inputs: [
                    InputDefinition(name: "model", kind: .other("MODEL")),
                    InputDefinition(name: "seed", kind: .int, min: 0, max: 18_446_744_073_709_551_615),
                    InputDefinition(name: "steps", kind: .int, min: 1, max: 10000),
                    InputDefinition(name: "cfg", kind: .float, min: 0, max: 100),
                    InputDefinition(name: "sampler_name", kind: .combo(["euler", "euler_ancestral", "dpmpp_2m", "ddim"])),
                    InputDefinition(name: "positive", kind: .other("CONDITIONING")),
                    InputDefinition(name: "denoise", kind: .float, required: false, min: 0, max: 1),
                    InputDefinition(name: "add_noise", kind: .boolean, required: false),
                ], outputs: ["LATENT"]),
        ]
        if custom { classes.append(NodeDefinition(name: "FaceDetailer", inputs: [InputDefinition(name: "image", kind: .other("IMAGE"))])) }
        return NodeDefinitions(classes)
    }

    static let graph: JSONValue = [
        "4": ["class_type": "CheckpointLoaderSimple", "inputs": ["ckpt_name": "v1-5.safetensors"]],
        "6": ["class_type": "CLIPTextEncode", "_meta": ["title": "Positive"], "inputs": ["text": "a cat", "clip": ["4", 1]]],
        "3": [
            "class_type": "KSampler",
            "inputs": ["model": ["4", 0], "seed": 1, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "positive": ["6", 0], "denoise": 1],
        ],
    ]

    static func workflow(_ change: (inout JSONObject) -> Void = { _ in }) throws -> Workflow {
        var object = graph.objectValue!
        change(&object)
        return try Workflow(json: .object(object))
    }

    static func set(_ object: inout JSONObject, _ node: String, _ input: String, _ value: JSONValue) {
        var node_ = object[node]!.objectValue!
        var inputs = node_["inputs"]!.objectValue!
        inputs[input] = value
        node_["inputs"] = .object(inputs)
        object[node] = .object(node_)
    }

    static let v15 = definitions(checkpoints: ["v1-5.safetensors", "sdxl/sd_xl_base_1.0.safetensors"])

    /// Each mistake in the graph itself, and the line it gives.
    static let mistakes: [(node: String, input: String, value: JSONValue, line: String)] = [
        ("3", "sampler_name", "eulr", "'eulr' is not a sampler on gpu0 (node 3 KSampler.sampler_name); did you mean 'euler'?"),
        ("4", "ckpt_name", "sd_xl_base_1.safetensors", "'sd_xl_base_1.safetensors' is not a checkpoint on gpu0 (node 4 CheckpointLoaderSimple.ckpt_name); did you mean 'sdxl/sd_xl_base_1.0.safetensors'?"),
        ("4", "ckpt_name", "nothing-like-it.ckpt", "'nothing-like-it.ckpt' is not a checkpoint on gpu0 (node 4 CheckpointLoaderSimple.ckpt_name)"),
        ("3", "steps", 20000, "node 3 KSampler.steps = 20000 is out of range on gpu0: it must be at least 1 and at most 10000"),
        ("3", "denoise", 1.5, "node 3 KSampler.denoise = 1.5 is out of range on gpu0: it must be at least 0 and at most 1"),
        ("3", "steps", 2.5, "node 3 KSampler.steps = 2.5 is not a whole number (on gpu0)"),
        ("3", "cfg", "high", "node 3 KSampler.cfg = \"high\" is not a number (on gpu0)"),
        ("3", "add_noise", "yes", "node 3 KSampler.add_noise = \"yes\" is not true or false (on gpu0)"),
        ("3", "positive", ["4", 1], "node 3 KSampler.positive = a CLIP from node 4 is not a CONDITIONING (on gpu0)"),
    ]

    @Test(arguments: mistakes)
    func oneMistake(node: String, input: String, value: JSONValue, line: String) throws {
        let workflow = try Self.workflow { Self.set(&$0, node, input, value) }
        let findings = Preflight.check(workflow, against: Self.v15)
        #expect(findings.map { $0.message(on: "gpu0") } == [line])
    }

    @Test func aCorrectGraphHasNoFindings() throws {
        #expect(Preflight.check(try Self.workflow(), against: Self.v15).isEmpty)
    }

    @Test func unknownNodesAndMissingInputs() throws {
        let workflow = try Self.workflow { object in
            object["9"] = ["class_type": "FaceDetailer", "_meta": ["title": "Fix faces"], "inputs": ["image": ["3", 0]]]
            var sampler = object["3"]!.objectValue!
            var inputs = sampler["inputs"]!.objectValue!
            inputs["steps"] = nil
            sampler["inputs"] = .object(inputs)
            object["3"] = .object(sampler)
        }
        let lines = Preflight.check(workflow, against: Self.v15).map { $0.message(on: "gpu0") }
        #expect(lines.contains("node type FaceDetailer is not on gpu0 (node 9 Fix faces; a custom node that is not installed?)"))
        #expect(lines.contains("node 3 KSampler has no value for its required input steps (gpu0 needs one)"))
        #expect(lines.count == 2, "\(lines)")
        // An input an item sets is checked with the item's value instead.
        #expect(Preflight.check(workflow, against: Self.v15, skipping: [ParameterKey("3", "steps")]).count == 1)
    }

    @Test(arguments: [
        ("eulr", ["euler"]),
        ("EULER_A", ["euler"]),
        ("dpmpp2m", ["dpmpp_2m"]),
        ("sd_xl_base_1.0.safetensors", ["sdxl/sd_xl_base_1.0.safetensors"]),
        ("zzzzzzzzzz", []),
        ("bad.safetensors", []),
        ("v1-5.ckpt", ["v1-5.safetensors"]),
    ])
    func closestValues(typed: String, expected: [String]) {
        let options = ["euler", "euler_ancestral", "dpmpp_2m", "ddim", "sdxl/sd_xl_base_1.0.safetensors", "v1-5.safetensors"]
        #expect(Preflight.closest(to: typed, in: options) == expected)
    }

    // MARK: - Reports over items and servers

    static func job(_ values: [JSONValue], key: String = "ckpt", address: ParameterAddress = ParameterAddress(nodeID: "4", input: "ckpt_name", written: "ckpt"))
        throws -> PreflightJob
    {
        PreflightJob(
            label: "night.json", id: 7, workflow: try workflow(), addresses: [key: address],
            items: values.enumerated().map { index, value in
                PreflightJob.Item(index: index, parameters: [key: value], modelKey: ModelKey(value.stringValue ?? ""))
            })
    }

    @Test func anItemNoServerRunsIsAnErrorCountedOnce() throws {
        let job = try Self.job(["v1-5.safetensors", "v1-5.saftensors", "v1-5.saftensors", "v1-5.saftensors"])
        let report = PreflightReport(jobs: [job], servers: [("gpu0", Self.v15), ("gpu1", Self.v15)])
        #expect(report.checkedItems == 4)
        #expect(report.notes.isEmpty)
        #expect(
            report.errors.map(\.description) == [
                "night.json: 'v1-5.saftensors' is not a checkpoint on gpu0 or gpu1 (node 4 CheckpointLoaderSimple.ckpt_name); did you mean 'v1-5.safetensors'? (3 items)"
            ])
    }

    @Test func aModelOnlySomeServersHaveIsANoteAndDispatchLearnsIt() throws {
        let job = try Self.job(["v1-5.safetensors", "sdxl/sd_xl_base_1.0.safetensors", "v1-5.safetensors"])
        let small = Self.definitions(checkpoints: ["v1-5.safetensors"])
        let report = PreflightReport(jobs: [job], servers: [("gpu0", Self.v15), ("gpu1", small)])
        #expect(report.errors.isEmpty)
        #expect(
            report.notes.map(\.description) == [
                "night.json: 'sdxl/sd_xl_base_1.0.safetensors' is not a checkpoint on gpu1 (node 4 CheckpointLoaderSimple.ckpt_name): 1 item goes only to gpu0 instead"
            ])
        let sdxl = DispatchPolicy.Group.ID(jobID: 7, modelKey: ModelKey("sdxl/sd_xl_base_1.0.safetensors"))
        #expect(report.unrunnable["gpu1"] == [sdxl])
        #expect(report.unrunnable["gpu0"] == nil)
    }

    /// A job checked a page at a time reads as the whole job checked at once: the same lines and
    /// counts ("all N items" over every page), groups unrunnable only when no page runs them, and
    /// which items are blocked, by reason.
    @Test(arguments: [1, 2, 3, 5])
    func aJobCheckedInPiecesReadsAsAWhole(pieceSize: Int) throws {
        let values: [JSONValue] = ["v1-5.safetensors", "v1-5.saftensors", "sdxl/sd_xl_base_1.0.safetensors", "v1-5.saftensors", "v1-5.safetensors"]
        let job = try Self.job(values)
        let servers = [("gpu0", Self.v15), ("gpu1", Self.definitions(checkpoints: ["v1-5.safetensors"]))]
        let whole = PreflightReport(jobs: [job], servers: servers)
        var pieces = PreflightReport(servers: servers)
        for start in stride(from: 0, to: job.items.count, by: pieceSize) {
            var piece = job
            piece.items = Array(job.items[start..<min(start + pieceSize, job.items.count)])
            pieces.add(piece)
        }
        pieces.finish()
        #expect(pieces.errors == whole.errors && pieces.notes == whole.notes && pieces.unrunnable == whole.unrunnable)
        #expect(pieces.blocked == whole.blocked && pieces.checkedItems == 5)
        #expect(whole.blocked[7]?.values.flatMap { $0 }.sorted() == [1, 3])
        #expect(whole.errors.map(\.text).first?.hasSuffix("(2 items)") == true)
    }

    @Test func everyItemOfAJobWithABadGraphSaysAll() throws {
        var job = try Self.job(["v1-5.safetensors", "v1-5.safetensors"])
        job.workflow = try Self.workflow { Self.set(&$0, "3", "sampler_name", "eulr") }
        let report = PreflightReport(jobs: [job], servers: [("gpu0", Self.v15)])
        #expect(report.errors.map(\.text) == ["'eulr' is not a sampler on gpu0 (node 3 KSampler.sampler_name); did you mean 'euler'? (all 2 items)"])
        #expect(report.unrunnable["gpu0"] == [DispatchPolicy.Group.ID(jobID: 7, modelKey: ModelKey("v1-5.safetensors"))])
    }

    @Test func noServersMeansNothingChecked() throws {
        let report = PreflightReport(jobs: [try Self.job(["nope"])], servers: [])
        #expect(report.checkedItems == 0 && report.errors.isEmpty && report.notes.isEmpty)
    }
}
