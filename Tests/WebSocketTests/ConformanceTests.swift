import Foundation
import Synchronization
import Testing
import TestSupport
import WebSocket

/// Our client against an independent implementation: Python's `websockets`.
@Suite(.serialized) struct ConformanceTests {
    static let script = Support.path("Support/ws_server.py", besides: #filePath)

    static func connect(_ server: PythonServer, path: String = "/ws", options: WebSocketOptions = WebSocketOptions()) async throws -> WebSocketClient {
        try await WebSocketClient.connect(to: WebSocketURL("ws://127.0.0.1:\(server.port)\(path)"), options: options)
    }

    static func next(_ iterator: inout AsyncThrowingStream<WebSocketMessage, any Error>.Iterator) async throws -> WebSocketMessage? {
        try await iterator.next()
    }

    @Test func textBinaryFragmentedAndLarge() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        let client = try await Self.connect(server)
        var messages = client.messages.makeAsyncIterator()

        try client.send(.text("echo:héllo ✓"))
        #expect(try await Self.next(&messages) == .text("héllo ✓"))

        try client.send(.text("binary:1000"))
        #expect(try await Self.next(&messages) == .binary((0..<1000).map { UInt8($0 % 256) }))

        try client.send(.text("fragments:Hel,lo ,wor,ld"))  // four frames
        #expect(try await Self.next(&messages) == .text("Hello world"))

        // Large in both directions: 5 MB to the server, echoed; 8 MB from it.
        let big = (0..<5_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try client.send(.binary(big))
        #expect(try await Self.next(&messages) == .binary(big))
        try client.send(.text("text:8000000"))
        guard case .text(let text)? = try await Self.next(&messages) else {
            Issue.record("expected text")
            return
        }
        #expect(text.utf8.count == 8_000_000)

        client.close()
        #expect(try await Self.next(&messages) == nil)
        #expect(client.closeCode == 1000)
    }

    /// A peer that stops reading (a wedged server with its socket open): once the socket's
    /// buffers are full a send fails within the send timeout, and the connection ends, instead
    /// of blocking its caller for ever; the connection's state stays readable meanwhile (no
    /// frame is written under the state's lock).
    @Test func aPeerThatStopsReadingFailsTheSendInsteadOfBlockingIt() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        var options = WebSocketOptions()
        options.sendTimeout = .seconds(1)
        let client = try await Self.connect(server, options: options)
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("deaf"))
        #expect(try await Self.next(&messages) == .text("deaf-ok"))
        let outcome = Mutex<(sent: Int, error: WebSocketError?)?>(nil)
        let megabyte = WebSocketMessage.binary([UInt8](repeating: 7, count: 1 << 20))
        Thread {
            var sent = 0
            do throws(WebSocketError) {
                // The kernel's buffers hold a few MB on loopback; a GB is never reached.
                while sent < 1024 {
                    try client.send(megabyte)
                    sent += 1
                }
                outcome.withLock { $0 = (sent, nil) }
            } catch {
                outcome.withLock { $0 = (sent, error) }
            }
        }.start()
        // Meanwhile the state answers (a writer holding the state's lock would block this).
        _ = try await eventually("the writer is blocked or done", timeout: 20) { client.closeCode == nil ? true : nil }
        let (sent, error) = try await eventually("the send fails", timeout: 20, describe: { "\(outcome.withLock { $0 }.map { "\($0)" } ?? "still sending")" }) {
            outcome.withLock { $0 }
        }
        #expect(sent > 0 && sent < 1024, "\(sent) MB went before the peer's buffers filled")
        guard case .socket(.timedOut)? = error else {
            Issue.record("expected a send timeout, got \(String(describing: error))")
            return
        }
        // The connection ends with it.
        await #expect(throws: (any Error).self) { while try await Self.next(&messages) != nil {} }
    }

    @Test func answersTheServersPing() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        let client = try await Self.connect(server)
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("ping"))
        #expect(try await Self.next(&messages) == .text("pong-ok"))
        try client.ping([1, 2, 3])  // the server answers; nothing is delivered
        try client.send(.text("echo:after"))
        #expect(try await Self.next(&messages) == .text("after"))
        client.close()
    }

    @Test func serverInitiatedClose() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        let client = try await Self.connect(server)
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("close:4001"))
        #expect(try await Self.next(&messages) == nil)
        #expect(client.closeCode == 4001)
        #expect(client.closeReason == "bye")
        #expect(throws: WebSocketError.notOpen) { try client.send(.text("x")) }
    }

    @Test func serverVanishingMidFrame() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        let client = try await Self.connect(server)
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("vanish"))
        await #expect(throws: WebSocketError.connectionLost("the server went away in the middle of a frame")) {
            _ = try await Self.next(&messages)
        }
    }

    @Test func extraHeadersAndPathReachTheServer() async throws {
        let server = try await PythonServer.start(script: Self.script)
        defer { server.stop() }
        var options = WebSocketOptions()
        options.headers = [("Authorization", "Bearer secret"), ("Cookie", "a=b")]
        let client = try await Self.connect(server, path: "/ws?clientId=abc", options: options)
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("headers"))
        guard case .text(let json)? = try await Self.next(&messages) else {
            Issue.record("expected headers")
            return
        }
        #expect(json.contains(#""authorization": "Bearer secret""#))
        #expect(json.contains(#""cookie": "a=b""#))
        #expect(json.contains(#""host": "127.0.0.1:\#(server.port)""#))
        try client.send(.text("path"))
        #expect(try await Self.next(&messages) == .text("/ws?clientId=abc"))
        client.close()
    }

    @Test func refusedConnectionIsOneClearError() async throws {
        let port = 1  // tcpmux: nothing listens there
        await #expect(throws: WebSocketError.socket(.connectionRefused(host: "127.0.0.1", port: port))) {
            _ = try await WebSocketClient.connect(to: WebSocketURL("ws://127.0.0.1:\(port)/ws"))
        }
    }

    @Test func unknownHostIsAResolutionError() async throws {
        await #expect {
            _ = try await WebSocketClient.connect(to: WebSocketURL("ws://no-such-host.invalid:8188/ws"))
        } throws: { error in
            guard case .socket(.resolutionFailed(let host, _))? = error as? WebSocketError else { return false }
            return host == "no-such-host.invalid"
        }
    }
}
