import ComfyCore
import Testing

/// The conversion rules the frontend's pairs do not all show, each on a small hand-made graph
/// (ComfyUI 0.3.64's node definitions).
@Suite struct UIConversionRuleTests {
    typealias Socket = (name: String, type: String, link: Int?)

    static func node(
        _ id: Int, _ type: String, mode: Int = 0, inputs: [Socket] = [], outputs: [(type: String, links: [Int])] = [],
        values: JSONValue? = nil, title: String? = nil, properties: JSONObject = [:]
    ) -> JSONValue {
        var object: JSONObject = [
            "id": .int(id), "type": .string(type), "mode": .int(mode),
            "inputs": .array(inputs.map { ["name": .string($0.name), "type": .string($0.type), "link": $0.link.map { .int($0) } ?? .null] }),
            "outputs": .array(outputs.map { ["name": .string($0.type), "type": .string($0.type), "links": .array($0.links.map { .int($0) })] }),
            "properties": .object(properties),
        ]
        if let values { object["widgets_values"] = values }
        if let title { object["title"] = .string(title) }
        return .object(object)
    }

    static func link(_ id: Int, _ origin: Int, _ slot: Int, _ target: Int, _ targetSlot: Int, _ type: String) -> JSONValue {
        [.int(id), .int(origin), .int(slot), .int(target), .int(targetSlot), .string(type)]
    }

    static func workflow(_ nodes: [JSONValue], _ links: [JSONValue], subgraphs: [JSONValue] = [], last: Int = 100) -> JSONValue {
        var object: JSONObject = ["last_node_id": .int(last), "nodes": .array(nodes), "links": .array(links), "version": 0.4]
        if !subgraphs.isEmpty { object["definitions"] = ["subgraphs": .array(subgraphs)] }
        return .object(object)
    }

    static let checkpoint = node(4, "CheckpointLoaderSimple", outputs: [("MODEL", [1]), ("CLIP", []), ("VAE", [])], values: ["model.safetensors"])

    static func convert(_ json: JSONValue, choose: @escaping (Int) -> Int = { _ in 0 }) throws -> Workflow {
        try UIConversion(definitions: UIConversionTests.definitions, date: DateParts(year: 2026, month: 3, day: 7, hour: 9, minute: 5, second: 1), choose: choose)
            .convert(json: json).workflow
    }

    @Test func widgetCountsThatDoNotMatchAreNotedAndConvertAsTheFrontendDoes() throws {
        let graph = Self.workflow(
            [
                Self.node(3, "EmptyLatentImage", outputs: [("LATENT", [])], values: [640, 480, 1, "stale"], title: "Size"),
                Self.node(5, "EmptyLatentImage", outputs: [("LATENT", [])], values: [768]),
                Self.node(6, "EmptyLatentImage", outputs: [("LATENT", [])], values: ["wide", 512, 1]),
            ], [])
        let conversion = UIConversion(definitions: UIConversionTests.definitions)
        #expect(throws: UIConversionError.self) { try conversion.convert(json: graph) }
        do {
            _ = try conversion.convert(json: graph)
        } catch {
            // A value of the wrong type is a problem, one line naming node, widget and value.
            #expect(error.problems == [#"node 6: widget width = "wide": not a number (width is INT)"#])
        }
        var fixed = graph.objectValue!
        fixed["nodes"] = .array(Array(graph["nodes"]!.arrayValue!.prefix(2)))
        let result = try conversion.convert(json: .object(fixed))
        #expect(result.workflow["3"]?.inputs == ["width": 640, "height": 480, "batch_size": 1])
        #expect(result.workflow["5"]?.inputs == ["width": 768, "height": 512, "batch_size": 1])
        #expect(
            result.notes == [
                #"node 3 "Size": 4 saved widget values for 3 widgets of EmptyLatentImage; the extra ones are ignored, as ComfyUI does"#,
                "node 5: 1 saved widget value for 3 widgets of EmptyLatentImage; height, batch_size keep their defaults, as ComfyUI does",
            ])
    }

    @Test func aWidgetLinkedFromAMutedNodeKeepsItsOwnValue() throws {
        // 1.58: a muted node resolves to nothing, so the widget input keeps the saved 5555.
        let graph = Self.workflow(
            [
                Self.node(10, "PrimitiveInt", mode: 2, outputs: [("INT", [2])], values: [7, "fixed"]),
                Self.node(3, "EmptyLatentImage", inputs: [("width", "INT", 2)], outputs: [("LATENT", [])], values: [5555, 512, 1]),
            ], [Self.link(2, 10, 0, 3, 0, "INT")])
        let converted = try Self.convert(graph)
        #expect(converted["3"]?.inputs["width"] == 5555)
        #expect(converted["10"] == nil)
    }

    @Test func aLinkOnlyInputFromAMutedNodeIsDropped() throws {
        let graph = Self.workflow(
            [
                Self.node(8, "VAEDecode", mode: 2, outputs: [("IMAGE", [9])]),
                Self.node(9, "SaveImage", inputs: [("images", "IMAGE", 9)], values: ["out"]),
            ], [Self.link(9, 8, 0, 9, 0, "IMAGE")])
        let converted = try Self.convert(graph)
        #expect(converted["9"]?.inputs == ["filename_prefix": "out"])
    }

    @Test func aBypassedNodePassesTheInputOfTheConsumersType() throws {
        // LoraLoader bypassed: MODEL comes from the checkpoint's MODEL; a consumer of a type the
        // bypassed node has no input for gets nothing.
        let graph = Self.workflow(
            [
                Self.node(4, "CheckpointLoaderSimple", outputs: [("MODEL", [1]), ("CLIP", [2]), ("VAE", [])], values: ["m"]),
                Self.node(
                    5, "LoraLoader", mode: 4, inputs: [("model", "MODEL", 1), ("clip", "CLIP", 2)], outputs: [("MODEL", [3]), ("CLIP", [4])],
                    values: ["lora.safetensors", 1, 1]),
                Self.node(6, "CLIPTextEncode", inputs: [("clip", "CLIP", 4)], outputs: [("CONDITIONING", [])], values: ["a cat"]),
                Self.node(7, "ModelSamplingDiscrete", inputs: [("model", "MODEL", 3)], outputs: [("MODEL", [])], values: ["eps", false]),
            ], [Self.link(1, 4, 0, 5, 0, "MODEL"), Self.link(2, 4, 1, 5, 1, "CLIP"), Self.link(3, 5, 0, 7, 0, "MODEL"), Self.link(4, 5, 1, 6, 0, "CLIP")])
        let converted = try Self.convert(graph)
        #expect(converted["5"] == nil)
        #expect(converted["7"]?.inputs["model"] == ["4", 0])
        #expect(converted["6"]?.inputs["clip"] == ["4", 1])
    }

    @Test func rerouteChainsAndPrimitivesResolveAway() throws {
        let graph = Self.workflow(
            [
                Self.node(4, "CheckpointLoaderSimple", outputs: [("MODEL", [1]), ("CLIP", []), ("VAE", [])], values: ["m"]),
                Self.node(20, "Reroute", inputs: [("", "*", 1)], outputs: [("*", [2])]),
                Self.node(21, "Reroute", inputs: [("", "*", 2)], outputs: [("*", [3])]),
                Self.node(22, "PrimitiveNode", outputs: [("INT", [4])], values: [123456789, "fixed"]),
                Self.node(
                    3, "KSampler", inputs: [("model", "MODEL", 3), ("seed", "INT", 4)], outputs: [("LATENT", [])],
                    values: [1, "randomize", 20, 8, "sample_euler", "normal", 1]),
                Self.node(30, "Note", values: ["a note"]),
            ], [Self.link(1, 4, 0, 20, 0, "MODEL"), Self.link(2, 20, 0, 21, 0, "*"), Self.link(3, 21, 0, 3, 0, "MODEL"), Self.link(4, 22, 0, 3, 1, "INT")])
        let converted = try Self.convert(graph)
        #expect(Set(converted.order) == ["4", "3"])
        #expect(converted["3"]?.inputs["model"] == ["4", 0])
        #expect(converted["3"]?.inputs["seed"] == 123456789)
        #expect(converted["3"]?.inputs["sampler_name"] == "euler", "old sampler names lose sample_")
        #expect(converted["3"]?.inputs["control_after_generate"] == nil)
    }

    @Test func valuesAsAnObjectLeaveTheDefaultsAndOldNamesAreRenamed() throws {
        let graph = Self.workflow(
            [
                Self.node(5, "EmptyLatentImage", outputs: [("LATENT", [])], values: ["width": 1024]),
                Self.node(6, "T2IAdapterLoader", outputs: [("CONTROL_NET", [])], values: ["adapter.pth"]),
            ], [])
        let converted = try Self.convert(graph)
        #expect(converted["5"]?.inputs == ["width": 512, "height": 512, "batch_size": 1])
        #expect(converted["6"]?.classType == "ControlNetLoader")
        #expect(converted["6"]?.inputs["control_net_name"] == "adapter.pth")
    }

    @Test func dynamicPromptsAndFilenameTokens() throws {
        let graph = Self.workflow(
            [
                Self.node(6, "CLIPTextEncode", outputs: [("CONDITIONING", [])], values: [#"a {red|green {dark|light} blue} cat // see https://x \{literal\}"#]),
                Self.node(5, "EmptyLatentImage", outputs: [("LATENT", [])], values: [640, 512, 1]),
                Self.node(9, "SaveImage", inputs: [("images", "IMAGE", nil)], values: ["%date:yyyy-MM-dd%/%EmptyLatentImage.width%x%Empty Latent Image.height%_%Nope.x%_%width%"]),
            ], [])
        var choices: [Int] = []
        let converted = try Self.convert(graph) { count in
            choices.append(count)
            return count - 1
        }
        #expect(converted["6"]?.inputs["text"] == "a green light blue cat ")
        #expect(choices == [2, 2])
        #expect(converted["9"]?.inputs["filename_prefix"] == "2026-03-07/640x512_%Nope.x%_%width%")
        let kept = try Self.convert(Self.workflow([Self.node(6, "CLIPTextEncode", outputs: [("CONDITIONING", [])], values: [#"\{a|b\}"#])], []))
        #expect(kept["6"]?.inputs["text"] == "{a|b}")
    }

    /// A subgraph whose inner ids collide with root ids, used twice, one instance bypassed at the root.
    static func subgraphWorkflow(bypassSecond: Bool) -> JSONValue {
        let definition: JSONValue = [
            "id": "sub-1", "name": "latent",
            "inputs": [["name": "width", "type": "INT", "linkIds": [1]]],
            "outputs": [["name": "LATENT", "type": "LATENT", "linkIds": [2]]],
            "nodes": [Self.node(5, "EmptyLatentImage", inputs: [("width", "INT", 1)], outputs: [("LATENT", [2])], values: [512, 512, 1])],
            "links": [
                ["id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "INT"],
                ["id": 2, "origin_id": 5, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "LATENT"],
            ],
        ]
        return Self.workflow(
            [
                Self.node(5, "PrimitiveInt", outputs: [("INT", [])], values: [1, "fixed"]),
                Self.node(10, "sub-1", inputs: [("width", "INT", nil)], outputs: [("LATENT", [3])], values: [768]),
                Self.node(11, "sub-1", mode: bypassSecond ? 4 : 0, inputs: [("width", "INT", nil)], outputs: [("LATENT", [4])], values: []),
                Self.node(20, "LatentUpscaleBy", inputs: [("samples", "LATENT", 3)], outputs: [("LATENT", [])], values: ["nearest-exact", 1.5]),
                Self.node(21, "LatentUpscaleBy", inputs: [("samples", "LATENT", 4)], outputs: [("LATENT", [])], values: ["nearest-exact", 2]),
            ], [Self.link(3, 10, 0, 20, 0, "LATENT"), Self.link(4, 11, 0, 21, 0, "LATENT")], subgraphs: [definition], last: 21)
    }

    @Test func subgraphIdsAreMadeUniqueAndPromotedWidgetsGiveValues() throws {
        let converted = try Self.convert(Self.subgraphWorkflow(bypassSecond: false))
        // Inner 5 collides with root 5: it becomes last_node_id + 1 = 22.
        #expect(Set(converted.order) == ["5", "10:22", "11:22", "20", "21"])
        #expect(converted["10:22"]?.inputs["width"] == 768, "the instance's promoted widget")
        #expect(converted["11:22"]?.inputs["width"] == 512, "no value on the instance: the inner widget's own")
        #expect(converted["20"]?.inputs["samples"] == ["10:22", 0])
    }

    @Test func aBypassedInstanceAtTheRootIsNotExpanded() throws {
        let converted = try Self.convert(Self.subgraphWorkflow(bypassSecond: true))
        #expect(converted["11:22"] == nil)
        #expect(converted["21"]?.inputs["samples"] == nil, "a bypassed subgraph with no LATENT input passes nothing")
    }

    @Test func problemsNameTheNodeTheWidgetAndTheValue() {
        let graph = Self.workflow(
            [
                Self.node(3, "KSampler", outputs: [("LATENT", [])], values: ["many", "fixed", 20, 8, "euler", "normal", 1], title: "Base"),
                Self.node(12, "MyCustomSampler", title: "Fancy"),
            ], [])
        #expect(throws: UIConversionError(problems: [
            #"node 3 "Base": widget seed = "many": not a number (seed is INT)"#,
            #"node 12 "Fancy": node type MyCustomSampler is not on the server (a custom node that is not installed?)"#,
        ])) { try Self.convert(graph) }
    }
}
