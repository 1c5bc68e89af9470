import ComfyCore
import Foundation
import InputFiles
import Testing

@Suite struct JobLoaderTests {
    static let workflowText = Fixtures.txt2img().json.serialized()

    /// A loader over an in-memory file system.
    static func loader(_ files: [String: String] = ["w.json": workflowText]) -> JobLoader {
        JobLoader(
            readFile: { path in
                guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
                return text
            },
            fileExists: { files[$0] != nil })
    }

    static func problems(_ text: String, files: [String: String] = ["w.json": workflowText]) -> [String] {
        do {
            _ = try loader(files).load(text: text, path: "night.json")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test(arguments: [
        (#"{workflow: "w.json", matrix: {"KSampler.sede": [1]}}"#,
         #"night.json: matrix["KSampler.sede"]: KSampler has no input "sede" (inputs: seed, steps, cfg, sampler_name, scheduler, denoise)"#),
        (#"{workflow: "w.json", set: {"CLIPTextEncode.text": "x"}}"#,
         #"night.json: set["CLIPTextEncode.text"]: CLIPTextEncode is not unique (nodes 6, 7); use a node id or a title"#),
        (#"{workflow: "w.json", set: {"Nope.text": "x"}}"#, #"night.json: set["Nope.text"]: no node has the id, title or class "Nope""#),
        (#"{workflow: "w.json", set: {"KSampler.model": 1}}"#,
         #"night.json: set["KSampler.model"]: KSampler.model is a link to node 4; only literal inputs can be set"#),
        (#"{workflow: "w.json", set: {"KSampler.steps": 2.5}}"#, #"night.json: set["KSampler.steps"]: KSampler.steps expects a whole number, got 2.5"#),
        (#"{workflow: "w.json", set: {"6.text": 5}}"#,
         #"night.json: set["6.text"]: 6.text expects a string (the workflow has "a cat"), got an integer"#),
        (#"{workflow: "w.json", matrix: {"KSampler.cfg": []}}"#, #"night.json: matrix["KSampler.cfg"]: empty sweep: give at least one value"#),
        (#"{workflow: "missing.json"}"#, "night.json: workflow: cannot read missing.json: "),
        (#"{workflow: "w.json", zip: {"KSampler.cfg": [1.0, 2.0], "KSampler.steps": [1]}}"#,
         "night.json: zip: lists must have the same length: KSampler.cfg has 2, KSampler.steps has 1"),
        (#"{workflow: "w.json", output: {name: "/abs/{index}"}}"#, #"night.json: output["name"]: must be relative to the output folder, not start with /"#),
        (#"{workflow: "w.json", output: {name: "a/../../{index}"}}"#,
         #"night.json: output["name"]: must not contain '..': outputs stay inside the output folder"#),
        (#"{workflow: "w.json", servers: ["ftp://x"]}"#, "night.json: servers[0]: must be a server name from the servers file, an http:// or https:// URL, or host:port"),
        (#"{workflow: "w.json", hooks: ["notify.lua"]}"#, "night.json: hooks[0]: no such file: notify.lua"),
        (#"{workflow: "w.json", hooks: [{script: "w.json", opts: {}}]}"#, #"night.json: hooks[0]["opts"]: unknown field (fields: script, options)"#),
        (#"{workflow: "w.json", hooks: [{options: {}}]}"#, #"night.json: hooks[0]: needs "script": a path to a Lua script"#),
        (#"{workflow: "w.json", hooks: [{script: "w.json", options: 3}]}"#, #"night.json: hooks[0]["options"]: must be an object of settings"#),
        (#"{workflow: "w.json", hooks: [42]}"#, #"night.json: hooks[0]: must be a path to a Lua script, or {"script": path, "options": {…}}"#),
        (#"{workflow: "w.json", seeds: {random: 0}}"#, #"night.json: seeds["random"]: must be a whole number of at least 1"#),
        (#"{workflow: "w.json", repeat: 0}"#, "night.json: repeat: must be at least 1"),
        (#"{workflow: "w.json", timeouts: {stall: "soon"}}"#, #"night.json: timeouts["stall"]: must be a duration such as "10m" or "90s""#),
        (#"{workflow: "w.json", max_defer: 600}"#, #"night.json: max_defer: must be a duration such as "10m" or "90s""#),
        (#"{workflow: "w.json", order: "sideways"}"#,
         #"night.json: order: must be "models" (group items by the models they load, the default) or "strict" (exactly their order)"#),
        (#"{workflow: "w.json", matrix: {"KSampler.seed": [1, 2, 3]}, seeds: {random: 400000}, repeat: 1000}"#,
         "night.json: expands to 1200000000 items; the limit is 1000000 per job"),
        (#"{"workflow": "w.json",, }"#, "night.json: line 1, column 23: unexpected ',' at byte 22"),
        ("[1]", "night.json: a job file must be a JSON object"),
        ("{workflow: \"w.json\",\n  matrix: {\"KSampler.cfg\": [7, Infinity]}}", "night.json: line 2, column 32: Infinity at byte 52 cannot be sent to ComfyUI"),
        ("{workflow: \"w.json\",\r  set: {\"KSampler.cfg\": -NaN}}", "night.json: line 2, column 25: -NaN at byte 45 cannot be sent to ComfyUI"),
        ("{workflow: \"w.json\" /* unclosed", "night.json: line 1, column 21: a /* comment that is never closed"),
    ])
    func reportsProblemsWithFileLocationAndReason(text: String, expected: String) {
        let found = Self.problems(text)
        #expect(found.contains { $0.hasPrefix(expected) }, "\(found)")
    }

    /// JSON5 as written by hand: hexadecimal, `+`, `.5`, continued strings, identifier keys.
    @Test func json5Values() throws {
        let spec = try Self.loader().load(
            text: "{workflow: 'w.json', set: {\"6.text\": 'a \\\ncat', 'KSampler.cfg': .5}, matrix: {\"KSampler.seed\": [0x10, +3]},}",
            path: "night.json")
        let items = spec.expand(random: { 0 })
        #expect(items.map { $0.parameters.map { "\($0.address)=\($0.value.serialized())" } } == [
            [#"6.text="a cat""#, "KSampler.cfg=0.5", "KSampler.seed=16"],
            [#"6.text="a cat""#, "KSampler.cfg=0.5", "KSampler.seed=3"],
        ])
    }

    /// A workflow file beside the job with `NaN` in it: refused with the workflow's line.
    @Test func nonFiniteInAWorkflowFile() {
        let found = Self.problems(#"{workflow: "nan.json"}"#, files: ["nan.json": "{\"3\": {\"class_type\": \"KSampler\",\n \"inputs\": {\"cfg\": NaN}}}"])
        #expect(found.first?.hasPrefix("night.json: workflow: nan.json: line 2, column 20: NaN at byte") == true, "\(found)")
    }

    @Test func hooksCarryTheirOptions() throws {
        let spec = try Self.loader(["w.json": Self.workflowText, "jobs/a.lua": "", "jobs/w.json": Self.workflowText])
            .load(text: #"{workflow: "w.json", hooks: ["a.lua", {script: "a.lua", options: {url: "http://x", n: 2}}]}"#, path: "jobs/night.json")
        #expect(spec.hooks == [HookReference(path: "jobs/a.lua"), HookReference(path: "jobs/a.lua", options: ["url": "http://x", "n": 2])])
        #expect(HookReference(json: spec.hooks[1].json) == spec.hooks[1])
        #expect(HookReference(json: "old/plain.lua") == HookReference(path: "old/plain.lua"))
    }

    @Test func uiWorkflowsAreRecognised() {
        let found = Self.problems(#"{workflow: "ui.json"}"#, files: ["ui.json": #"{"nodes": [], "links": [], "version": 0.4}"#])
        #expect(
            found == [
                "night.json: workflow: ui.json is a UI-format workflow (as ComfyUI's Save writes it); converting it needs a server's node definitions: give --server NAME|URL, add object_info: FILE to the job, or export it with Export (API)"
            ])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let found = Self.problems(#"{workflow: "w.json", bogus: 1, set: {"KSampler.x": 1}, repeat: -1, matrix: {"5.width": []}}"#)
        #expect(found.count == 4)
    }

    @Test func addressesByIdTitleAndUniqueClass() throws {
        let text = #"""
            // comments, trailing commas, unquoted keys and 'single quotes' are fine
            {
              name: 'night',
              workflow: "w.json",
              set: {"Positive prompt.text": 'a dog', "5.width": 768,},
              matrix: {"KSampler.steps": [4, 8], "KSampler.cfg": [5.0, 7.5, 9]},
              seeds: {start: 100, count: 2},
              repeat: 2,
              priority: 3,
              output: {folder: "out", name: "{job}/{steps}_{seed}_{index}"},
            }
            """#
        let spec = try Self.loader().load(text: text, path: "night.json")
        #expect(spec.name == "night")
        #expect(spec.fixed.map { "\($0.address.nodeID).\($0.address.input)" } == ["6.text", "5.width"])
        #expect(spec.itemCount == 2 * 3 * 2 * 2)
        #expect(spec.output.folder == "out")
        #expect(spec.priority == 3)
        let items = spec.expand(random: { 0 })
        #expect(items.count == 24)
        #expect(items.map(\.index) == Array(0..<24))
        // Matrix first key slowest, then seeds, then repeats.
        #expect(items[0].parametersJSON == ["Positive prompt.text": "a dog", "5.width": 768, "KSampler.steps": 4, "KSampler.cfg": 5.0, "3.seed": 100])
        #expect(items[1].seed == 100)
        #expect(items[2].seed == 101)
        #expect(items[4].parametersJSON["KSampler.cfg"] == 7.5)
        #expect(items[12].parametersJSON["KSampler.steps"] == 8)
        let graph = spec.workflow.applying(items[23].parametersJSON, addresses: spec.addresses)
        #expect(graph["3"]?.inputs["steps"] == 8)
        #expect(graph["3"]?.inputs["seed"] == 101)
        #expect(graph["6"]?.inputs["text"] == "a dog")
        #expect(graph["7"]?.inputs["text"] == "blurry")
    }

    @Test func zipAdvancesTogetherAndRandomSeedsAreDrawnOnce() throws {
        let text = #"{workflow: "w.json", zip: {"6.text": ["a", "b", "c"], "KSampler.steps": [10, 20, 30]}, seeds: {random: 2}}"#
        let spec = try Self.loader().load(text: text, path: "j.json")
        var counter: UInt64 = 0
        let items = spec.expand(random: {
            counter += 1
            return counter
        })
        #expect(items.count == 6)
        #expect(items.map { $0.parametersJSON["6.text"]?.stringValue ?? "" } == ["a", "a", "b", "b", "c", "c"])
        #expect(items.map { $0.parametersJSON["KSampler.steps"]?.numberValue?.int ?? 0 } == [10, 10, 20, 20, 30, 30])
        #expect(items.map { $0.seed ?? 0 } == [1, 2, 1, 2, 1, 2])
        #expect(spec.name == "j")
    }

    @Test func everyExampleJobIsValid() throws {
        let directory = Fixtures.packageRoot.appendingPathComponent("jobs")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(names == ["hires-fix.json", "img2img-folder.json", "prompt-matrix.json", "seed-sweep.json", "ui-workflow.json"])
        var loader = JobLoader(
            readFile: { try String(contentsOfFile: $0, encoding: .utf8) }, fileExists: { FileManager.default.fileExists(atPath: $0) },
            files: LocalFiles.files)
        // ui-workflow.json's UI-format graph converts with a server's node definitions.
        let objectInfo = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/ui-api/object_info.json")
        let definitions = try NodeDefinitions(objectInfo: JSONValue(parsing: String(contentsOf: objectInfo, encoding: .utf8)))
        loader.nodeDefinitions = NodeDefinitionsSource(definitions, origin: "object_info.json")
        for name in names {
            let path = directory.appendingPathComponent(name).path
            let spec = try loader.load(text: try String(contentsOfFile: path, encoding: .utf8), path: path)
            #expect(spec.itemCount > 0, "\(name)")
            #expect((spec.uiWorkflow != nil) == (name == "ui-workflow.json"), "\(name)")
        }
    }

    @Test func templatesRenderSafely() {
        #expect(OutputTemplate.render("{job}_{seed}", values: ["job": "night", "seed": "12"]) == "night_12")
        #expect(OutputTemplate.render("{text}", values: ["text": "../../etc/passwd"]) == "_._.._etc_passwd")  // no separator survives
        #expect(OutputTemplate.sanitize(".hidden") == "_hidden")
    }
}
