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

func benchmarkEngine() {
    let prompts = 2_000
    let plan = PromptPlan(Workloads.txt2img(steps: 20))
    // Typed events for every prompt, decoded up front by a stream decoder as the runner does
    // (so progress_state events carry the entries that changed): this measures the engine alone.
    var events: [[ServerEvent]] = []
    var decoder = EventStreamDecoder()
    for index in 0..<prompts {
        let id = "9348a74d-67da-4ac1-ba44-\(String(index).leftPad(12, "0"))"
        events.append(messages(for: Workloads.txt2img(steps: 20), promptID: id).map { try! decoder.decode($0) })
    }
    let count = events.reduce(0) { $0 + $1.count }
    let ids = events.map { $0.first?.promptID ?? "" }
    var sink = 0
    let seconds = measure {
        var engine = ProgressEngine()
        var time = 0.0
        for (index, stream) in events.enumerated() {
            engine.track(ids[index], plan: plan, at: time)
            for event in stream {
                time += 0.001
                if engine.receive(event, at: time) != nil { sink &+= 1 }
            }
        }
        precondition(engine.trackedCount == 0)
    }
    let perEvent = seconds / Double(count) * 1e9
    print("engine: \(count) events (\(prompts) prompts of txt2img, 20 steps, UUID prompt ids): \(format(perEvent, 0)) ns/event, \(format(Double(count) / seconds / 1e6, 2)) M events/s  [target ≤ 500 ns]")
    _ = sink
}
