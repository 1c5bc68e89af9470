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

/// Frames through our parser and message layer, from our own encoder (no network).
func benchmarkCodec() {
    let small = FrameEncoder.encode(
        Frame(opcode: .text, payload: Array(#"{"type":"progress","data":{"value":3,"max":20,"prompt_id":"9348a74d-67da-4ac1-ba44-41a92de8f6ed","node":"3"}}"#.utf8)),
        maskKey: nil)
    let smallCount = 200_000
    let stream = Array([[UInt8]](repeating: small, count: smallCount).joined())
    let smallSeconds = measure(rounds: 5) {
        var parser = FrameParser(role: .client)
        var machine = WebSocketStateMachine()
        var offset = 0
        var delivered = 0
        while offset < stream.count {
            let end = min(stream.count, offset + 64 * 1024)
            parser.append(stream[offset..<end])
            offset = end
            while let frame = try? parser.nextFrame() { delivered += machine.received(frame).count }
        }
        precondition(delivered == smallCount)
    }
    let big = FrameEncoder.encode(Frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 1 << 20)), maskKey: nil)
    let bigCount = 200
    let bigSeconds = measure(rounds: 5) {
        var parser = FrameParser(role: .client)
        var machine = WebSocketStateMachine()
        for _ in 0..<bigCount {
            var offset = 0
            while offset < big.count {
                let end = min(big.count, offset + 64 * 1024)
                parser.append(big[offset..<end])
                offset = end
                while let frame = try? parser.nextFrame() { _ = machine.received(frame) }
            }
        }
    }
    print("websocket codec (our encoder → our parser + message layer, 64 KiB reads): \(format(Double(smallCount) / smallSeconds / 1e6, 2)) M small text frames/s (\(small.count) B each); 1 MiB binary frames: \(format(Double(bigCount) / bigSeconds, 0)) MiB/s")
}
