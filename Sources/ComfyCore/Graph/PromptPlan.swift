/// What a node does for the progress engine, decided from the graph before anything runs.
///
/// The rule, in order:
/// 1. **output**: a known output class (`SaveImage`, `PreviewImage`, `SaveImageWebsocket`, …), a
///    class named `Save…` or `Preview…`, or a node nothing reads from (ComfyUI only executes output
///    nodes and their ancestors, so a sink that runs is an output).
/// 2. **sampler**: a known sampler class (`KSampler`, `KSamplerAdvanced`, `SamplerCustom`,
///    `SamplerCustomAdvanced`, …), a class whose name contains "Sampler" (but not a `…Select`
///    helper that only picks one), or a node with both `steps` and `latent_image` inputs. At run
///    time a node that reports step progress with max > 1 is promoted to sampler unless it is an
///    output or a decoding node (tiled VAE decodes report tiles, and `SaveImageWebsocket` reports 0/1).
/// 3. the rest by position: with a sampler among both its ancestors and its descendants it is
///    **intermediate** (a latent upscale between two samplers, counted as sampling); with samplers
///    only upstream it is **decoding** (VAE decode, image upscale); otherwise **setup** (loaders,
///    text encoders, empty latents).
public enum NodeRole: UInt8, Sendable, Equatable, CaseIterable {
    case setup
    case sampler
    case intermediate
    case decoding
    case output
}

/// A node as the engine sees it: identity for display plus its role.
public struct PlanNode: Sendable, Equatable {
    public let id: String
    public let classType: String
    public let title: String?
    public let role: NodeRole
    /// For samplers, the steps the graph asks for (replaced by the real `max` once reported).
    public let expectedSteps: Int
    /// The node as snapshots show it, made once.
    public let ref: NodeRef

    init(id: String, classType: String, title: String?, role: NodeRole, expectedSteps: Int) {
        self.id = id
        self.classType = classType
        self.title = title
        self.role = role
        self.expectedSteps = expectedSteps
        ref = NodeRef(id: id, classType: classType, title: title)
    }
}

/// The submitted graph analysed once for the engine, shared by every prompt that uses it.
/// Immutable, so prompts hold a reference and per-prompt memory stays small.
public final class PromptPlan: Sendable {
    public let nodes: [PlanNode]
    /// Node id to position in `nodes`.
    public let index: [String: Int]
    /// How many nodes have each role, indexed by `NodeRole.rawValue`.
    public let roleCounts: [Int]
    /// The sum of `expectedSteps` over samplers.
    public let expectedSteps: Int

    /// Steps assumed for a sampler whose `steps` input is a link (ComfyUI's default).
    public static let defaultSteps = 20

    static let knownOutputs: Set<String> = [
        "SaveImage", "PreviewImage", "SaveImageWebsocket", "SaveAnimatedWEBP", "SaveAnimatedPNG",
        "SaveLatent", "SaveAudio", "PreviewAudio", "SaveVideo", "SaveWEBM", "SaveGLB", "VHS_VideoCombine",
        "Image Save",
    ]
    static let knownSamplers: Set<String> = [
        "KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced",
        "KSampler (Efficient)", "KSampler Adv. (Efficient)", "UltimateSDUpscale",
    ]

    public convenience init(_ workflow: Workflow) {
        self.init(nodes: workflow.orderedNodes)
    }

    init(nodes graph: [WorkflowNode]) {
        let index = Dictionary(graph.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Edges: inputs[i] = the nodes node i reads from; consumers[i] = the nodes that read node i.
        var inputs = [[Int]](repeating: [], count: graph.count)
        var consumers = [[Int]](repeating: [], count: graph.count)
        for (position, node) in graph.enumerated() {
            for source in node.linkedNodeIDs {
                guard let from = index[source] else { continue }
                inputs[position].append(from)
                consumers[from].append(position)
            }
        }
        let isOutputClass = graph.map { Self.isOutputClass($0.classType) }
        let isSampler = graph.enumerated().map { position, node in
            !isOutputClass[position] && Self.looksLikeSampler(node)
        }
        let hasSamplerAbove = Self.reaches(isSampler, through: inputs)
        let hasSamplerBelow = Self.reaches(isSampler, through: consumers)

        var planNodes: [PlanNode] = []
        planNodes.reserveCapacity(graph.count)
        var counts = [Int](repeating: 0, count: NodeRole.allCases.count)
        var totalSteps = 0
        for (position, node) in graph.enumerated() {
            let role: NodeRole
            if isOutputClass[position] {
                role = .output
            } else if isSampler[position] {
                role = .sampler
            } else if consumers[position].isEmpty {
                role = .output
            } else if hasSamplerAbove[position] {
                role = hasSamplerBelow[position] ? .intermediate : .decoding
            } else {
                role = .setup
            }
            let steps = role == .sampler ? Self.expectedSteps(of: node, in: graph, index: index) : 0
            totalSteps += steps
            counts[Int(role.rawValue)] += 1
            planNodes.append(
                PlanNode(id: node.id, classType: node.classType, title: node.title, role: role, expectedSteps: steps))
        }
        self.nodes = planNodes
        self.index = index
        self.roleCounts = counts
        self.expectedSteps = totalSteps
    }

    /// How many nodes have `role`.
    public func count(_ role: NodeRole) -> Int { roleCounts[Int(role.rawValue)] }

    /// The node with this id, if the graph has it.
    public subscript(id: String) -> PlanNode? { index[id].map { nodes[$0] } }

    // MARK: Classification

    static func isOutputClass(_ classType: String) -> Bool {
        knownOutputs.contains(classType) || classType.hasPrefix("Save") || classType.hasPrefix("Preview")
    }

    static func looksLikeSampler(_ node: WorkflowNode) -> Bool {
        if knownSamplers.contains(node.classType) { return true }
        let name = node.classType.lowercased()
        if name.contains("sampler") && !name.hasSuffix("select") && !name.hasSuffix("selector") { return true }
        return node.inputs["steps"] != nil && node.inputs["latent_image"] != nil
    }

    /// Steps a sampler will report: its `steps` literal (less `start_at_step`, capped by
    /// `end_at_step` for advanced samplers), or a `steps` literal on a node it reads from directly
    /// (SamplerCustomAdvanced takes sigmas from a scheduler node), or ComfyUI's default of 20.
    static func expectedSteps(of node: WorkflowNode, in graph: [WorkflowNode], index: [String: Int]) -> Int {
        func literal(_ name: String, _ node: WorkflowNode) -> Int? { node.inputs[name]?.numberValue?.int }
        if let steps = literal("steps", node) {
            var end = steps
            if let last = literal("end_at_step", node) { end = min(end, last) }
            let start = literal("start_at_step", node) ?? 0
            return max(1, end - start)
        }
        for source in node.linkedNodeIDs {
            if let position = index[source], let steps = literal("steps", graph[position]) { return max(1, steps) }
        }
        return defaultSteps
    }

    /// For each node, whether some marked node is reachable by following `edges` (excluding itself
    /// unless reached through a cycle). Iterative, so deep or cyclic graphs cannot overflow the stack.
    static func reaches(_ marked: [Bool], through edges: [[Int]]) -> [Bool] {
        enum Visit: UInt8 { case new, active, done }
        var result = [Bool](repeating: false, count: marked.count)
        var visit = [Visit](repeating: .new, count: marked.count)
        for root in marked.indices where visit[root] == .new {
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            visit[root] = .active
            while let top = stack.last {
                let node = top.node
                if top.next < edges[node].count {
                    stack[stack.count - 1].next += 1
                    let child = edges[node][top.next]
                    if visit[child] == .new {
                        visit[child] = .active
                        stack.append((child, 0))
                    }
                } else {
                    result[node] = edges[node].contains { marked[$0] || result[$0] }
                    visit[node] = .done
                    stack.removeLast()
                }
            }
        }
        return result
    }
}
