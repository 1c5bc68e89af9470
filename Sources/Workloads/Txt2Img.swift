import ComfyCore

/// Graphs the tests and the benchmarks run, written once.
public enum Workloads {
    /// txt2img as the recorded traces ran it: 4 checkpoint loader → 6/7 prompts (6 titled
    /// "Positive prompt") → 5 empty latent → 3 KSampler → 8 VAE decode → 9 save. With `lora`, a
    /// `LoraLoader` (node 10, titled "LoRA") sits between the checkpoint and its users.
    public static func txt2img(
        seed: Int = 1, steps: Int = 4, width: Int = 64, height: Int = 64, checkpoint: String = "sd15.safetensors", prefix: String = "x",
        lora: String? = nil
    ) -> Workflow {
        var workflow = Workflow([
            WorkflowNode(id: "4", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": .string(checkpoint)]),
            WorkflowNode(id: "5", classType: "EmptyLatentImage", inputs: ["width": .int(width), "height": .int(height), "batch_size": 1]),
            WorkflowNode(id: "6", classType: "CLIPTextEncode", title: "Positive prompt", inputs: ["text": "a cat", "clip": ["4", 1]]),
            WorkflowNode(id: "7", classType: "CLIPTextEncode", inputs: ["text": "blurry", "clip": ["4", 1]]),
            WorkflowNode(
                id: "3", classType: "KSampler",
                inputs: [
                    "seed": .int(seed), "steps": .int(steps), "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                    "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
                ]),
            WorkflowNode(id: "8", classType: "VAEDecode", inputs: ["samples": ["3", 0], "vae": ["4", 2]]),
            WorkflowNode(id: "9", classType: "SaveImage", inputs: ["filename_prefix": .string(prefix), "images": ["8", 0]]),
        ])
        if let lora {
            workflow = Workflow(
                workflow.orderedNodes + [
                    WorkflowNode(
                        id: "10", classType: "LoraLoader", title: "LoRA",
                        inputs: ["lora_name": .string(lora), "strength_model": 1.0, "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]])
                ])
            workflow.set(node: "3", input: "model", to: ["10", 0])
            workflow.set(node: "6", input: "clip", to: ["10", 1])
            workflow.set(node: "7", input: "clip", to: ["10", 1])
        }
        return workflow
    }

    /// img2img as `jobs/workflows/img2img.json`: 10 LoadImage ("Load Image") → 11 VAEEncode → 3
    /// KSampler (denoise 0.6) → 8 VAE decode → 9 save.
    public static func img2img(image: String = "example.png", seed: Int = 1, steps: Int = 4, denoise: Double = 0.6) -> Workflow {
        var nodes = txt2img(seed: seed, steps: steps).orderedNodes.filter { $0.id != "5" }
        nodes.append(WorkflowNode(id: "10", classType: "LoadImage", title: "Load Image", inputs: ["image": .string(image)]))
        nodes.append(WorkflowNode(id: "11", classType: "VAEEncode", inputs: ["pixels": ["10", 0], "vae": ["4", 2]]))
        var workflow = Workflow(nodes)
        workflow.set(node: "3", input: "latent_image", to: ["11", 0])
        workflow.set(node: "3", input: "denoise", to: .double(denoise))
        return workflow
    }
}
