import ComfyCore
import Testing

@Suite struct PromptPlanTests {
    @Test func classifiesTheTxt2imgGraph() {
        let plan = PromptPlan(Fixtures.txt2img(steps: 25))
        let roles = Dictionary(uniqueKeysWithValues: plan.nodes.map { ($0.id, $0.role) })
        #expect(
            roles == ["4": .setup, "5": .setup, "6": .setup, "7": .setup, "3": .sampler, "8": .decoding, "9": .output])
        #expect(plan.expectedSteps == 25)
        #expect(plan["6"]?.title == "Positive prompt")
    }

    @Test func latentUpscaleBetweenSamplersIsIntermediate() {
        let plan = PromptPlan(Fixtures.hires())
        #expect(plan["10"]?.role == .intermediate)
        #expect(plan["11"]?.role == .sampler)
        #expect(plan.count(.sampler) == 2)
        #expect(plan.expectedSteps == 7)
    }

    static let stepCases: [(String, JSONObject, Int)] = [
        ("KSamplerAdvanced", ["steps": 30, "start_at_step": 10, "end_at_step": 10000, "latent_image": ["1", 0]], 20),
        ("KSamplerAdvanced", ["steps": 30, "start_at_step": 0, "end_at_step": 12, "latent_image": ["1", 0]], 12),
        ("KSampler", ["steps": ["1", 0], "latent_image": ["1", 0]], 20),
        ("SamplerCustomAdvanced", ["sigmas": ["2", 0], "latent_image": ["1", 0]], 9),
    ]

    @Test(arguments: stepCases)
    func expectedSteps(classType: String, inputs: JSONObject, expected: Int) {
        let workflow = Workflow([
            WorkflowNode(id: "1", classType: "EmptyLatentImage", inputs: ["width": 8]),
            WorkflowNode(id: "2", classType: "BasicScheduler", inputs: ["steps": 9, "model": ["1", 0]]),
            WorkflowNode(id: "3", classType: classType, inputs: inputs),
            WorkflowNode(id: "4", classType: "SaveLatent", inputs: ["samples": ["3", 0]]),
        ])
        let plan = PromptPlan(workflow)
        #expect(plan["3"]?.role == .sampler)
        #expect(plan["3"]?.expectedSteps == expected)
        if inputs["sigmas"] != nil { #expect(plan["2"]?.role == .setup) }  // has `steps`, not a sampler
    }

    @Test(arguments: [
        ("SaveImage", NodeRole.output), ("PreviewImage", .output), ("SaveImageWebsocket", .output),
        ("KSamplerSelect", .setup), ("MySaveNode", .output),
    ])
    func roleOfClass(classType: String, expected: NodeRole) {
        // A node read by a sampler, so only its class (or, for sinks, its position) decides.
        let workflow = Workflow([
            WorkflowNode(id: "1", classType: classType, inputs: [:]),
            WorkflowNode(id: "2", classType: "KSampler", inputs: ["steps": 5, "x": ["1", 0]]),
            WorkflowNode(id: "3", classType: "SaveImage", inputs: ["images": ["2", 0]]),
        ])
        let plan = PromptPlan(
            classType == "MySaveNode" ? Workflow([WorkflowNode(id: "1", classType: classType)]) : workflow)
        #expect(plan["1"]?.role == expected)
    }

    @Test func cyclicGraphsDoNotHang() {
        let workflow = Workflow([
            WorkflowNode(id: "1", classType: "A", inputs: ["x": ["2", 0]]),
            WorkflowNode(id: "2", classType: "KSampler", inputs: ["x": ["1", 0], "steps": 3]),
        ])
        let plan = PromptPlan(workflow)
        #expect(plan.nodes.count == 2)
    }

    @Test func readsAndWritesAPIFormat() throws {
        let json = try JSONValue(
            parsing: #"{"3":{"class_type":"KSampler","inputs":{"seed":18446744073709551615,"model":["4",0]},"_meta":{"title":"Main"}}}"#)
        var workflow = try Workflow(json: json)
        #expect(workflow["3"]?.title == "Main")
        #expect(workflow["3"]?.linkedNodeIDs == ["4"])
        let setExisting = workflow.set(node: "3", input: "steps", to: 30)
        let setMissing = workflow.set(node: "99", input: "steps", to: 30)
        #expect(setExisting)
        #expect(!setMissing)
        #expect(
            workflow.json.serialized()
                == #"{"3":{"inputs":{"seed":18446744073709551615,"model":["4",0],"steps":30},"class_type":"KSampler","_meta":{"title":"Main"}}}"#)
    }

    @Test(arguments: [
        (#"{"nodes":[],"links":[]}"#, WorkflowError.uiFormat),
        (#"[1]"#, .notAnObject),
        (#"{}"#, .empty),
        (#"{"1":{"inputs":{}}}"#, .missingClassType(id: "1")),
        (#"{"1":5}"#, .nodeNotAnObject(id: "1")),
        (#"{"1":{"class_type":"X","inputs":[]}}"#, .inputsNotAnObject(id: "1")),
    ])
    func rejectsWhatIsNotAnAPIGraph(text: String, expected: WorkflowError) throws {
        let json = try JSONValue(parsing: text)
        #expect(throws: expected) { try Workflow(json: json) }
    }

    @Test func uiFormatErrorTellsHowToExport() {
        #expect("\(WorkflowError.uiFormat)" == "this is a UI workflow; export it with Save (API)")
    }
}
