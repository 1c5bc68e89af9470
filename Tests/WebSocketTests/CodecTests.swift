import Testing
import WebSocket

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite struct SHA1Tests {
    // RFC 3174 §7.3 test vectors.
    @Test(arguments: [
        ("abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("a", 1_000_000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
        ("0123456701234567012345670123456701234567012345670123456701234567", 10, "dea356a2cddd90c7a7ecedc5ebb563934f460452"),
        ("", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ])
    func rfc3174Vectors(text: String, repeats: Int, digest: String) {
        let message = [UInt8](repeating: 0, count: 0) + Array(String(repeating: text, count: repeats).utf8)
        #expect(hex(SHA1.hash(message)) == digest)
    }

    @Test func acceptValueFromRFC6455() {
        #expect(Handshake.acceptValue(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(Base64.encode(Array("f".utf8)) == "Zg==")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.encode(Array("foo".utf8)) == "Zm9v")
    }
}

@Suite struct FrameCodecTests {
    static let hello: [UInt8] = [0x48, 0x65, 0x6c, 0x6c, 0x6f]
    static let key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]

    // RFC 6455 §5.7, byte for byte: (role that receives, bytes, frames).
    static let examples: [(String, Role, [UInt8], [Frame])] = [
        ("unmasked text", .client, [0x81, 0x05] + hello, [Frame(opcode: .text, payload: hello)]),
        ("masked text", .server, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], [Frame(opcode: .text, payload: hello)]),
        (
            "fragmented text", .client, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            [Frame(fin: false, opcode: .text, payload: Array(hello[0..<3])), Frame(opcode: .continuation, payload: Array(hello[3...]))]
        ),
        ("ping", .client, [0x89, 0x05] + hello, [Frame(opcode: .ping, payload: hello)]),
        ("masked pong", .server, [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], [Frame(opcode: .pong, payload: hello)]),
        ("256 bytes", .client, [0x82, 0x7e, 0x01, 0x00] + [UInt8](repeating: 7, count: 256), [Frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 256))]),
        (
            "64 KiB", .client, [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0] + [UInt8](repeating: 9, count: 65536),
            [Frame(opcode: .binary, payload: [UInt8](repeating: 9, count: 65536))]
        ),
    ]

    @Test func encoderMatchesTheRFC() {
        #expect(FrameEncoder.encode(Frame(opcode: .text, payload: Self.hello), maskKey: nil) == [0x81, 0x05] + Self.hello)
        #expect(
            FrameEncoder.encode(Frame(opcode: .text, payload: Self.hello), maskKey: Self.key)
                == [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
        #expect(FrameEncoder.encode(Frame(opcode: .binary, payload: [UInt8](repeating: 7, count: 256)), maskKey: nil).prefix(4) == [0x82, 0x7e, 0x01, 0x00])
        #expect(
            FrameEncoder.encode(Frame(opcode: .binary, payload: [UInt8](repeating: 9, count: 65536)), maskKey: nil).prefix(10)
                == [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    /// Every example, fed in chunks of every listed size, decodes to the same frames.
    @Test(arguments: [1, 2, 3, 5, 7, 11, 64, 1000, Int.max])
    func decodesInAnyChunkSize(chunk: Int) throws {
        for (name, role, bytes, frames) in Self.examples {
            var parser = FrameParser(role: role)
            var decoded: [Frame] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + min(chunk, bytes.count))
                parser.append(bytes[offset..<end])
                offset = end
                while let frame = try parser.nextFrame() { decoded.append(frame) }
            }
            #expect(decoded == frames, "\(name) in chunks of \(chunk)")
            #expect(parser.bufferedByteCount == 0)
        }
    }

    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 200_000])
    func roundTripsEveryLengthForm(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 31) }
        for (role, key) in [(Role.client, nil), (Role.server, Self.key)] as [(Role, [UInt8]?)] {
            var parser = FrameParser(role: role)
            parser.append(FrameEncoder.encode(Frame(opcode: .binary, payload: payload), maskKey: key))
            #expect(try parser.nextFrame() == Frame(opcode: .binary, payload: payload))
        }
    }

    @Test(arguments: [
        ("reserved bits", Role.client, [0xC1, 0x00] as [UInt8], WebSocketProtocolError.reservedBitsSet),
        ("opcode 3", .client, [0x83, 0x00], .unknownOpcode(3)),
        ("opcode 0xB", .client, [0x8B, 0x00], .unknownOpcode(0xB)),
        ("long ping", .client, [0x89, 0x7E, 0x00, 0x80], .controlFrameTooLong(126)),
        ("fragmented ping", .client, [0x09, 0x00], .fragmentedControlFrame),
        ("masked from server", .client, [0x81, 0x81, 1, 2, 3, 4, 5], .maskedFrameFromServer),
        ("unmasked from client", .server, [0x81, 0x01, 0x41], .unmaskedFrameFromClient),
        ("2^63 length", .client, [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], .frameTooLarge(1 << 63, limit: 64 << 20)),
        ("2^64-1 length", .client, [0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], .frameTooLarge(UInt64.max, limit: 64 << 20)),
        ("over the limit", .client, [0x82, 0x7F, 0, 0, 0, 0, 0x10, 0, 0, 0], .frameTooLarge(1 << 28, limit: 64 << 20)),
        ("16-bit length below 126", .client, [0x82, 0x7E, 0x00, 0x05], .lengthNotMinimal),
        ("64-bit length below 65536", .client, [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x01, 0x00], .lengthNotMinimal),
    ])
    func rejectsMalformedFrames(name: String, role: Role, bytes: [UInt8], error: WebSocketProtocolError) {
        var parser = FrameParser(role: role)
        parser.append(bytes)
        #expect(throws: error, "\(name)") { try parser.nextFrame() }
    }

    /// The limit is checked from the header alone: no payload needs to arrive.
    @Test func limitCheckedBeforeThePayloadArrives() {
        var parser = FrameParser(role: .client, maximumFrameSize: 1000)
        parser.append([0x82, 0x7E, 0x03, 0xE9])  // 1001 bytes announced, none sent
        #expect(throws: WebSocketProtocolError.frameTooLarge(1001, limit: 1000)) { try parser.nextFrame() }
    }

    @Test func truncatedHeadersWaitForMoreBytes() throws {
        for prefix in [[], [0x82], [0x82, 0x7E], [0x82, 0x7E, 0x01], [0x82, 0x7F, 0, 0, 0]] as [[UInt8]] {
            var parser = FrameParser(role: .client)
            parser.append(prefix)
            #expect(try parser.nextFrame() == nil)
        }
    }

    @Test func closeCodesMapFromErrors() {
        #expect(WebSocketProtocolError.invalidUTF8.closeCode == 1007)
        #expect(WebSocketProtocolError.messageTooLarge(10, limit: 1).closeCode == 1009)
        #expect(WebSocketProtocolError.frameTooLarge(10, limit: 1).closeCode == 1009)
        #expect(WebSocketProtocolError.reservedBitsSet.closeCode == 1002)
    }
}

@Suite struct StateMachineTests {
    @Test func reassemblesFragmentsWithAPingInBetween() {
        var machine = WebSocketStateMachine()
        #expect(machine.received(Frame(fin: false, opcode: .text, payload: Array("Hel".utf8))).isEmpty)
        #expect(machine.received(Frame(opcode: .ping, payload: [1])) == [.send(Frame(opcode: .pong, payload: [1]))])
        #expect(machine.received(Frame(fin: false, opcode: .continuation, payload: Array("l".utf8))).isEmpty)
        #expect(machine.received(Frame(opcode: .continuation, payload: Array("o".utf8))) == [.deliver(.text("Hello"))])
    }

    static let violations: [([Frame], UInt16)] = [
        ([Frame(opcode: .text, payload: [0xC3, 0x28])], 1007),
        ([Frame(opcode: .continuation, payload: [1])], 1002),
        ([Frame(fin: false, opcode: .text, payload: [0x41]), Frame(opcode: .binary, payload: [1])], 1002),
        (
            [
                Frame(fin: false, opcode: .binary, payload: [UInt8](repeating: 0, count: 60)),
                Frame(opcode: .continuation, payload: [UInt8](repeating: 0, count: 60)),
            ], 1009
        ),
        ([Frame(opcode: .close, payload: [0x03, 0xED])], 1002),  // 1005 may not be sent
        ([Frame(opcode: .close, payload: [0x03])], 1002),
    ]

    @Test(arguments: violations)
    func violationsCloseWithTheRightCode(frames: [Frame], code: UInt16) {
        var machine = WebSocketStateMachine(maximumMessageSize: 100)
        var actions: [WebSocketStateMachine.Action] = []
        for frame in frames { actions += machine.received(frame) }
        guard case .send(let close)? = actions.first(where: { if case .send = $0 { true } else { false } }) else {
            Issue.record("no close frame sent: \(actions)")
            return
        }
        #expect(close.opcode == .close)
        #expect(close.payload.prefix(2) == [UInt8(code >> 8), UInt8(code & 0xFF)])
        #expect(machine.isClosed)
        if case .closeConnection? = actions.last {} else { Issue.record("connection not closed") }
    }

    @Test func peerInitiatedCloseIsEchoed() {
        var machine = WebSocketStateMachine()
        let actions = machine.received(Frame(opcode: .close, payload: [0x03, 0xE9] + Array("bye".utf8)))
        #expect(actions == [.send(Frame(opcode: .close, payload: [0x03, 0xE9])), .closeConnection(code: 1001, reason: "bye")])
        #expect(machine.received(Frame(opcode: .text, payload: [0x41])).isEmpty)
    }

    @Test func weInitiateAndThePeerAnswers() {
        var machine = WebSocketStateMachine()
        #expect(machine.close(code: 1000, reason: "done") == Frame(opcode: .close, payload: [0x03, 0xE8] + Array("done".utf8)))
        #expect(machine.close() == nil)
        #expect(machine.received(Frame(opcode: .text, payload: [0x41])).isEmpty)  // dropped while closing
        #expect(machine.received(Frame(opcode: .close, payload: [0x03, 0xE8])) == [.closeConnection(code: 1000, reason: "")])
    }
}

@Suite struct HandshakeTests {
    @Test func requestCarriesKeyVersionAndExtraHeaders() {
        let request = String(decoding: Handshake.request(host: "[::1]:8188", path: "/ws?clientId=a", key: "k", headers: [("Authorization", "Bearer t")]), as: UTF8.self)
        #expect(request.hasPrefix("GET /ws?clientId=a HTTP/1.1\r\nHost: [::1]:8188\r\n"))
        #expect(request.contains("Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(request.contains("Authorization: Bearer t\r\n"))
        #expect(request.hasSuffix("\r\n\r\n"))
    }

    @Test func parsesTheAnswerAndKeepsWhatFollows() throws {
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        let bytes = Array(head.utf8) + [0x81, 0x00]
        #expect(try Handshake.parseResponse(Array(bytes.prefix(20))) == nil)
        let (response, used) = try #require(try Handshake.parseResponse(bytes))
        #expect(used == head.utf8.count)
        try Handshake.validate(response, key: key)
        #expect(throws: HandshakeError.badAccept(expected: Handshake.acceptValue(for: "other"), received: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
            try Handshake.validate(response, key: "other")
        }
    }

    @Test func nonSwitchingAnswersCarryTheStatus() throws {
        let (response, _) = try #require(try Handshake.parseResponse(Array("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".utf8)))
        #expect(throws: HandshakeError.unexpectedStatus(403, "Forbidden")) { try Handshake.validate(response, key: "k") }
        #expect("\(HandshakeError.unexpectedStatus(403, "Forbidden"))" == "the server answered HTTP 403 Forbidden instead of switching to WebSocket")
        #expect(throws: HandshakeError.malformedResponse) { try Handshake.parseResponse(Array("garbage\r\n\r\n".utf8)) }
    }

    @Test(arguments: [
        ("ws://127.0.0.1:8188/ws?clientId=x", "127.0.0.1", 8188, "/ws?clientId=x", "127.0.0.1:8188"),
        ("http://[::1]:9000", "::1", 9000, "/", "[::1]:9000"),
        ("wss://gpu.example.com/api/ws", "gpu.example.com", 443, "/api/ws", "gpu.example.com"),
    ])
    func parsesURLs(text: String, host: String, port: Int, target: String, header: String) throws {
        let url = try WebSocketURL(text)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.target == target)
        #expect(url.hostHeader == header)
    }
}
