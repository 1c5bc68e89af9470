/// What a prompt makes its server load: every input that names a model file (a checkpoint,
/// UNet, VAE, CLIP, LoRA, ControlNet, upscale model… wherever it appears), with a LoRA's
/// strengths. Two items with the same key need no load between them on one server; a server
/// switching keys loads (ComfyUI runs a loader again whenever its input changed).
///
/// The rule: an input whose value is a string ending in a model file extension (`.safetensors`,
/// `.ckpt`, `.pt`, `.pth`, `.bin`, `.gguf`, `.sft`, `.onnx`) counts as `input=file`; on the same
/// node, numeric `strength`, `strength_model` and `strength_clip` inputs are added as
/// `@strength_model/strength_clip`. Entries are sorted and joined with ` + `; a graph that loads
/// nothing has the empty key.
public struct ModelKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let description: String

    public init(_ text: String) { description = text }

    public static func < (lhs: ModelKey, rhs: ModelKey) -> Bool { lhs.description < rhs.description }

    static let extensions = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx"]
    static let strengths = ["strength", "strength_model", "strength_clip"]

    /// A strength as one text however it was written: `1`, `1.0` and `1e0` are one strength.
    static func format(_ number: JSONNumber) -> String {
        let value = number.double
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// Whether a value names a model file.
    public static func isModelFile(_ value: JSONValue) -> Bool {
        guard let text = value.stringValue?.lowercased() else { return false }
        return extensions.contains { text.hasSuffix($0) }
    }

    /// The key of a whole graph.
    public init(_ workflow: Workflow) {
        self = ModelKey.Template(workflow).key(with: [])
    }

    /// The model-file inputs of a job's graph, found once, so each item's key (the graph with
    /// its parameters) costs a few dictionary writes instead of a copy of the graph.
    public struct Template: Sendable {
        /// Per node with a model file: its model-file inputs and its strength inputs.
        private var nodes: [String: (files: [String: String], strengths: [String: String])] = [:]
        /// Inputs that could become model files through parameters (any string input).
        private let graph: Workflow

        public init(_ workflow: Workflow) {
            graph = workflow
            for node in workflow.orderedNodes {
                var files: [String: String] = [:]
                var strengths: [String: String] = [:]
                for (input, value) in node.inputs {
                    if ModelKey.isModelFile(value), let text = value.stringValue { files[input] = text }
                    if ModelKey.strengths.contains(input), let number = value.numberValue { strengths[input] = ModelKey.format(number) }
                }
                if !files.isEmpty { nodes[node.id] = (files, strengths) }
            }
        }

        /// The key with an item's parameters applied (each an address and its value).
        public func key(with parameters: [(address: ParameterAddress, value: JSONValue)]) -> ModelKey {
            var nodes = self.nodes
            for (address, value) in parameters {
                if ModelKey.isModelFile(value), let text = value.stringValue {
                    let strengths = nodes[address.nodeID]?.strengths ?? Self.strengths(of: graph[address.nodeID])
                    var entry = nodes[address.nodeID] ?? ([:], strengths)
                    entry.files[address.input] = text
                    nodes[address.nodeID] = entry
                } else if ModelKey.strengths.contains(address.input), let number = value.numberValue {
                    nodes[address.nodeID]?.strengths[address.input] = ModelKey.format(number)
                } else if nodes[address.nodeID]?.files[address.input] != nil {
                    // A model input set to something that is not a model file: it loads nothing.
                    nodes[address.nodeID]?.files[address.input] = nil
                }
            }
            var entries: [String] = []
            for (_, node) in nodes {
                let strength = ModelKey.strengths.compactMap { node.strengths[$0] }.joined(separator: "/")
                for (input, file) in node.files { entries.append("\(input)=\(file)" + (strength.isEmpty ? "" : "@\(strength)")) }
            }
            return ModelKey(Array(Set(entries)).sorted().joined(separator: " + "))
        }

        static func strengths(of node: WorkflowNode?) -> [String: String] {
            var result: [String: String] = [:]
            for name in ModelKey.strengths { if let number = node?.inputs[name]?.numberValue { result[name] = ModelKey.format(number) } }
            return result
        }
    }
}

extension JobSpec {
    /// Each item's model key, in item order (the graph with the item's parameters).
    public func modelKeys(_ items: [JobItem]) -> [ModelKey] {
        let template = ModelKey.Template(workflow)
        let addresses = self.addresses
        return items.map { item in
            template.key(with: item.parameters.compactMap { written, value in addresses[written].map { ($0, value) } })
        }
    }
}

extension ModelKey {
    /// Loads one server makes running items with these keys in this order: one at the start and
    /// one at every change of key.
    public static func loads(inOrder keys: [ModelKey]) -> Int {
        zip(keys, [nil] + keys.map(Optional.some)).filter { $0.0 != $0.1 }.count
    }
}
