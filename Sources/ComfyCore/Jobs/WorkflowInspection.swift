/// What `comfyq inspect` shows of a workflow: every node in order with its inputs, each literal
/// input with the address to write in `--set`, `--matrix` or a job file, links as links, the
/// input the seed axis takes, the output nodes; with a server's definitions, each input's type,
/// range and allowed values, and the nodes the server lacks. Pure: built from values.
public struct WorkflowInspection: Sendable {
    public struct Input: Sendable, Equatable {
        public var name: String
        /// Its literal value (nil for a link).
        public var value: JSONValue?
        /// The node and output slot it is linked to.
        public var link: (node: String, slot: Int)?
        /// The shortest address that names it (nil for a link).
        public var address: String?
        /// From the server's definitions: `INT 1…10000`, `one of 3: euler, …`.
        public var type: String?

        public static func == (lhs: Input, rhs: Input) -> Bool {
            lhs.name == rhs.name && lhs.value == rhs.value && lhs.address == rhs.address && lhs.type == rhs.type
                && lhs.link?.node == rhs.link?.node && lhs.link?.slot == rhs.link?.slot
        }
    }

    public struct Node: Sendable, Equatable {
        public var id: String
        public var title: String?
        public var classType: String
        public var inputs: [Input]
        public var isOutput: Bool
        /// The server's definitions lack its class.
        public var missing: Bool
    }

    public var nodes: [Node]
    /// The address the seed axis (`--seeds`, `seeds:`) takes, or why there is none.
    public var seed: Result<String, AddressProblem>
    /// Where the definitions came from (nil: none were asked for).
    public var definitionsOrigin: String?

    public init(workflow: Workflow, definitions: NodeDefinitions? = nil, origin: String? = nil) {
        let resolver = AddressResolver(workflow: workflow)
        definitionsOrigin = definitions == nil ? nil : origin
        nodes = workflow.orderedNodes.map { node in
            let definition = definitions?[node.classType]
            let inputs = node.inputs.map { name, value in
                let link = Workflow.link(in: value)
                return Input(
                    name: name, value: link == nil ? value : nil, link: link,
                    address: link == nil ? resolver.shortestAddress(of: node, input: name) : nil,
                    type: definition?.input(named: name).map(Self.describe))
            }
            return Node(
                id: node.id, title: node.title, classType: node.classType, inputs: inputs,
                isOutput: definition?.isOutputNode ?? PromptPlan.isOutputClass(node.classType),
                missing: definitions != nil && definition == nil)
        }
        seed = resolver.seedInput().map { address in
            workflow[address.nodeID].map { resolver.shortestAddress(of: $0, input: address.input) } ?? address.written
        }
    }

    /// `INT 1…10000`, `FLOAT 0…100`, `one of 3: a, b, c` (long lists shortened, with the count).
    static func describe(_ input: InputDefinition) -> String {
        func number(_ value: Double) -> String { value.rounded() == value && abs(value) < 1e18 ? String(Int64(value)) : "\(value)" }
        func range(_ type: String) -> String {
            switch (input.min, input.max) {
            case (let low?, let high?): "\(type) \(number(low))…\(number(high))"
            case (let low?, nil): "\(type) ≥ \(number(low))"
            case (nil, let high?): "\(type) ≤ \(number(high))"
            case (nil, nil): type
            }
        }
        switch input.kind {
        case .int: return range("INT")
        case .float: return range("FLOAT")
        case .boolean: return "BOOLEAN"
        case .string: return "STRING"
        case .combo(let values):
            let shown = values.prefix(6).joined(separator: ", ")
            return "one of \(values.count)\(values.isEmpty ? "" : ": \(shown)\(values.count > 6 ? ", …" : "")")"
        case .other(let type): return type
        }
    }

    // MARK: Showing it

    /// One line a node, then one a literal input (its address to the right), links as
    /// `← node, output n`.
    public var lines: [String] {
        var lines: [String] = []
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let width = nodes.flatMap(\.inputs).map(\.name.count).max() ?? 0
        func shown(_ value: JSONValue?) -> String {
            let text = value.map { $0.serialized() } ?? "null"
            return text.count > 48 ? String(text.prefix(45)) + "…" + (text.hasPrefix("\"") ? "\"" : "") : text
        }
        let valueWidth = nodes.flatMap(\.inputs).filter { $0.link == nil }.map { shown($0.value).count }.max() ?? 0
        for node in nodes {
            var head = "\(node.id)  \(node.title ?? node.classType)"
            if node.title != nil && node.title != node.classType { head += " (\(node.classType))" }
            if node.isOutput { head += "  [output]" }
            if node.missing { head += "  [not on the server: \(definitionsOrigin ?? "its definitions")]" }
            lines.append(head)
            for input in node.inputs {
                let name = input.name + String(repeating: " ", count: max(0, width - input.name.count))
                if let link = input.link {
                    let source = byID[link.node].map { $0.title ?? $0.classType } ?? "?"
                    lines.append("    \(name)  ← \(link.node) \(source), output \(link.slot)")
                    continue
                }
                let value = shown(input.value)
                var line = "    \(name)  \(value)"
                if input.address != nil || input.type != nil { line += String(repeating: " ", count: max(0, valueWidth - value.count)) }
                if let address = input.address { line += "    \(address)" }
                if let type = input.type { line += "    \(type)" }
                if case .success(let seed) = seed, seed == input.address { line += "    ← the seed axis" }
                lines.append(line)
            }
        }
        let outputs = nodes.filter(\.isOutput).map { "\($0.id) \($0.title ?? $0.classType)" }
        lines.append("outputs: \(outputs.isEmpty ? "none (ComfyUI refuses a prompt without one)" : outputs.joined(separator: ", "))")
        switch seed {
        case .success(let address): lines.append("seeds: --seeds sweeps \(address)")
        case .failure(let problem): lines.append("seeds: \(problem.message)")
        }
        return lines
    }

    public var json: JSONValue {
        var object: JSONObject = [
            "nodes": .array(
                nodes.map { node in
                    var entry: JSONObject = ["id": .string(node.id), "class_type": .string(node.classType), "output": .bool(node.isOutput)]
                    entry["title"] = node.title.map { .string($0) } ?? .null
                    if definitionsOrigin != nil { entry["on_server"] = .bool(!node.missing) }
                    entry["inputs"] = .array(
                        node.inputs.map { input in
                            var item: JSONObject = ["name": .string(input.name)]
                            if let link = input.link {
                                item["link"] = ["node": .string(link.node), "output": .int(link.slot)]
                            } else {
                                item["value"] = input.value ?? .null
                                item["address"] = input.address.map { .string($0) } ?? .null
                            }
                            if let type = input.type { item["type"] = .string(type) }
                            return .object(item)
                        })
                    return .object(entry)
                }),
            "outputs": .array(nodes.filter(\.isOutput).map { .string($0.id) }),
        ]
        switch seed {
        case .success(let address): object["seed"] = .string(address)
        case .failure: object["seed"] = .null
        }
        if let definitionsOrigin { object["definitions"] = .string(definitionsOrigin) }
        return .object(object)
    }
}

extension AddressResolver {
    /// The address to write for a node's input: its title when that names it alone (`Positive
    /// prompt.text`), else its class when that does (`KSampler.seed`), else its id (`6.text`).
    public func shortestAddress(of node: WorkflowNode, input: String) -> String {
        for candidate in [node.title, node.classType].compactMap({ $0 }) where !candidate.isEmpty {
            if case .success(let address) = resolve("\(candidate).\(input)"), address.nodeID == node.id { return "\(candidate).\(input)" }
        }
        return "\(node.id).\(input)"
    }
}
