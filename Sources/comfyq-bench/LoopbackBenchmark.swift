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

/// Our client receiving from Python's `websockets` over loopback.
func benchmarkLoopback() async {
    guard let (process, port) = startPython("Tests/WebSocketTests/Support/ws_server.py") else {
        print("websocket loopback: skipped (needs /usr/bin/python3 with python3-websockets)")
        return
    }
    defer { stopPython(process) }
    func flood(_ command: String, count: Int) async -> Double? {
        guard let url = try? WebSocketURL("ws://127.0.0.1:\(port)/ws"),
            let client = try? await WebSocketClient.connect(to: url)
        else { return nil }
        defer { client.close() }
        let start = ContinuousClock.now
        try? client.send(.text(command))
        var received = 0
        var iterator = client.messages.makeAsyncIterator()
        while let message = try? await iterator.next(), message != .text("flood-done") { received += 1 }
        let elapsed = ContinuousClock.now - start
        guard received == count else { return nil }
        return elapsed.seconds
    }
    let smallCount = 50_000
    let bigCount = 200
    guard let small = await flood("flood:\(smallCount),120", count: smallCount),
        let big = await flood("floodbin:\(bigCount),1048576", count: bigCount)
    else {
        print("websocket loopback: failed")
        return
    }
    print("websocket loopback from Python websockets 10.4: \(format(Double(smallCount) / small / 1000, 1)) k small text frames/s, \(format(Double(bigCount) / big, 0)) MiB/s of 1 MiB binary frames (the Python sender is the limit; compare the codec line)")
}
