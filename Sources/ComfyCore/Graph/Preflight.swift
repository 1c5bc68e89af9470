/// What a server would reject in a graph, found before anything is queued: node types it does
/// not have, values not in a list (checkpoints, LoRAs, samplers…), numbers out of range, required
/// inputs missing, values or links of the wrong type. Pure; `PreflightReport` runs it over jobs.
public struct PreflightFinding: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case unknownNode(classType: String)
        case notAnOption(input: String, value: String, closest: [String])
        case outOfRange(input: String, value: String, min: Double?, max: Double?)
        case missingInput(input: String)
        case wrongType(input: String, value: String, expected: String)
    }

    public var nodeID: String
    /// `KSampler` or the node's title.
    public var node: String
    public var kind: Kind

    /// The input the finding is about, if it is about one.
    public var input: String? {
        switch kind {
        case .unknownNode: nil
        case .notAnOption(let input, _, _), .outOfRange(let input, _, _, _), .missingInput(let input), .wrongType(let input, _, _): input
        }
    }

    /// One line, with the servers it holds on: `'eulr' is not a sampler on gpu0; did you mean 'euler'?`
    /// (the closest values only with `suggest`: not for a model some other server has).
    public func message(on servers: String, suggest: Bool = true) -> String {
        let place = "node \(nodeID) \(node)"
        switch kind {
        case .unknownNode(let type):
            return "node type \(type) is not on \(servers) (\(place); a custom node that is not installed?)"
        case .notAnOption(let input, let value, let closest):
            let suggestion = closest.isEmpty || !suggest ? "" : "; did you mean \(closest.map { "'\($0)'" }.joined(separator: " or "))?"
            return "'\(value)' is not \(Self.article(Self.noun(input))) on \(servers) (\(place).\(input))\(suggestion)"
        case .outOfRange(let input, let value, let min, let max):
            let range = [min.map { "at least \(Self.number($0))" }, max.map { "at most \(Self.number($0))" }].compactMap { $0 }.joined(separator: " and ")
            return "\(place).\(input) = \(value) is out of range on \(servers): it must be \(range)"
        case .missingInput(let input):
            return "\(place) has no value for its required input \(input) (\(servers) needs one)"
        case .wrongType(let input, let value, let expected):
            return "\(place).\(input) = \(value) is not \(expected) (on \(servers))"
        }
    }

    /// What a list input holds, for messages: `sampler_name` → sampler, `ckpt_name` → checkpoint.
    static func noun(_ input: String) -> String {
        let nouns = [
            "sampler_name": "sampler", "scheduler": "scheduler", "ckpt_name": "checkpoint", "lora_name": "LoRA", "vae_name": "VAE",
            "unet_name": "diffusion model", "clip_name": "text encoder", "clip_name1": "text encoder", "clip_name2": "text encoder",
            "control_net_name": "ControlNet", "model_name": "model", "style_model_name": "style model", "clip_vision": "CLIP vision model",
            "upscale_model": "upscale model", "image": "file in the input folder", "audio": "file in the input folder",
            "video": "file in the input folder", "file": "file in the input folder",
        ]
        return nouns[input] ?? "value of \(input)"
    }

    static func article(_ noun: String) -> String { "aeiou".contains(noun.first ?? "x") ? "an \(noun)" : "a \(noun)" }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

public enum Preflight {
    /// Every finding in `workflow` against `definitions`, inputs listed in `skipping` aside (those
    /// an item sets are checked with `check(value:…)` instead).
    public static func check(_ workflow: Workflow, against definitions: NodeDefinitions, skipping: Set<ParameterKey> = []) -> [PreflightFinding] {
        var findings: [PreflightFinding] = []
        for node in workflow.orderedNodes {
            guard let definition = definitions[node.classType] else {
                findings.append(PreflightFinding(nodeID: node.id, node: node.displayName, kind: .unknownNode(classType: node.classType)))
                continue
            }
            for input in definition.inputs where input.required && node.inputs[input.name] == nil {
                guard !skipping.contains(ParameterKey(node.id, input.name)) else { continue }
                findings.append(PreflightFinding(nodeID: node.id, node: node.displayName, kind: .missingInput(input: input.name)))
            }
            for (name, value) in node.inputs where !skipping.contains(ParameterKey(node.id, name)) {
                if let finding = check(value: value, node: node, input: name, in: workflow, against: definitions) { findings.append(finding) }
            }
        }
        return findings
    }

    /// The finding for one input's value, if any. A link is checked against the type of the
    /// output it comes from; a local file (uploaded at submit time) is not checked here.
    public static func check(value: JSONValue, node: WorkflowNode, input name: String, in workflow: Workflow, against definitions: NodeDefinitions)
        -> PreflightFinding?
    {
        guard let definition = definitions[node.classType], let input = definition.input(named: name) else { return nil }
        func finding(_ kind: PreflightFinding.Kind) -> PreflightFinding { PreflightFinding(nodeID: node.id, node: node.displayName, kind: kind) }
        if let link = Workflow.link(in: value) {
            guard let origin = workflow[link.node], let outputs = definitions[origin.classType]?.outputs, link.slot < outputs.count else { return nil }
            let type = outputs[link.slot]
            let expected = input.typeName
            if !typesMatch(type, expected) {
                return finding(.wrongType(input: name, value: "a \(type) from node \(origin.id)", expected: "a \(expected)"))
            }
            return nil
        }
        if InputFile(json: value) != nil { return nil }
        let shown = value.stringValue ?? value.serialized()
        switch input.kind {
        case .int, .float:
            guard let number = value.numberValue?.double else {
                return finding(.wrongType(input: name, value: value.serialized(), expected: input.kind == .int ? "a whole number" : "a number"))
            }
            if input.kind == .int, number != number.rounded() {
                return finding(.wrongType(input: name, value: shown, expected: "a whole number"))
            }
            if let min = input.min, number < min { return finding(.outOfRange(input: name, value: shown, min: input.min, max: input.max)) }
            if let max = input.max, number > max { return finding(.outOfRange(input: name, value: shown, min: input.min, max: input.max)) }
        case .boolean:
            if value.boolValue == nil { return finding(.wrongType(input: name, value: value.serialized(), expected: "true or false")) }
        case .string:
            if value.stringValue == nil && value.numberValue == nil {
                return finding(.wrongType(input: name, value: value.serialized(), expected: "text"))
            }
        case .combo(let options):
            // A list the server left empty (files it lists elsewhere) cannot be checked.
            guard !options.isEmpty else { return nil }
            let text = value.stringValue ?? value.numberValue?.literal ?? value.serialized()
            if !definition.optionSet(name).contains(text) {
                return finding(.notAnOption(input: name, value: text, closest: closest(to: text, in: options)))
            }
        case .other: break
        }
        return nil
    }

    /// Link types as ComfyUI checks them: equal, `*` on either side, or a shared member of
    /// comma-separated lists.
    static func typesMatch(_ output: String, _ input: String) -> Bool {
        if output == "*" || input == "*" || output == input { return true }
        let outputs = Set(output.split(separator: ","))
        return input.split(separator: ",").contains { outputs.contains($0) }
    }

    /// Up to three valid values closest to a mistyped one (edit distance, case aside; a
    /// model's folder and file extension aside), or none when nothing is near.
    public static func closest(to text: String, in options: [String]) -> [String] {
        func key(_ value: String) -> [Character] {
            var base = (value.split(separator: "/").last.map(String.init) ?? value).lowercased()
            if let dot = base.lastIndex(of: "."), dot > base.startIndex {
                let suffix = base[base.index(after: dot)...]
                if !suffix.isEmpty && suffix.count <= 12 && suffix.allSatisfy(\.isLetter) { base = String(base[..<dot]) }
            }
            return Array(base)
        }
        let target = key(text)
        let limit = max(2, target.count / 3)
        let scored = options.map { ($0, distance(key($0), target)) }.filter { $0.1 <= limit }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(3).map(\.0)
    }

    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// A node's input, as a key.
public struct ParameterKey: Sendable, Hashable {
    public var node: String
    public var input: String
    public init(_ node: String, _ input: String) {
        self.node = node
        self.input = input
    }
}
