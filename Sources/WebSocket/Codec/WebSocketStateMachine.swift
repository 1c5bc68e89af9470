/// A whole message.
public enum WebSocketMessage: Sendable, Equatable {
    case text(String)
    case binary([UInt8])
}

/// The message layer and the close handshake, as a pure state machine: fed frames, it returns
/// what the shell should do. Fragments are reassembled, text is validated as UTF-8, pings are
/// answered, and either side may start the close handshake.
public struct WebSocketStateMachine: Sendable {
    /// What to do next.
    public enum Action: Sendable, Equatable {
        /// Hand a complete message to the application.
        case deliver(WebSocketMessage)
        /// Write this frame (a pong, or the close reply).
        case send(Frame)
        /// The close handshake is complete (or the peer broke the protocol and we sent our close):
        /// close the socket. `code` is the peer's, nil if it sent none.
        case closeConnection(code: UInt16?, reason: String)
    }

    private enum State: Sendable {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        case closed
    }

    public let maximumMessageSize: Int
    private var state: State = .open
    private var fragments: (opcode: Opcode, bytes: [UInt8])?

    public init(maximumMessageSize: Int = 64 << 20) {
        self.maximumMessageSize = maximumMessageSize
    }

    public var isOpen: Bool { if case .open = state { true } else { false } }
    public var isClosed: Bool { if case .closed = state { true } else { false } }

    /// Starts the close handshake. Returns the frame to send, or nil if closing already began.
    public mutating func close(code: UInt16 = 1000, reason: String = "") -> Frame? {
        guard case .open = state else { return nil }
        state = .closeSent
        return Frame(opcode: .close, payload: Self.closePayload(code: code, reason: reason))
    }

    /// A frame arrived.
    public mutating func received(_ frame: Frame) -> [Action] {
        guard !isClosed else { return [] }
        do {
            return try handle(frame)
        } catch {
            return fail(error)
        }
    }

    /// The parser rejected the peer's bytes: answer with the matching close code and stop.
    public mutating func fail(_ error: WebSocketProtocolError) -> [Action] {
        let wasOpen = isOpen
        state = .closed
        var actions: [Action] = []
        if wasOpen {
            actions.append(
                .send(Frame(opcode: .close, payload: Self.closePayload(code: error.closeCode, reason: "\(error)"))))
        }
        actions.append(.closeConnection(code: nil, reason: "\(error)"))
        return actions
    }

    private mutating func handle(_ frame: Frame) throws(WebSocketProtocolError) -> [Action] {
        switch frame.opcode {
        case .ping:
            guard isOpen else { return [] }
            return [.send(Frame(opcode: .pong, payload: frame.payload))]
        case .pong:
            return []
        case .close:
            let (code, reason) = try Self.parseClosePayload(frame.payload)
            let wasOpen = isOpen
            state = .closed
            var actions: [Action] = []
            // Echo the code, as RFC 6455 §5.5.1 asks, when the peer started the handshake.
            if wasOpen { actions.append(.send(Frame(opcode: .close, payload: code.map { Self.closePayload(code: $0, reason: "") } ?? []))) }
            actions.append(.closeConnection(code: code, reason: reason))
            return actions
        case .text, .binary:
            guard fragments == nil else { throw .expectedContinuation }
            guard isOpen else { return [] }  // data after our close is dropped
            if frame.fin { return [.deliver(try Self.message(frame.opcode, frame.payload))] }
            try checkSize(frame.payload.count)
            fragments = (frame.opcode, frame.payload)
            return []
        case .continuation:
            guard var pending = fragments else { throw .unexpectedContinuation }
            try checkSize(pending.bytes.count + frame.payload.count)
            pending.bytes.append(contentsOf: frame.payload)
            guard frame.fin else {
                fragments = pending
                return []
            }
            fragments = nil
            guard isOpen else { return [] }
            return [.deliver(try Self.message(pending.opcode, pending.bytes))]
        }
    }

    private func checkSize(_ size: Int) throws(WebSocketProtocolError) {
        guard size <= maximumMessageSize else { throw .messageTooLarge(size, limit: maximumMessageSize) }
    }

    private static func message(_ opcode: Opcode, _ bytes: [UInt8]) throws(WebSocketProtocolError) -> WebSocketMessage {
        guard opcode == .text else { return .binary(bytes) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return .text(text)
    }

    static func closePayload(code: UInt16, reason: String) -> [UInt8] {
        var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        payload.append(contentsOf: Array(reason.utf8).prefix(123))  // control frames carry ≤ 125 bytes
        return payload
    }

    /// Reads a close payload: empty, or a valid code and a UTF-8 reason.
    static func parseClosePayload(_ payload: [UInt8]) throws(WebSocketProtocolError) -> (UInt16?, String) {
        if payload.isEmpty { return (nil, "") }
        guard payload.count >= 2 else { throw .invalidClosePayload }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: break
        default: throw .invalidClosePayload
        }
        guard let reason = String(validating: payload[2...], as: UTF8.self) else { throw .invalidUTF8 }
        return (code, reason)
    }
}
