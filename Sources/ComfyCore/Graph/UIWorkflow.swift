/// A workflow as ComfyUI's web page saves it (`{"nodes": […], "links": […], "definitions": …}`),
/// read into the parts the conversion to the API format uses. Positions, sizes, colours, groups
/// and the rest are not read.
public struct UIWorkflow: Sendable {
    public var root: UIGraph
    /// Subgraph definitions by id (a node whose `type` is one of these is an instance of it),
    /// in file order with nested definitions after their parent.
    public var subgraphs: [String: UIGraph]
    public var subgraphOrder: [String]
    /// Inner node ids changed to make them unique, per subgraph: old id → new id.
    public var renamedNodes: [String: [String: String]] = [:]
    /// `last_node_id` (format 0.4) or `state.lastNodeId` (format 1).
    public var lastNodeID: Int

    /// Whether a document is a UI-format workflow rather than an API-format one.
    public static func isUIFormat(_ json: JSONValue) -> Bool {
        guard let object = json.objectValue else { return false }
        return object["nodes"]?.arrayValue != nil || object["links"]?.arrayValue != nil
    }

    public init(json: JSONValue) throws(UIWorkflowError) {
        guard let object = json.objectValue, object["nodes"]?.arrayValue != nil else { throw .notUIFormat }
        root = try UIGraph(id: "", object: object)
        subgraphs = [:]
        subgraphOrder = []
        lastNodeID = object["last_node_id"]?.numberValue?.int ?? object["state"]?["lastNodeId"]?.numberValue?.int ?? 0
        func collect(_ definitions: JSONValue?) throws(UIWorkflowError) {
            for definition in definitions?["subgraphs"]?.arrayValue ?? [] {
                guard let body = definition.objectValue, let id = body["id"]?.stringValue else { throw .badSubgraph }
                if subgraphs[id] == nil {
                    subgraphs[id] = try UIGraph(id: id, object: body)
                    subgraphOrder.append(id)
                }
                try collect(body["definitions"])
            }
        }
        try collect(object["definitions"])
        makeSubgraphNodeIDsUnique()
    }

    /// Frontend 1.58 makes inner node ids unique across the workflow on load (root ids never
    /// change); the API ids are built from the new ones.
    mutating func makeSubgraphNodeIDsUnique() {
        var used = Set(root.nodes.compactMap { Int($0.id) })
        var last = lastNodeID
        for id in subgraphOrder {
            var graph = subgraphs[id]!
            var seen: Set<String> = []
            graph.nodes.removeAll { !seen.insert($0.id).inserted }
            var renamed: [String: String] = [:]
            for index in graph.nodes.indices {
                guard let number = Int(graph.nodes[index].id) else { continue }
                if used.contains(number) {
                    var next = last + 1
                    while used.contains(next) { next += 1 }
                    used.insert(next)
                    last = next
                    renamed[graph.nodes[index].id] = String(next)
                    graph.nodes[index].id = String(next)
                } else {
                    used.insert(number)
                    last = max(last, number)
                }
            }
            if !renamed.isEmpty {
                renamedNodes[id] = renamed
                for (key, link) in graph.links {
                    var patched = link
                    patched.originID = renamed[link.originID] ?? link.originID
                    patched.targetID = renamed[link.targetID] ?? link.targetID
                    graph.links[key] = patched
                }
                graph.reindex()
            }
            subgraphs[id] = graph
        }
    }
}

public enum UIWorkflowError: Error, Sendable, Equatable, CustomStringConvertible {
    case notUIFormat
    case badNode(Int)
    case badLink(String)
    case badSubgraph

    public var description: String {
        switch self {
        case .notUIFormat: "not a UI-format workflow (no \"nodes\" list)"
        case .badNode(let index): "nodes[\(index)] has no id or type"
        case .badLink(let graph): "a link in \(graph.isEmpty ? "the workflow" : "subgraph \(graph)") is not [id, origin, slot, target, slot, type]"
        case .badSubgraph: "definitions.subgraphs has an entry without an id"
        }
    }
}

/// The root graph or one subgraph definition.
public struct UIGraph: Sendable {
    /// The subgraph's id; empty for the root.
    public var id: String
    public var name: String?
    public var nodes: [UINode]
    public var links: [Int: UILink]
    /// A subgraph's inputs and outputs (its input node is `-10`, its output node `-20`).
    public var inputs: [UISubgraphSlot]
    public var outputs: [UISubgraphSlot]
    private var index: [String: Int] = [:]

    init(id: String, object: JSONObject) throws(UIWorkflowError) {
        self.id = id
        name = object["name"]?.stringValue
        nodes = []
        for (offset, value) in (object["nodes"]?.arrayValue ?? []).enumerated() {
            guard let node = UINode(json: value) else { throw .badNode(offset) }
            nodes.append(node)
        }
        links = [:]
        for value in object["links"]?.arrayValue ?? [] {
            guard let link = UILink(json: value) else { throw .badLink(id) }
            links[link.id] = link
        }
        inputs = (object["inputs"]?.arrayValue ?? []).map(UISubgraphSlot.init)
        outputs = (object["outputs"]?.arrayValue ?? []).map(UISubgraphSlot.init)
        reindex()
    }

    mutating func reindex() {
        index = [:]
        for (offset, node) in nodes.enumerated() where index[node.id] == nil { index[node.id] = offset }
    }

    public func node(_ id: String) -> UINode? { index[id].map { nodes[$0] } }
}

/// One node of a UI graph.
public struct UINode: Sendable {
    public var id: String
    public var type: String
    /// 0 always, 2 muted (never), 4 bypassed.
    public var mode: Int
    public var title: String?
    public var inputs: [Input]
    public var outputs: [Output]
    /// `widgets_values` when it is a list; nil when absent or an object (the frontend ignores it then).
    public var widgetsValues: [JSONValue]?
    public var properties: JSONObject

    public struct Input: Sendable {
        public var name: String
        public var type: String
        public var link: Int?
        /// Files from before frontend 1.16 mark a widget turned into an input.
        public var widget: String?
    }

    public struct Output: Sendable {
        public var name: String
        public var type: String
        public var links: [Int]
    }

    init?(json: JSONValue) {
        guard let object = json.objectValue, let id = object["id"].flatMap(UINode.id), let type = object["type"]?.stringValue else { return nil }
        self.id = id
        self.type = type
        mode = object["mode"]?.numberValue?.int ?? 0
        title = object["title"]?.stringValue
        inputs = (object["inputs"]?.arrayValue ?? []).compactMap { input in
            guard let name = input["name"]?.stringValue else { return nil }
            return Input(
                name: name, type: input["type"].map(UINode.typeName) ?? "*", link: input["link"]?.numberValue?.int,
                widget: input["widget"]?["name"]?.stringValue)
        }
        outputs = (object["outputs"]?.arrayValue ?? []).map { output in
            Output(
                name: output["name"]?.stringValue ?? "", type: output["type"].map(UINode.typeName) ?? "*",
                links: output["links"]?.arrayValue?.compactMap { $0.numberValue?.int } ?? [])
        }
        widgetsValues = object["widgets_values"]?.arrayValue
        properties = object["properties"]?.objectValue ?? JSONObject()
    }

    static func id(_ value: JSONValue) -> String? {
        switch value {
        case .number(let number): number.int.map(String.init)
        case .string(let string): string
        default: nil
        }
    }

    /// A socket's type: a name, or a list of accepted names (written `"A,B"`), or 0 for any.
    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): string
        case .array(let names): names.compactMap(\.stringValue).joined(separator: ",")
        default: "*"
        }
    }

    public var isBypassed: Bool { mode == 4 }
    public var isMuted: Bool { mode == 2 }
}

/// A link: `[id, origin, origin slot, target, target slot, type]` at the root of older files, an
/// object with the same fields elsewhere.
public struct UILink: Sendable {
    public var id: Int
    public var originID: String
    public var originSlot: Int
    public var targetID: String
    public var targetSlot: Int
    public var type: String

    init?(json: JSONValue) {
        switch json {
        case .array(let parts) where parts.count >= 5:
            guard let id = parts[0].numberValue?.int, let origin = UINode.id(parts[1]), let originSlot = parts[2].numberValue?.int,
                let target = UINode.id(parts[3]), let targetSlot = parts[4].numberValue?.int
            else { return nil }
            self.init(id: id, originID: origin, originSlot: originSlot, targetID: target, targetSlot: targetSlot, type: parts.count > 5 ? UINode.typeName(parts[5]) : "*")
        case .object(let object):
            guard let id = object["id"]?.numberValue?.int, let origin = object["origin_id"].flatMap(UINode.id),
                let originSlot = object["origin_slot"]?.numberValue?.int, let target = object["target_id"].flatMap(UINode.id),
                let targetSlot = object["target_slot"]?.numberValue?.int
            else { return nil }
            self.init(id: id, originID: origin, originSlot: originSlot, targetID: target, targetSlot: targetSlot, type: object["type"].map(UINode.typeName) ?? "*")
        default: return nil
        }
    }

    init(id: Int, originID: String, originSlot: Int, targetID: String, targetSlot: Int, type: String) {
        self.id = id
        self.originID = originID
        self.originSlot = originSlot
        self.targetID = targetID
        self.targetSlot = targetSlot
        self.type = type
    }

    /// The subgraph's input node and output node.
    static let subgraphInput = "-10"
    static let subgraphOutput = "-20"
}

/// An input or output of a subgraph definition.
public struct UISubgraphSlot: Sendable {
    public var name: String
    public var type: String
    public var linkIDs: [Int]

    init(json: JSONValue) {
        name = json["name"]?.stringValue ?? ""
        type = json["type"].map(UINode.typeName) ?? "*"
        linkIDs = json["linkIds"]?.arrayValue?.compactMap { $0.numberValue?.int } ?? []
    }
}
