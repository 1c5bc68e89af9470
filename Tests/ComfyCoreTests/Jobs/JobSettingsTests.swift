import ComfyCore
import Testing

@Suite struct JobSettingsTests {
    @Test func whatAJobFileSaysIsStoredAndReadBack() throws {
        let loader = JobLoader(readFile: { _ in "" }, fileExists: { _ in true })
        let workflow = ModelKeyTests.graph().json.serialized()
        let spec = try loader.load(
            text: """
                {workflow: \(workflow), retries: 5, timeouts: {stall: "90s"}, max_defer: "2m", order: "strict",
                 set: {"KSampler.steps": 4}, output: {folder: "/out", name: "{job}_{seed}"}, hooks: ["h.lua"], servers: ["gpu0"]}
                """, path: "/jobs/night.json")
        let stored = spec.settings.json
        let read = try JobSettings(json: JSONValue(parsing: stored.serialized()))
        #expect(read == spec.settings)
        #expect(read.retries == 5 && read.stallTimeout == 90 && read.maxDefer == 120 && read.strictOrder)
        #expect(read.output == OutputSpec(folder: "/out", template: "{job}_{seed}"))
        #expect(read.addresses["KSampler.steps"] == ParameterAddress(nodeID: "3", input: "steps", written: "KSampler.steps"))
    }

    /// A queue written by an older comfyq lacks the newer fields: they take their defaults.
    @Test func missingFieldsTakeTheirDefaults() throws {
        let read = try JobSettings(json: ["output_folder": "/out"])
        #expect(read.retries == JobSettings.defaultRetries && read.stallTimeout == 600 && read.maxDefer == nil && !read.strictOrder)
        #expect(read.output.template == "{job}_{index}")
    }

    @Test(arguments: [
        (JSONValue.array([]), "the job's stored settings is not an object"),
        (JSONValue.object(["retries": "two"]), "the job's stored setting retries has the wrong type (a string)"),
        (JSONValue.object(["addresses": ["KSampler.seed": "3"]]), #"the job's stored setting addresses["KSampler.seed"] is not a [node, input] pair"#),
    ] as [(JSONValue, String)])
    func aDamagedFieldIsAnErrorNotADefault(json: JSONValue, message: String) {
        #expect(throws: JobSettingsError.self) { try JobSettings(json: json) }
        do {
            _ = try JobSettings(json: json)
        } catch {
            #expect(error.description == message)
        }
    }
}
