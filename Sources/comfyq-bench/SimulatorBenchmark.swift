import ComfyClient
import ComfyCore
import Foundation
import InputFiles
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

/// Prompts per second through the simulator with zero simulated time: HTTP submits from one
/// client, every message over its WebSocket, until the last prompt's end.
func benchmarkSimulator() async {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-sim-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: output) }
    var options = SimulatorOptions(outputDirectory: output)
    options.port = 0
    options.instant()
    // What one output costs the simulator: the labelled picture, drawn and encoded.
    for size in [64, 512] {
        let draw = measure(rounds: 7) {
            for _ in 0..<20 { _ = SimulatedImage.render(width: size, height: size, seed: 7, lines: ["seed 7", "steps 4 cfg 7.0", "euler normal", "a photo of a cat"]).encoded(level: 1) }
        }
        let image = SimulatedImage.render(width: size, height: size, seed: 7, lines: ["seed 7", "steps 4 cfg 7.0", "euler normal", "a photo of a cat"])
        let encode = measure(rounds: 7) { for _ in 0..<20 { _ = image.encoded(level: 1) } }
        print("simulator: an output of \(size)×\(size), drawn with its label and encoded: \(format(draw / 20 * 1e6, 0)) µs (encoding \(format(encode / 20 * 1e6, 0)) µs)")
    }
    guard let simulator = try? Simulator(options: options) else {
        print("simulator: cannot start")
        return
    }
    defer { simulator.stop() }
    let api = ComfyAPI(baseURL: URL(string: simulator.url)!)
    let count = 2_000
    let workflow = Workloads.txt2img(steps: 4)
    guard let socket = try? await WebSocketClient.connect(to: api.webSocketURL(clientID: "bench")) else {
        print("simulator: no WebSocket")
        return
    }
    let start = ContinuousClock.now
    let finished = Task {
        var ends = 0
        var messages = 0
        var iterator = socket.messages.makeAsyncIterator()
        while ends < count, let message = try? await iterator.next() {
            messages += 1
            if case .text(let text) = message, case .executing(_, nil, _)? = try? ServerEventDecoder.decode(text) { ends += 1 }
        }
        return messages
    }
    // Four submitters, as a runner keeps several prompts in flight.
    let failed = await withTaskGroup(of: Bool.self) { group in
        for lane in 0..<4 {
            group.addTask {
                var graph = workflow
                for index in stride(from: lane, to: count, by: 4) {
                    graph.set(node: "3", input: "seed", to: .int(index))  // a new seed: the sampler really runs
                    do {
                        _ = try await api.submit(graph, promptID: UUID().uuidString.lowercased(), clientID: "bench")
                    } catch {
                        print("simulator: submit failed: \(error)")
                        return true
                    }
                }
                return false
            }
        }
        return await group.contains(true)
    }
    guard !failed else { return }
    let messages = await finished.value
    let elapsed = ContinuousClock.now - start
    let seconds = elapsed.seconds
    socket.close()
    print("simulator: \(count) prompts (7 nodes, 4 steps, 64×64 PNG each) submitted by 4 concurrent clients over HTTP, every message over the WebSocket, zero simulated time: \(format(Double(count) / seconds, 0)) prompts/s, \(format(Double(messages) / seconds / 1000, 1)) k messages/s  [target ≥ 1,000 prompts/s]")
}
