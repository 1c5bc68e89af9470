/// A frame's opcode (RFC 6455 §5.2).
public enum Opcode: UInt8, Sendable, Equatable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// One WebSocket frame, unmasked.
public struct Frame: Sendable, Equatable {
    public var fin: Bool
    public var opcode: Opcode
    public var payload: [UInt8]

    public init(fin: Bool = true, opcode: Opcode, payload: [UInt8]) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
    }
}

/// Which end of the connection we are: clients mask what they send and refuse masked frames;
/// servers do the opposite.
public enum Role: Sendable, Equatable {
    case client
    case server
}

/// Everything that can be wrong with what a peer sent. Each maps to the close code we answer with.
public enum WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    case reservedBitsSet
    case unknownOpcode(UInt8)
    case controlFrameTooLong(Int)
    case fragmentedControlFrame
    case maskedFrameFromServer
    case unmaskedFrameFromClient
    case lengthNotMinimal
    case frameTooLarge(UInt64, limit: Int)
    case messageTooLarge(Int, limit: Int)
    case unexpectedContinuation
    case expectedContinuation
    case invalidUTF8
    case invalidClosePayload

    /// 1002 protocol error, 1007 invalid data, 1009 too big.
    public var closeCode: UInt16 {
        switch self {
        case .invalidUTF8: 1007
        case .frameTooLarge, .messageTooLarge: 1009
        default: 1002
        }
    }

    public var description: String {
        switch self {
        case .reservedBitsSet: "frame has reserved bits set"
        case .unknownOpcode(let opcode): "unknown opcode 0x\(String(opcode, radix: 16))"
        case .controlFrameTooLong(let length): "control frame of \(length) bytes (limit 125)"
        case .fragmentedControlFrame: "fragmented control frame"
        case .maskedFrameFromServer: "the server sent a masked frame"
        case .unmaskedFrameFromClient: "the client sent an unmasked frame"
        case .lengthNotMinimal: "frame length not in its shortest form"
        case .frameTooLarge(let length, let limit): "frame of \(length) bytes exceeds the limit of \(limit)"
        case .messageTooLarge(let length, let limit): "message of \(length) bytes exceeds the limit of \(limit)"
        case .unexpectedContinuation: "continuation frame without a message to continue"
        case .expectedContinuation: "new data frame in the middle of a fragmented message"
        case .invalidUTF8: "text message is not valid UTF-8"
        case .invalidClosePayload: "invalid close frame payload"
        }
    }
}
