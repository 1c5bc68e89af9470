import ComfyCore
import Workloads
import Foundation

/// Graphs and event helpers shared by the core tests.
enum Fixtures {
    /// The package root, found from this file's location.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The recordings: `../shared/comfyui/traces` when it is beside the checkout (as for
    /// developers and CI), else the copies bundled in `Tests/Fixtures/traces`.
    static var tracesDirectory: URL {
        let shared = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/comfyui/traces")
        if FileManager.default.fileExists(atPath: shared.path) { return shared }
        return packageRoot.appendingPathComponent("Tests/Fixtures/traces")
    }

    static func trace(_ name: String) throws -> String {
        try String(contentsOf: tracesDirectory.appendingPathComponent(name), encoding: .utf8)
    }

    /// The traces' graph: 4 loader → 6/7 text → 5 latent → 3 KSampler → 8 VAEDecode → 9 SaveImage.
    static func txt2img(steps: Int = 4) -> Workflow { Workloads.txt2img(steps: steps) }

    /// Hires fix: KSampler 3 (4 steps) → LatentUpscale 10 → KSampler 11 (3 steps) → 8 → 9.
    static func hires() -> Workflow {
        var nodes = txt2img(steps: 4).orderedNodes
        nodes.removeAll { $0.id == "8" || $0.id == "9" }
        nodes += [
            WorkflowNode(
                id: "10", classType: "LatentUpscale",
                inputs: ["samples": ["3", 0], "upscale_method": "nearest-exact", "width": 96, "height": 96]),
            WorkflowNode(
                id: "11", classType: "KSampler",
                inputs: [
                    "seed": 2, "steps": 3, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                    "latent_image": ["10", 0],
                ]),
            WorkflowNode(id: "8", classType: "VAEDecode", inputs: ["samples": ["11", 0], "vae": ["4", 2]]),
            WorkflowNode(id: "9", classType: "SaveImage", inputs: ["filename_prefix": "x", "images": ["8", 0]]),
        ]
        return Workflow(nodes)
    }
}

/// Event shorthands.
enum E {
    static func start(_ id: String) -> ServerEvent { .executionStart(promptID: id) }
    static func cached(_ id: String, _ nodes: [String]) -> ServerEvent { .executionCached(promptID: id, nodes: nodes) }
    static func executing(_ id: String?, _ node: String?) -> ServerEvent {
        .executing(promptID: id, node: node, displayNode: node)
    }
    static func progress(_ id: String, _ node: String, _ value: Double, _ max: Double) -> ServerEvent {
        .progress(promptID: id, node: node, value: value, max: max)
    }
    static func state(_ id: String, _ entries: [(String, NodeState, Double, Double)]) -> ServerEvent {
        .progressState(
            promptID: id,
            nodes: entries.map { NodeProgress(nodeID: $0.0, value: $0.2, max: $0.3, state: $0.1) })
    }
    static func success(_ id: String) -> ServerEvent { .executionSuccess(promptID: id) }
}

/// Feeds a script of events one time unit apart and collects every update.
struct Script {
    var engine = ProgressEngine()
    var updates: [ProgressUpdate] = []
    var time = 0.0

    mutating func track(_ id: String, _ workflow: Workflow) {
        engine.track(id, plan: PromptPlan(workflow), at: time)
    }

    @discardableResult
    mutating func feed(_ events: ServerEvent...) -> [ProgressUpdate] {
        var produced: [ProgressUpdate] = []
        for event in events {
            time += 1
            if let update = engine.receive(event, at: time) { produced.append(update) }
        }
        updates += produced
        return produced
    }

    /// The events of one normal txt2img run as the real server sends them.
    static func txt2imgRun(_ id: String, steps: Int = 4) -> [ServerEvent] {
        var events: [ServerEvent] = [E.start(id), E.cached(id, [])]
        var finished: [(String, NodeState, Double, Double)] = []
        for node in ["4", "5", "7", "6"] {
            events.append(E.state(id, finished + [(node, .running, 0, 1)]))
            events.append(E.executing(id, node))
            finished.append((node, .finished, 1, 1))
            events.append(E.state(id, finished))
        }
        events.append(E.state(id, finished + [("3", .running, 0, 1)]))
        events.append(E.executing(id, "3"))
        for step in 1...steps {
            events.append(E.state(id, finished + [("3", .running, Double(step), Double(steps))]))
            events.append(E.progress(id, "3", Double(step), Double(steps)))
        }
        finished.append(("3", .finished, Double(steps), Double(steps)))
        for node in ["8", "9"] {
            events.append(E.state(id, finished + [(node, .running, 0, 1)]))
            events.append(E.executing(id, node))
            if node == "9" {
                events.append(.executed(promptID: id, node: "9", outputs: [OutputFile(filename: "x_00001_.png")]))
            }
            finished.append((node, .finished, 1, 1))
            events.append(E.state(id, finished))
        }
        events += [E.success(id), .status(queueRemaining: 0, sid: nil), E.executing(id, nil)]
        return events
    }
}
