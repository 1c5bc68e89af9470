import Foundation
import HTTPServer
import ComfyCore

/// A node class the simulator knows: what it needs, what it makes, how it behaves.
public struct NodeClass: Sendable {
    public enum Behaviour: Sendable, Equatable {
        case loader
        case sampler
        /// The test node of the recordings: a sampler that can fail at a step and send text frames.
        case fakeSampler
        case decoder
        case output(save: Bool)
        case plain
    }

    public var name: String
    /// Required inputs with their types, in ComfyUI's order.
    public var required: [(name: String, type: String)]
    public var outputs: [String]
    public var behaviour: Behaviour
    public var category: String
    /// Inputs that name a file in the input folder, with their upload flag (`image_upload`).
    public var uploads: [String: String] = [:]
    /// Combo inputs with a fixed list of values.
    public var choices: [String: [String]] = [:]

    public var isOutput: Bool { if case .output = behaviour { true } else { false } }
}

/// The classes of the example workflows and the recordings, with ComfyUI's input names and types.
public enum NodeCatalog {
    public static let classes: [String: NodeClass] = {
        let list: [NodeClass] = [
            NodeClass(
                name: "CheckpointLoaderSimple", required: [("ckpt_name", "COMBO")], outputs: ["MODEL", "CLIP", "VAE"],
                behaviour: .loader, category: "loaders"),
            NodeClass(
                name: "LoraLoader",
                required: [("model", "MODEL"), ("clip", "CLIP"), ("lora_name", "COMBO"), ("strength_model", "FLOAT"), ("strength_clip", "FLOAT")],
                outputs: ["MODEL", "CLIP"], behaviour: .loader, category: "loaders"),
            NodeClass(
                name: "CLIPTextEncode", required: [("text", "STRING"), ("clip", "CLIP")], outputs: ["CONDITIONING"],
                behaviour: .plain, category: "conditioning"),
            NodeClass(
                name: "EmptyLatentImage", required: [("width", "INT"), ("height", "INT"), ("batch_size", "INT")],
                outputs: ["LATENT"], behaviour: .plain, category: "latent"),
            NodeClass(
                name: "KSampler",
                required: [
                    ("model", "MODEL"), ("seed", "INT"), ("steps", "INT"), ("cfg", "FLOAT"), ("sampler_name", "COMBO"),
                    ("scheduler", "COMBO"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                    ("latent_image", "LATENT"), ("denoise", "FLOAT"),
                ],
                outputs: ["LATENT"], behaviour: .sampler, category: "sampling"),
            NodeClass(
                name: "KSamplerAdvanced",
                required: [
                    ("model", "MODEL"), ("add_noise", "COMBO"), ("noise_seed", "INT"), ("steps", "INT"), ("cfg", "FLOAT"),
                    ("sampler_name", "COMBO"), ("scheduler", "COMBO"), ("positive", "CONDITIONING"),
                    ("negative", "CONDITIONING"), ("latent_image", "LATENT"), ("start_at_step", "INT"),
                    ("end_at_step", "INT"), ("return_with_leftover_noise", "COMBO"),
                ],
                outputs: ["LATENT"], behaviour: .sampler, category: "sampling"),
            NodeClass(
                name: "FakeSampler",
                required: [("samples", "LATENT"), ("steps", "INT"), ("seconds_per_step", "FLOAT"), ("fail_at_step", "INT"), ("send_text", "BOOLEAN")],
                outputs: ["LATENT"], behaviour: .fakeSampler, category: "testing"),
            NodeClass(
                name: "LatentUpscale",
                required: [("samples", "LATENT"), ("upscale_method", "COMBO"), ("width", "INT"), ("height", "INT"), ("crop", "COMBO")],
                outputs: ["LATENT"], behaviour: .plain, category: "latent"),
            NodeClass(
                name: "VAEDecode", required: [("samples", "LATENT"), ("vae", "VAE")], outputs: ["IMAGE"], behaviour: .decoder,
                category: "latent"),
            NodeClass(
                name: "SaveImage", required: [("images", "IMAGE"), ("filename_prefix", "STRING")], outputs: [],
                behaviour: .output(save: true), category: "image"),
            NodeClass(
                name: "PreviewImage", required: [("images", "IMAGE")], outputs: [], behaviour: .output(save: false),
                category: "image"),
            // Inputs from files: img2img, inpainting, upscaling.
            NodeClass(
                name: "LoadImage", required: [("image", "COMBO")], outputs: ["IMAGE", "MASK"], behaviour: .plain, category: "image",
                uploads: ["image": "image_upload"]),
            NodeClass(
                name: "LoadImageMask", required: [("image", "COMBO"), ("channel", "COMBO")], outputs: ["MASK"], behaviour: .plain,
                category: "mask", uploads: ["image": "image_upload"], choices: ["channel": ["alpha", "red", "green", "blue"]]),
            NodeClass(
                name: "VAEEncode", required: [("pixels", "IMAGE"), ("vae", "VAE")], outputs: ["LATENT"], behaviour: .plain, category: "latent"),
            NodeClass(
                name: "VAEEncodeForInpaint", required: [("pixels", "IMAGE"), ("vae", "VAE"), ("mask", "MASK"), ("grow_mask_by", "INT")],
                outputs: ["LATENT"], behaviour: .plain, category: "latent/inpaint"),
            NodeClass(
                name: "SetLatentNoiseMask", required: [("samples", "LATENT"), ("mask", "MASK")], outputs: ["LATENT"], behaviour: .plain,
                category: "latent/inpaint"),
            NodeClass(
                name: "ImageScaleBy", required: [("image", "IMAGE"), ("upscale_method", "COMBO"), ("scale_by", "FLOAT")], outputs: ["IMAGE"],
                behaviour: .plain, category: "image/upscaling"),
            NodeClass(
                name: "UpscaleModelLoader", required: [("model_name", "COMBO")], outputs: ["UPSCALE_MODEL"], behaviour: .loader,
                category: "loaders"),
            NodeClass(
                name: "ImageUpscaleWithModel", required: [("upscale_model", "UPSCALE_MODEL"), ("image", "IMAGE")], outputs: ["IMAGE"],
                behaviour: .plain, category: "image/upscaling"),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }()

    /// Inputs that may be left out (ComfyUI gives them defaults).
    static let defaults: Set<String> = [
        "grow_mask_by",
        "denoise", "crop", "upscale_method", "seconds_per_step", "fail_at_step", "send_text", "filename_prefix",
        "add_noise", "return_with_leftover_noise", "start_at_step", "end_at_step",
    ]

    /// ComfyUI's display names (the frontend's default titles).
    static let displayNames = [
        "CheckpointLoaderSimple": "Load Checkpoint", "LoraLoader": "Load LoRA", "CLIPTextEncode": "CLIP Text Encode (Prompt)",
        "EmptyLatentImage": "Empty Latent Image", "KSamplerAdvanced": "KSampler (Advanced)", "LatentUpscale": "Upscale Latent",
        "VAEDecode": "VAE Decode", "SaveImage": "Save Image", "PreviewImage": "Preview Image", "LoadImage": "Load Image",
        "LoadImageMask": "Load Image (as Mask)", "VAEEncode": "VAE Encode", "VAEEncodeForInpaint": "VAE Encode (for Inpainting)",
        "SetLatentNoiseMask": "Set Latent Noise Mask", "ImageScaleBy": "Upscale Image By", "UpscaleModelLoader": "Load Upscale Model",
        "ImageUpscaleWithModel": "Upscale Image (using Model)",
    ]

    /// ComfyUI 0.3.64's samplers and schedulers, as its `/object_info` lists them.
    static let samplers = [
        "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
        "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
        "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
        "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
        "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
        "uni_pc_bh2",
    ]
    static let schedulers = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal"]

    /// Each number input's options as ComfyUI gives them (default, min, max).
    static let numbers: [String: JSONObject] = [
        "seed": ["default": 0, "min": 0, "max": .number(JSONNumber(UInt64.max)), "control_after_generate": true],
        "noise_seed": ["default": 0, "min": 0, "max": .number(JSONNumber(UInt64.max)), "control_after_generate": true],
        "steps": ["default": 20, "min": 1, "max": 10000], "cfg": ["default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1],
        "denoise": ["default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01], "width": ["default": 512, "min": 16, "max": 16384, "step": 8],
        "height": ["default": 512, "min": 16, "max": 16384, "step": 8], "batch_size": ["default": 1, "min": 1, "max": 4096],
        "strength_model": ["default": 1.0, "min": -100.0, "max": 100.0], "strength_clip": ["default": 1.0, "min": -100.0, "max": 100.0],
        "scale_by": ["default": 1.0, "min": 0.01, "max": 8.0], "grow_mask_by": ["default": 6, "min": 0, "max": 64],
        "start_at_step": ["default": 0, "min": 0, "max": 10000], "end_at_step": ["default": 10000, "min": 0, "max": 10000],
    ]

    /// `GET /object_info` in ComfyUI's shape (inputs in `required` and `optional`, order, outputs,
    /// output_node, category), with the lists and ranges pre-flight checks against: samplers and
    /// schedulers, the checkpoints of `--models` (an empty list when any name is accepted), number
    /// limits. Inputs naming an input-folder file list `inputFiles` with their upload flag, as
    /// ComfyUI's `LoadImage` does.
    public static func objectInfo(inputFiles: [String] = [], models: Set<String>? = nil) -> JSONValue {
        var object = JSONObject()
        for name in classes.keys.sorted() {
            let node = classes[name]!
            var required = JSONObject()
            var optional = JSONObject()
            for input in node.required {
                let spec: JSONValue
                if let flag = node.uploads[input.name] {
                    spec = [.array(inputFiles.map { .string($0) }), .object([flag: true])]
                } else if let values = node.choices[input.name] ?? choices(input.name, models: models) {
                    spec = [.array(values.map { .string($0) }), [:]]
                } else if let options = numbers[input.name], input.type == "INT" || input.type == "FLOAT" {
                    spec = [.string(input.type), .object(options)]
                } else {
                    spec = [.string(input.type), [:]]
                }
                if defaults.contains(input.name) { optional[input.name] = spec } else { required[input.name] = spec }
            }
            let order = node.required.map(\.name)
            object[name] = [
                "input": ["required": .object(required), "optional": .object(optional)],
                "input_order": [
                    "required": .array(order.filter { !defaults.contains($0) }.map { .string($0) }),
                    "optional": .array(order.filter { defaults.contains($0) }.map { .string($0) }),
                ],
                "output": .array(node.outputs.map { .string($0) }),
                "output_is_list": .array(node.outputs.map { _ in false }),
                "output_name": .array(node.outputs.map { .string($0) }),
                "name": .string(name), "display_name": .string(displayNames[name] ?? name), "description": "", "python_module": "nodes",
                "category": .string(node.category), "output_node": .bool(node.isOutput),
            ]
        }
        return .object(object)
    }

    /// The values a list input offers, when the simulator knows them.
    static func choices(_ input: String, models: Set<String>?) -> [String]? {
        switch input {
        case "sampler_name": samplers
        case "scheduler": schedulers
        case "ckpt_name": models.map { $0.sorted() }
        default: nil
        }
    }
}

/// Why the simulator refuses a prompt: ComfyUI's 400 body.
struct ValidationFailure: Error {
    var body: JSONValue
}

/// A prompt checked against the catalog and ready to run.
struct ValidatedPrompt: Sendable {
    var workflow: Workflow
    /// Output node ids to execute.
    var outputs: [String]
    /// Nodes to run, in a topological order (each after what it reads).
    var order: [String]
}

enum PromptValidator {
    static func validate(
        _ json: JSONValue?, knownModels: Set<String>?, inputDirectory: String? = nil, profile: ComfyUIProfile = .v0_38
    ) throws(ValidationFailure) -> ValidatedPrompt {
        func failure(_ type: String, _ message: String, _ details: String, nodeErrors: JSONObject = [:], extra: JSONObject = [:]) -> ValidationFailure {
            ValidationFailure(body: [
                "error": ["type": .string(type), "message": .string(message), "details": .string(details), "extra_info": .object(extra)],
                "node_errors": .object(nodeErrors),
            ])
        }
        guard let json, case .object(let graph) = json else { throw failure("no_prompt", "No prompt provided", "No prompt provided") }
        for (id, node) in graph {
            let title = node["_meta"]?["title"]?.stringValue
            guard let classType = node["class_type"]?.stringValue else {
                if profile == .v0_38 {
                    throw failure(
                        "missing_node_type", "Node '\(title ?? "ID #\(id)")' has no class_type. The workflow may be corrupted or a custom node is missing.",
                        "Node ID '#\(id)'", extra: ["node_id": .string(id), "class_type": .null, "node_title": title.map { .string($0) } ?? .null])
                }
                throw failure(
                    "invalid_prompt", "Cannot execute because a node is missing the class_type property.", "Node ID '#\(id)'")
            }
            guard NodeCatalog.classes[classType] != nil else {
                if profile == .v0_38 {
                    throw failure(
                        "missing_node_type", "Node '\(title ?? "ID #\(id)")' not found. The custom node may not be installed.", "Node ID '#\(id)'",
                        extra: ["node_id": .string(id), "class_type": .string(classType), "node_title": title.map { .string($0) } ?? .null])
                }
                throw failure("invalid_prompt", "Cannot execute because node \(classType) does not exist.", "Node ID '#\(id)'")
            }
        }
        let workflow: Workflow
        do { workflow = try Workflow(json: json) } catch {
            throw failure("invalid_prompt", "Cannot execute because the prompt is malformed.", "\(error)")
        }
        let outputs = workflow.orderedNodes.filter { NodeCatalog.classes[$0.classType]!.isOutput }.map(\.id)
        guard !outputs.isEmpty else { throw failure("prompt_no_outputs", "Prompt has no outputs", "") }
        if profile == .v0_38, let cycle = cycle(in: workflow) {
            throw failure(
                "dependency_cycle", "Dependency cycle detected", "Nodes \(cycle.map { "#\($0)" }.joined(separator: " → ")) depend on each other",
                extra: ["node_ids": .array(cycle.map { .string($0) })])
        }

        var nodeErrors = JSONObject()
        for node in workflow.orderedNodes {
            let errors = problems(node, in: workflow, knownModels: knownModels, inputDirectory: inputDirectory)
            guard !errors.isEmpty else { continue }
            let dependents = outputs.filter { ancestors(of: $0, in: workflow).contains(node.id) || $0 == node.id }
            nodeErrors[node.id] = [
                "errors": .array(errors), "dependent_outputs": .array(dependents.map { .string($0) }),
                "class_type": .string(node.classType),
            ]
        }
        if !nodeErrors.isEmpty {
            throw failure("prompt_outputs_failed_validation", "Prompt outputs failed validation", "", nodeErrors: nodeErrors)
        }
        var order: [String] = []
        var seen: Set<String> = []
        for output in outputs { visit(output, workflow, &seen, &order) }
        return ValidatedPrompt(workflow: workflow, outputs: outputs, order: order)
    }

    /// One node's input problems, as ComfyUI reports them.
    static func problems(_ node: WorkflowNode, in workflow: Workflow, knownModels: Set<String>?, inputDirectory: String?) -> [JSONValue] {
        let nodeClass = NodeCatalog.classes[node.classType]!
        var errors: [JSONValue] = []
        func error(_ type: String, _ message: String, _ details: String, _ input: String, _ extra: JSONObject = [:]) {
            var info: JSONObject = ["input_name": .string(input)]
            for (key, value) in extra { info[key] = value }
            errors.append(["type": .string(type), "message": .string(message), "details": .string(details), "extra_info": .object(info)])
        }
        for input in nodeClass.required {
            guard let value = node.inputs[input.name] else {
                if !NodeCatalog.defaults.contains(input.name) {
                    error("required_input_missing", "Required input is missing", input.name, input.name)
                }
                continue
            }
            if let link = Workflow.link(in: value) {
                guard let source = workflow[link.node], let sourceClass = NodeCatalog.classes[source.classType] else {
                    error("bad_linked_input", "Bad linked input, the linked node does not exist", "\(input.name): node \(link.node)", input.name)
                    continue
                }
                let produced = link.slot >= 0 && link.slot < sourceClass.outputs.count ? sourceClass.outputs[link.slot] : "?"
                if produced != input.type {
                    error(
                        "return_type_mismatch", "Return type mismatch between linked nodes",
                        "\(input.name), received_type(\(produced)) mismatch input_type(\(input.type))", input.name,
                        ["received_type": .string(produced), "linked_node": value])
                }
                continue
            }
            if ["steps", "width", "height", "batch_size"].contains(input.name), let number = value.numberValue?.int, number < 1 {
                error("value_smaller_than_min", "Value \(number) smaller than min of 1", input.name, input.name, ["received_value": value])
            }
            if nodeClass.uploads[input.name] != nil, let inputDirectory {
                // LoadImage's VALIDATE_INPUTS: the file must be in the input folder.
                let name = value.stringValue ?? value.serialized()
                let safe = !name.hasPrefix("/") && !name.split(separator: "/").contains("..")
                if !safe || !InputFolder.exists(name, in: inputDirectory) {
                    error(
                        "custom_validation_failed", "Custom validation failed for node", "\(input.name) - Invalid image file: \(name)", input.name,
                        ["input_config": [.string("COMBO"), [:]], "received_value": value])
                }
                continue
            }
            if let values = nodeClass.choices[input.name] ?? NodeCatalog.choices(input.name, models: nil), let text = value.stringValue, !values.contains(text) {
                let list = values.map { "'\($0)'" }.joined(separator: ", ")
                error("value_not_in_list", "Value not in list", "\(input.name): '\(text)' not in [\(list)]", input.name, ["received_value": value])
            }
            if input.name == "ckpt_name", let knownModels, let name = value.stringValue, !knownModels.contains(name) {
                let list = knownModels.sorted().map { "'\($0)'" }.joined(separator: ", ")
                error("value_not_in_list", "Value not in list", "ckpt_name: '\(name)' not in [\(list)]", input.name, ["received_value": value])
            }
        }
        return errors
    }

    /// A cycle of links, as the nodes on it (nil: none).
    static func cycle(in workflow: Workflow) -> [String]? {
        var state: [String: Bool] = [:]  // false: on the current path, true: done
        var path: [String] = []
        func visit(_ id: String) -> [String]? {
            if state[id] == true { return nil }
            if state[id] == false { return Array(path[(path.firstIndex(of: id) ?? 0)...]) + [id] }
            state[id] = false
            path.append(id)
            for source in workflow[id]?.linkedNodeIDs ?? [] { if let found = visit(source) { return found } }
            path.removeLast()
            state[id] = true
            return nil
        }
        for id in workflow.order { if let found = visit(id) { return found } }
        return nil
    }

    static func ancestors(of id: String, in workflow: Workflow) -> Set<String> {
        var found: Set<String> = []
        var stack = [id]
        while let next = stack.popLast() {
            for source in workflow[next]?.linkedNodeIDs ?? [] where found.insert(source).inserted { stack.append(source) }
        }
        return found
    }

    private static func visit(_ id: String, _ workflow: Workflow, _ seen: inout Set<String>, _ order: inout [String]) {
        guard seen.insert(id).inserted, let node = workflow[id] else { return }
        for source in node.linkedNodeIDs { visit(source, workflow, &seen, &order) }
        order.append(id)
    }

    /// A node's cache key: its class, its literal inputs and, recursively, the keys of what it
    /// reads (ComfyUI reuses a node's output when this is unchanged since the last prompt).
    static func signatures(_ workflow: Workflow) -> [String: String] {
        var memo: [String: String] = [:]
        func signature(_ id: String, depth: Int) -> String {
            if let known = memo[id] { return known }
            guard let node = workflow[id], depth < 1000 else { return "?" }
            var parts = [node.classType]
            for (name, value) in node.inputs {
                if let link = Workflow.link(in: value) {
                    parts.append("\(name)=<\(signature(link.node, depth: depth + 1))>.\(link.slot)")
                } else {
                    parts.append("\(name)=\(value.serialized())")
                }
            }
            let result = parts.joined(separator: ";")
            memo[id] = result
            return result
        }
        for id in workflow.order { _ = signature(id, depth: 0) }
        return memo
    }
}

/// The simulator's input folder, as `LoadImage` reads it.
enum InputFolder {
    static func exists(_ name: String, in directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
