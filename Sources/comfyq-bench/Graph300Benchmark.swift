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

func benchmarkGraph300() {
    let workflow = chainGraph(count: 300, steps: 20)
    let stream = messages(for: workflow, promptID: "9348a74d-67da-4ac1-ba44-41a92de8f6ed")
    let bytes = stream.reduce(0) { $0 + $1.utf8.count }
    let ours = decodeAndTrack(stream, plan: PromptPlan(workflow), promptID: "9348a74d-67da-4ac1-ba44-41a92de8f6ed")
    let foundation = foundationDecode(stream)
    let data = stream.map { Array($0.utf8) }
    let stateless = measure(rounds: 5) { for message in data { _ = try? ServerEventDecoder.decode(message) } }
    print("graph300: stateless decoding of every entry (no engine): \(format(stateless * 1e3, 1)) ms per prompt")
    print("graph300: \(stream.count) messages, \(format(Double(bytes) / 1e6, 1)) MB of JSON per prompt: decode + engine \(format(ours * 1e3, 1)) ms per prompt (\(format(Double(bytes) / ours / 1e6, 0)) MB/s)  [target ≤ 50 ms]; Foundation's JSONSerialization alone: \(format(foundation * 1e3, 1)) ms (\(format(foundation / ours, 1))× ours)")
}
