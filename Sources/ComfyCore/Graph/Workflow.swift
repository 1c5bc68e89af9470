/// One node of a ComfyUI API-format graph.
public struct WorkflowNode: Sendable, Equatable {
    /// The node id (the graph's key), e.g. `"3"`.
    public var id: String
    /// The node class, e.g. `"KSampler"`.
    public var classType: String
    /// `_meta.title`, when the graph carries one.
    public var title: String?
    /// The node's inputs in document order: literals, or links written `["<node id>", <slot>]`.
    public var inputs: JSONObject

    public init(id: String, classType: String, title: String? = nil, inputs: JSONObject = JSONObject()) {
        self.id = id
        self.classType = classType
        self.title = title
        self.inputs = inputs
    }

    /// The ids of the nodes this node reads from.
    public var linkedNodeIDs: [String] { inputs.values.compactMap { Workflow.link(in: $0)?.node } }

    /// A readable name: the title if there is one, else the class.
    public var displayName: String { title ?? classType }
}

/// Why a document is not an API-format workflow.
public enum WorkflowError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAnObject
    case uiFormat
    case empty
    case nodeNotAnObject(id: String)
    case missingClassType(id: String)
    case inputsNotAnObject(id: String)

    public var description: String {
        switch self {
        case .notAnObject: "a workflow must be a JSON object of nodes"
        case .uiFormat: "this is a UI workflow; export it with Save (API)"
        case .empty: "the workflow has no nodes"
        case .nodeNotAnObject(let id): "node \"\(id)\" is not an object"
        case .missingClassType(let id): "node \"\(id)\" has no class_type"
        case .inputsNotAnObject(let id): "node \"\(id)\": inputs must be an object"
        }
    }
}

/// A ComfyUI API-format graph: `{"<id>": {"class_type": ..., "inputs": {...}, "_meta": {"title": ...}}}`.
public struct Workflow: Sendable, Equatable {
    /// Node ids in document order.
    public private(set) var order: [String]
    /// Nodes by id.
    public private(set) var nodes: [String: WorkflowNode]

    public init(_ nodes: [WorkflowNode]) {
        order = nodes.map(\.id)
        self.nodes = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Reads an API-format graph, recognising the UI format (which has `nodes` and `links` lists)
    /// so the error can say how to export the right one.
    public init(json: JSONValue) throws(WorkflowError) {
        guard let object = json.objectValue else { throw .notAnObject }
        if object["nodes"]?.arrayValue != nil || object["links"]?.arrayValue != nil { throw .uiFormat }
        guard !object.isEmpty else { throw .empty }
        var list: [WorkflowNode] = []
        list.reserveCapacity(object.count)
        for (id, value) in object {
            guard let node = value.objectValue else { throw .nodeNotAnObject(id: id) }
            guard let classType = node["class_type"]?.stringValue else { throw .missingClassType(id: id) }
            let inputs: JSONObject
            switch node["inputs"] {
            case nil, .null?: inputs = JSONObject()
            case .object(let object)?: inputs = object
            default: throw .inputsNotAnObject(id: id)
            }
            let title = node["_meta"]?["title"]?.stringValue
            list.append(WorkflowNode(id: id, classType: classType, title: title, inputs: inputs))
        }
        self.init(list)
    }

    /// The nodes in document order.
    public var orderedNodes: [WorkflowNode] { order.compactMap { nodes[$0] } }

    public subscript(id: String) -> WorkflowNode? { nodes[id] }

    /// Replaces one input's value. Returns false when the node does not exist.
    @discardableResult
    public mutating func set(node id: String, input: String, to value: JSONValue) -> Bool {
        guard nodes[id] != nil else { return false }
        nodes[id]!.inputs[input] = value
        return true
    }

    /// The graph as API-format JSON, ready for `POST /prompt`.
    public var json: JSONValue {
        var object = JSONObject()
        for node in orderedNodes {
            var entry = JSONObject()
            entry["inputs"] = .object(node.inputs)
            entry["class_type"] = .string(node.classType)
            if let title = node.title { entry["_meta"] = ["title": .string(title)] }
            object[node.id] = .object(entry)
        }
        return .object(object)
    }

    /// A link value `["<node id>", <output slot>]`, or nil for a literal.
    public static func link(in value: JSONValue) -> (node: String, slot: Int)? {
        guard case .array(let parts) = value, parts.count == 2,
            let node = parts[0].stringValue, let slot = parts[1].numberValue?.int
        else { return nil }
        return (node, slot)
    }
}
