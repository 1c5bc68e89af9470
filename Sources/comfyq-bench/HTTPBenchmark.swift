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

/// Median and p99 of 1,000 small HTTP requests (GET /prompt) through URLSession.
func benchmarkHTTP() async {
    guard let (process, port) = startPython("Tests/ComfyClientTests/Support/fake_comfyui.py") else {
        print("http: skipped (needs /usr/bin/python3)")
        return
    }
    defer { stopPython(process) }
    let api = ComfyAPI(baseURL: URL(string: "http://127.0.0.1:\(port)")!)
    var samples: [Double] = []
    for index in 0..<1_050 {
        let start = ContinuousClock.now
        guard (try? await api.queueRemaining()) != nil else {
            print("http: request failed")
            return
        }
        let elapsed = ContinuousClock.now - start
        if index >= 50 { samples.append(Double(elapsed.components.attoseconds) * 1e-15 + Double(elapsed.components.seconds) * 1e3) }
    }
    samples.sort()
    print("http: GET /prompt through URLSession to a local server: median \(format(samples[samples.count / 2], 2)) ms, p99 \(format(samples[samples.count * 99 / 100], 2)) ms (1,000 requests, reused connection)")
}
