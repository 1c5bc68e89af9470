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

func tracesMessages() -> [(name: String, graph: Workflow?, messages: [String])] {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/traces")
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter {
        $0.hasSuffix(".jsonl")
    }.sorted()
    return names.map { name in
        let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
        var graph: Workflow?
        var list: [String] = []
        for line in text.split(separator: "\n") {
            guard let value = try? JSONValue(parsing: String(line)) else { continue }
            if let message = value["ws"] { list.append(message.serialized()) }
            if graph == nil, let prompt = value["http"]?["request"]?["prompt"] { graph = try? Workflow(json: prompt) }
        }
        return (name, graph, list)
    }
}

/// Decode + engine over every message of a run, against Foundation's JSONSerialization doing
/// only the decoding of the same bytes.
func decodeAndTrack(_ messages: [String], plan: PromptPlan, promptID: String) -> Double {
    let bytes = messages.map { Array($0.utf8) }
    return measure(rounds: 9) {
        var engine = ProgressEngine()
        var decoder = EventStreamDecoder()
        engine.track(promptID, plan: plan, at: 0)
        for message in bytes {
            if let event = try? decoder.decode(message) { _ = engine.receive(event, at: 1) }
        }
    }
}

func foundationDecode(_ messages: [String]) -> Double {
    if ProcessInfo.processInfo.environment["COMFYQ_BENCH_OURS_ONLY"] != nil { return .nan }
    let data = messages.map { Data($0.utf8) }
    return measure(rounds: 5) {
        for message in data { _ = try? JSONSerialization.jsonObject(with: message) }
    }
}

func benchmarkDecode() {
    print("decode + engine on the recorded traces (CPU per prompt; Foundation JSONSerialization decoding the same messages for comparison):")
    for trace in tracesMessages() {
        guard let graph = trace.graph, !trace.messages.isEmpty else { continue }
        let ids = Set(trace.messages.compactMap { try? ServerEventDecoder.decode($0).promptID })
        let ours = decodeAndTrack(trace.messages, plan: PromptPlan(graph), promptID: ids.first ?? "")
        let foundation = foundationDecode(trace.messages)
        let bytes = trace.messages.reduce(0) { $0 + $1.utf8.count }
        print("  \(trace.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(trace.messages.count).leftPad(4)) msgs \(String(bytes / 1024).leftPad(4)) KB: \(format(ours * 1e6, 1).leftPad(7)) µs  (Foundation decode alone \(format(foundation * 1e6, 1)) µs, \(format(foundation / ours, 1))× ours)")
    }
}
