import ComfyCore
import Testing

@Suite struct ModelKeyTests {
    static func graph(lora: Bool = false) -> Workflow {
        var nodes = [
            WorkflowNode(id: "4", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "sd15.safetensors"]),
            WorkflowNode(id: "6", classType: "CLIPTextEncode", inputs: ["text": "a cat with a .safetensors hat", "clip": ["4", 1]]),
            WorkflowNode(id: "3", classType: "KSampler", inputs: ["seed": 1, "steps": 20, "model": ["4", 0]]),
            WorkflowNode(id: "20", classType: "UpscaleModelLoader", inputs: ["model_name": "4x-UltraSharp.pth"]),
        ]
        if lora {
            nodes.append(
                WorkflowNode(
                    id: "10", classType: "LoraLoader",
                    inputs: ["lora_name": "detail.safetensors", "strength_model": 0.8, "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]]))
        }
        return Workflow(nodes)
    }

    @Test func everyModelFileWhereverItIsWithLoraStrengths() {
        #expect(ModelKey(Self.graph()).description == "ckpt_name=sd15.safetensors + model_name=4x-UltraSharp.pth")
        #expect(
            ModelKey(Self.graph(lora: true)).description
                == "ckpt_name=sd15.safetensors + lora_name=detail.safetensors@0.8/1 + model_name=4x-UltraSharp.pth")
        #expect(ModelKey(Workflow([WorkflowNode(id: "1", classType: "EmptyLatentImage", inputs: ["width": 64])])).description == "")
    }

    /// A job's items get the keys of their own graphs: a checkpoint sweep gives one group per
    /// checkpoint, a LoRA strength sweep one per strength, a seed sweep one for all.
    @Test func itemsOfASweepGetTheirGraphsKeys() throws {
        let loader = JobLoader(readFile: { _ in "" }, fileExists: { _ in true })
        let workflow = Self.graph(lora: true).json.serialized()
        let spec = try loader.load(
            text: """
                {workflow: \(workflow), matrix: {"CheckpointLoaderSimple.ckpt_name": ["a.safetensors", "b.ckpt"],
                 "LoraLoader.strength_model": [0.5, 1]}, seeds: {start: 1, count: 2}}
                """, path: "/tmp/sweep.json")
        let items = spec.expand(random: { 0 })
        let keys = spec.modelKeys(items).map(\.description)
        #expect(keys.count == 8)
        #expect(Set(keys).count == 4)  // seeds share a key
        #expect(keys[0] == "ckpt_name=a.safetensors + lora_name=detail.safetensors@0.5/1 + model_name=4x-UltraSharp.pth")
        #expect(keys[7] == "ckpt_name=b.ckpt + lora_name=detail.safetensors@1/1 + model_name=4x-UltraSharp.pth")
        // The same as applying the parameters to the graph and asking it.
        for (item, key) in zip(items, keys) {
            let applied = spec.workflow.applying(item.parametersJSON, addresses: spec.addresses)
            #expect(ModelKey(applied).description == key)
        }
    }

    @Test(arguments: [
        ("x.safetensors", true), ("X.SAFETENSORS", true), ("a/b/model.gguf", true), ("m.pt", true), ("m.pth", true), ("v.sft", true),
        ("a photo.png", false), ("safetensors", false), ("", false),
    ])
    func modelFilesAreToldByTheirExtension(name: String, isModel: Bool) {
        #expect(ModelKey.isModelFile(.string(name)) == isModel)
    }
}
