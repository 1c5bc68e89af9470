import ComfyCore
import Foundation
import Testing

/// The UI → API conversion against pairs made by ComfyUI's own frontend (1.58.1, ComfyUI 0.3.64).
@Suite struct UIConversionTests {
    /// `../shared/comfyui/ui-api` beside the checkout when it is there (it may hold more pairs), else the copies.
    static var pairsDirectory: URL {
        let shared = Fixtures.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/comfyui/ui-api")
        if FileManager.default.fileExists(atPath: shared.appendingPathComponent("object_info.json").path) { return shared }
        return Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/ui-api")
    }

    static func json(_ name: String) throws -> JSONValue {
        try JSONValue(parsing: String(contentsOf: pairsDirectory.appendingPathComponent(name), encoding: .utf8))
    }

    static let definitions: NodeDefinitions = {
        do { return try NodeDefinitions(objectInfo: json("object_info.json")) } catch { fatalError("object_info.json: \(error)") }
    }()

    static var pairs: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: pairsDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".ui.json") }.map { String($0.dropLast(".ui.json".count)) }.sorted()
    }

    @Test func thePairsAreThere() {
        #expect(Self.pairs.count >= 20, "pairs in \(Self.pairsDirectory.path)")
    }

    /// Every node's `class_type` and `inputs`, compared as ComfyUI reads them (key order aside).
    @Test(arguments: pairs) func convertsLikeTheFrontend(_ name: String) throws {
        let expected = try Self.json(name + ".api.json").objectValue!
        let converted = try UIConversion(definitions: Self.definitions, choose: { _ in 0 }).convert(json: Self.json(name + ".ui.json"))
        let got = converted.workflow
        #expect(Set(got.order) == Set(expected.keys), "node ids")
        for (id, node) in expected {
            guard let mine = got[id] else { continue }
            #expect(mine.classType == node["class_type"]?.stringValue, "\(name) node \(id) class_type")
            let want = node["inputs"]?.objectValue ?? JSONObject()
            #expect(Set(mine.inputs.keys) == Set(want.keys), "\(name) node \(id) input names")
            for (key, value) in want where mine.inputs[key] != nil {
                #expect(Self.same(mine.inputs[key]!, value), "\(name) node \(id).\(key): \(mine.inputs[key]!.serialized()) ≠ \(value.serialized())")
            }
        }
    }

    /// Pairs of comfyq's own, written from the frontend's rules (`Tests/Fixtures/ui-api-own`):
    /// a legacy `forceInput` value among the widget values, `RecordAudio`.
    static let ownPairs = ["legacy_force_input_value", "record_audio"]

    @Test(arguments: ownPairs) func convertsOurOwnPairsLikeTheFrontend(_ name: String) throws {
        let folder = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/ui-api-own")
        func read(_ file: String) throws -> JSONValue {
            try JSONValue(parsing: String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8))
        }
        let expected = try read(name + ".api.json").objectValue!
        let converted = try UIConversion(definitions: Self.definitions, choose: { _ in 0 }).convert(json: read(name + ".ui.json"))
        #expect(converted.notes.isEmpty, "\(converted.notes)")
        #expect(Set(converted.workflow.order) == Set(expected.keys))
        for (id, node) in expected {
            let mine = converted.workflow[id]
            #expect(mine?.classType == node["class_type"]?.stringValue, "\(name) node \(id)")
            #expect(mine.map { Self.same(.object($0.inputs), node["inputs"]!) } == true, "\(name) node \(id): \(mine.map { JSONValue.object($0.inputs).serialized() } ?? "missing")")
        }
    }

    /// The Wan 2.2 speech-to-video template: each subgraph instance gives its KSampler the seed
    /// of its own promoted widget (1 and 250), as the frontend does, not the link of the input at
    /// the seed's position (which feeds `steps`).
    @Test func aPromotedSeedWithoutASocketTakesTheInstancesValue() throws {
        let file = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/ui-api-own/video_wan2_2_14B_s2v.ui.json")
        let converted = try UIConversion(definitions: Self.definitions, choose: { _ in 0 }).convert(
            json: JSONValue(parsing: String(contentsOf: file, encoding: .utf8)))
        let samplers = converted.workflow.orderedNodes.filter { $0.classType == "KSampler" && $0.id.contains(":") }
        #expect(Dictionary(uniqueKeysWithValues: samplers.map { ($0.id, $0.inputs["seed"]) }) == ["79:77": 1, "85:183": 250])
        for sampler in samplers { #expect(sampler.inputs["steps"] == ["103", 0], "\(sampler.id): steps from the PrimitiveInt") }
    }

    /// Numbers compare by value (`8` and `8.0` are the same to ComfyUI).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x.double == y.double
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return Set(x.keys) == Set(y.keys) && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
        default: return a == b
        }
    }

    /// The widget lists built from `/object_info` plus the built-in frontend knowledge equal the
    /// frontend's own, for every node class of the server.
    @Test func widgetListsMatchTheFrontendForEveryClass() throws {
        let frontend = try Self.json("frontend_node_widgets.json").objectValue!
        var checked = 0
        for (name, definition) in Self.definitions.classes {
            guard let widgets = frontend[name]?["widgets"]?.arrayValue else { continue }
            let want = widgets.map { "\($0["name"]!.stringValue!) \($0["serialize_workflow"]!.boolValue!) \($0["serialize_api"]!.boolValue!)" }
            let got = definition.widgets.map { "\($0.name) \($0.savedInWorkflow) \($0.sentInPrompt)" }
            #expect(got == want, "\(name)")
            checked += 1
        }
        #expect(checked == Self.definitions.count)
    }
}
