import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A graph of `count` nodes: a loader, a chain of setup nodes, one sampler, a decode, a save.
func chainGraph(count: Int, steps: Int) -> Workflow {
    var nodes = [WorkflowNode(id: "1", classType: "CheckpointLoaderSimple", inputs: ["ckpt_name": "m"])]
    for index in 2...(count - 3) {
        nodes.append(
            WorkflowNode(id: "\(index)", classType: "CLIPTextEncode", inputs: ["text": "t", "clip": [.string("\(index - 1)"), 0]]))
    }
    let sampler = count - 2
    nodes.append(
        WorkflowNode(
            id: "\(sampler)", classType: "KSampler",
            inputs: ["steps": .int(steps), "positive": [.string("\(sampler - 1)"), 0], "latent_image": ["1", 0]]))
    nodes.append(WorkflowNode(id: "\(count - 1)", classType: "VAEDecode", inputs: ["samples": [.string("\(sampler)"), 0]]))
    nodes.append(WorkflowNode(id: "\(count)", classType: "SaveImage", inputs: ["images": [.string("\(count - 1)"), 0]]))
    return Workflow(nodes)
}

/// The WebSocket text messages ComfyUI sends for one run of `workflow` (nodes in document order),
/// with the whole growing `progress_state` map on every node change, exactly as the server does.
func messages(for workflow: Workflow, promptID id: String) -> [String] {
    func entry(_ node: String, _ value: Double, _ max: Double, _ state: String) -> String {
        #""\#(node)":{"value":\#(value),"max":\#(max),"state":"\#(state)","node_id":"\#(node)","prompt_id":"\#(id)","display_node_id":"\#(node)","parent_node_id":null,"real_node_id":"\#(node)"}"#
    }
    func progressState(_ entries: [String]) -> String {
        #"{"type":"progress_state","data":{"prompt_id":"\#(id)","nodes":{"# + entries.joined(separator: ",") + "}}}"
    }
    var out = [
        #"{"type":"execution_start","data":{"prompt_id":"\#(id)","timestamp":1}}"#,
        #"{"type":"execution_cached","data":{"nodes":[],"prompt_id":"\#(id)","timestamp":1}}"#,
    ]
    var finished: [String] = []
    for node in workflow.orderedNodes {
        out.append(progressState(finished + [entry(node.id, 0, 1, "running")]))
        out.append(#"{"type":"executing","data":{"node":"\#(node.id)","display_node":"\#(node.id)","prompt_id":"\#(id)"}}"#)
        var maximum = 1.0
        if node.classType == "KSampler", let steps = node.inputs["steps"]?.numberValue?.int {
            maximum = Double(steps)
            for step in 1...steps {
                out.append(progressState(finished + [entry(node.id, Double(step), maximum, "running")]))
                out.append(
                    #"{"type":"progress","data":{"value":\#(step),"max":\#(steps),"prompt_id":"\#(id)","node":"\#(node.id)"}}"#)
            }
        }
        finished.append(entry(node.id, maximum, maximum, "finished"))
        out.append(progressState(finished))
    }
    out.append(#"{"type":"execution_success","data":{"prompt_id":"\#(id)","timestamp":2}}"#)
    out.append(#"{"type":"executing","data":{"node":null,"prompt_id":"\#(id)"}}"#)
    return out
}
