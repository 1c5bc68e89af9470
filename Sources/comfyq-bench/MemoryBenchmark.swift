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

func benchmarkMemory() {
    let count = 100_000
    let plan = PromptPlan(chainGraph(count: 300, steps: 20))
    let ids = (0..<count).map { "9348a74d-67da-4ac1-ba44-\(String($0).leftPad(12, "0"))" }
    var engine = ProgressEngine()
    let before = residentBytes()
    for (index, id) in ids.enumerated() {
        engine.track(id, plan: plan, at: Double(index))
        _ = engine.receive(.executionStart(promptID: id), at: Double(index))
        _ = engine.receive(.progress(promptID: id, node: "298", value: 3, max: 20), at: Double(index))
    }
    let after = residentBytes()
    let perPrompt = Double(after - before) / Double(count)
    print("memory: \(count) prompts in sampling on a shared 300-node plan: \(format(perPrompt, 0)) bytes of resident memory per tracked prompt (state, bitset, dictionary slot; ids allocated beforehand)  [target ≤ 1 KB]")
    precondition(engine.trackedCount == count)
}
