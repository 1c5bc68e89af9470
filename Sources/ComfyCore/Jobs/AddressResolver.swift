/// Why an address does not name an input.
public struct AddressProblem: Error, Sendable, Equatable {
    public var message: String
}

/// Turns `NODE.input` into a node id and an input: NODE is a node id, a `_meta.title`, or a
/// class_type that is unique in the graph. The last `.` separates the input, so titles may
/// contain dots.
public struct AddressResolver: Sendable {
    public let workflow: Workflow

    public init(workflow: Workflow) { self.workflow = workflow }

    public func resolve(_ written: String) -> Result<ParameterAddress, AddressProblem> {
        guard let dot = written.lastIndex(of: "."), dot != written.startIndex, written.index(after: dot) != written.endIndex else {
            return .failure(AddressProblem(message: "\(Self.quote(written)) is not NODE.input (e.g. \"KSampler.seed\", \"6.text\")"))
        }
        let nodePart = String(written[..<dot])
        let input = String(written[written.index(after: dot)...])
        let node: WorkflowNode
        if let byID = workflow[nodePart] {
            node = byID
        } else {
            let titled = workflow.orderedNodes.filter { $0.title == nodePart }
            let typed = workflow.orderedNodes.filter { $0.classType == nodePart }
            if titled.count == 1 {
                node = titled[0]
            } else if titled.count > 1 {
                return .failure(AddressProblem(message: "the title \(Self.quote(nodePart)) is used by nodes \(Self.list(titled)); use a node id"))
            } else if typed.count == 1 {
                node = typed[0]
            } else if typed.count > 1 {
                return .failure(
                    AddressProblem(message: "\(nodePart) is not unique (nodes \(Self.list(typed))); use a node id or a title"))
            } else {
                return .failure(AddressProblem(message: "no node has the id, title or class \(Self.quote(nodePart))"))
            }
        }
        guard let value = node.inputs[input] else {
            let names = node.inputs.keys.filter { Workflow.link(in: node.inputs[$0]!) == nil }
            let shown = names.prefix(8).joined(separator: ", ") + (names.count > 8 ? ", …" : "")
            return .failure(AddressProblem(message: "\(node.displayName) has no input \(Self.quote(input)) (inputs: \(shown))"))
        }
        if let link = Workflow.link(in: value) {
            return .failure(
                AddressProblem(message: "\(node.displayName).\(input) is a link to node \(link.node); only literal inputs can be set"))
        }
        return .success(ParameterAddress(nodeID: node.id, input: input, written: written))
    }

    /// The seed input when a job does not name one: the only node with a literal `seed` or
    /// `noise_seed`.
    public func seedInput() -> Result<ParameterAddress, AddressProblem> {
        var found: [ParameterAddress] = []
        for node in workflow.orderedNodes {
            for name in ["seed", "noise_seed"] {
                if let value = node.inputs[name], Workflow.link(in: value) == nil {
                    found.append(ParameterAddress(nodeID: node.id, input: name, written: "\(node.id).\(name)"))
                }
            }
        }
        switch found.count {
        case 1: return .success(found[0])
        case 0: return .failure(AddressProblem(message: "no node has a seed input; name one with \"input\": \"NODE.seed\""))
        default:
            return .failure(
                AddressProblem(
                    message: "several nodes have a seed (\(found.map(\.nodeID).joined(separator: ", "))); name one with \"input\": \"NODE.seed\""))
        }
    }

    /// Whether `value` fits the input's current literal: numbers for numbers (whole numbers for
    /// whole numbers), text for text, booleans for booleans.
    public func typeProblem(_ value: JSONValue, for address: ParameterAddress) -> String? {
        guard let current = workflow[address.nodeID]?.inputs[address.input] else { return nil }
        switch (current, value) {
        case (.number(let existing), .number(let new)):
            if existing.isInteger && !new.isInteger { return "\(address) expects a whole number, got \(new.literal)" }
            return nil
        case (.string, .string), (.bool, .bool), (.null, _): return nil
        case (.array, .array), (.object, .object): return nil
        default:
            return "\(address) expects \(current.kindName) (the workflow has \(current.serialized())), got \(value.kindName)"
        }
    }

    static func quote(_ text: String) -> String { "\"\(text)\"" }
    static func list(_ nodes: [WorkflowNode]) -> String { nodes.map(\.id).joined(separator: ", ") }
}

/// Output file-name templates: `{job}_{index}_{seed}`.
public enum OutputTemplate {
    static let builtIn: Set<String> = ["job", "index", "seed", "date", "n", "item"]

    /// Tokens for a job with input files: the (first) input file's stem and its folder's name.
    static let inputTokens: Set<String> = ["input", "input_dir"]

    /// Every problem with a template: unknown tokens, absolute paths, `..`.
    public static func problems(_ template: String, parameters: [ParameterAddress], inputFiles: Bool = false) -> [String] {
        var problems: [String] = []
        if template.isEmpty { problems.append("must not be empty") }
        if template.hasPrefix("/") { problems.append("must be relative to the output folder, not start with /") }
        if template.split(separator: "/").contains(where: { $0 == ".." }) {
            problems.append("must not contain '..': outputs stay inside the output folder")
        }
        let known = Set(parameters.flatMap { [$0.written, $0.input] }).union(builtIn).union(inputFiles ? inputTokens : [])
        for token in tokens(template) where !known.contains(token) {
            if inputTokens.contains(token) {
                problems.append("{\(token)} needs an input file ({file: …} or {files: …}) among the job's values")
                continue
            }
            problems.append("unknown token {\(token)} (tokens: \(known.sorted().joined(separator: ", ")))")
        }
        return problems
    }

    static func tokens(_ template: String) -> [String] {
        var tokens: [String] = []
        var current: String?
        for character in template {
            if character == "{" {
                current = ""
            } else if character == "}", let token = current {
                tokens.append(token)
                current = nil
            } else if current != nil {
                current!.append(character)
            }
        }
        return tokens
    }

    /// Fills a template. Values are made safe for a file name: separators and `..` never survive.
    public static func render(_ template: String, values: [String: String]) -> String {
        var out = ""
        var current: String?
        for character in template {
            if character == "{" {
                current = ""
            } else if character == "}", let token = current {
                out += sanitize(values[token] ?? token)
                current = nil
            } else if current != nil {
                current!.append(character)
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// A value as a file-name part: path separators, control characters and leading dots replaced.
    public static func sanitize(_ value: String) -> String {
        var text = String(value.map { character -> Character in
            if character == "/" || character == "\\" || character == ":" || character.asciiValue.map({ $0 < 0x20 }) == true { return "_" }
            return character
        })
        while text.hasPrefix(".") { text = "_" + text.dropFirst() }
        return String(text.prefix(120))
    }
}
