import Foundation
import TestSupport
import Testing
import WebSocket

/// `wss://` through OpenSSL against Python's TLS server, with certificates made by the test.
@Suite(.serialized) struct TLSTests {
    static func server(_ pair: (cert: String, key: String)) async throws -> PythonServer {
        try await PythonServer.start(script: ConformanceTests.script, arguments: ["--tls", pair.cert, pair.key])
    }

    static func connect(_ port: Int, _ tls: TLSOptions) async throws -> WebSocketClient {
        var options = WebSocketOptions()
        options.tls = tls
        return try await WebSocketClient.connect(to: WebSocketURL("wss://127.0.0.1:\(port)/ws"), options: options)
    }

    @Test func untrustedCertificateIsRefusedWithAClearError() async throws {
        let server = try await Self.server(try await TestCertificate.generate("IP:127.0.0.1"))
        defer { server.stop() }
        await #expect(throws: WebSocketError.socket(.tls("certificate verify failed for 127.0.0.1: self-signed certificate"))) {
            _ = try await Self.connect(server.port, TLSOptions())
        }
    }

    @Test func trustedCertificateWorks() async throws {
        let pair = try await TestCertificate.generate("IP:127.0.0.1")
        let server = try await Self.server(pair)
        defer { server.stop() }
        let client = try await Self.connect(server.port, TLSOptions(caFile: pair.cert))
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("echo:over tls"))
        #expect(try await messages.next() == .text("over tls"))
        let big = [UInt8](repeating: 42, count: 3_000_000)
        try client.send(.binary(big))
        #expect(try await messages.next() == .binary(big))
        client.close()
        #expect(try await messages.next() == nil)
    }

    @Test func wrongHostIsRefusedEvenWhenTheCertificateIsTrusted() async throws {
        let pair = try await TestCertificate.generate("DNS:other.example")
        let server = try await Self.server(pair)
        defer { server.stop() }
        await #expect {
            _ = try await Self.connect(server.port, TLSOptions(caFile: pair.cert))
        } throws: { error in
            guard case .socket(.tls(let detail))? = error as? WebSocketError else { return false }
            return detail.contains("certificate verify failed for 127.0.0.1") && detail.contains("mismatch")
        }
    }

    @Test func insecureSkipsVerification() async throws {
        let server = try await Self.server(try await TestCertificate.generate("DNS:other.example"))
        defer { server.stop() }
        let client = try await Self.connect(server.port, TLSOptions(verifyPeer: false))
        var messages = client.messages.makeAsyncIterator()
        try client.send(.text("echo:ok"))
        #expect(try await messages.next() == .text("ok"))
        client.close()
    }
}
