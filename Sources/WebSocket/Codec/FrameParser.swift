/// An incremental RFC 6455 frame parser: feed it bytes as they arrive, take out whole frames.
///
/// Each step reads one whole header field or nothing, so a frame split anywhere decodes the same
/// as one read whole. Limits are checked as soon as the length is known, before any payload is
/// buffered, and the 64-bit length is checked before it is converted to `Int`. Nothing a peer
/// sends can trap: every problem is a `WebSocketProtocolError`.
public struct FrameParser: Sendable {
    public let role: Role
    /// The largest frame payload accepted.
    public let maximumFrameSize: Int

    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var state: State = .fixedHeader

    /// How far the current frame's header has got.
    private enum State: Sendable {
        case fixedHeader
        case extendedLength(FixedHeader)
        case maskKey(FixedHeader, length: Int)
        case payload(FixedHeader, length: Int, mask: [UInt8]?)
    }

    private struct FixedHeader: Sendable {
        var fin: Bool
        var opcode: Opcode
        var masked: Bool
        /// The 7-bit length field: the length, or 126/127 for an extended length.
        var shortLength: UInt8
    }

    public init(role: Role, maximumFrameSize: Int = 64 << 20) {
        self.role = role
        self.maximumFrameSize = maximumFrameSize
    }

    /// Bytes received and not yet consumed by a frame.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, or nil if more bytes are needed.
    public mutating func nextFrame() throws(WebSocketProtocolError) -> Frame? {
        while true {
            switch state {
            case .fixedHeader:
                guard bufferedByteCount >= 2 else { return nil }
                let header = try parseFixedHeader(buffer[readIndex], buffer[readIndex + 1])
                readIndex += 2
                if header.shortLength >= 126 {
                    state = .extendedLength(header)
                } else {
                    state = try afterLength(header, Int(header.shortLength))
                }

            case .extendedLength(let header):
                let size = header.shortLength == 126 ? 2 : 8
                guard bufferedByteCount >= size else { return nil }
                var length: UInt64 = 0
                for offset in 0..<size { length = length << 8 | UInt64(buffer[readIndex + offset]) }
                readIndex += size
                if size == 2 && length < 126 { throw .lengthNotMinimal }
                if size == 8 && length < 65536 { throw .lengthNotMinimal }
                // Checked while still 64-bit: a length with the top bit set (2^63 and up) or one over
                // the limit never becomes an Int.
                guard length <= UInt64(maximumFrameSize) else {
                    throw .frameTooLarge(length, limit: maximumFrameSize)
                }
                state = try afterLength(header, Int(length))

            case .maskKey(let header, let length):
                guard bufferedByteCount >= 4 else { return nil }
                let key = Array(buffer[readIndex..<(readIndex + 4)])
                readIndex += 4
                state = .payload(header, length: length, mask: key)

            case .payload(let header, let length, let mask):
                guard bufferedByteCount >= length else { return nil }
                var payload = Array(buffer[readIndex..<(readIndex + length)])
                readIndex += length
                if let mask { FrameEncoder.applyMask(mask, to: &payload) }
                state = .fixedHeader
                return Frame(fin: header.fin, opcode: header.opcode, payload: payload)
            }
        }
    }

    private func parseFixedHeader(_ first: UInt8, _ second: UInt8) throws(WebSocketProtocolError) -> FixedHeader {
        guard first & 0x70 == 0 else { throw .reservedBitsSet }
        guard let opcode = Opcode(rawValue: first & 0x0F) else { throw .unknownOpcode(first & 0x0F) }
        let fin = first & 0x80 != 0
        let masked = second & 0x80 != 0
        let shortLength = second & 0x7F
        if opcode.isControl {
            guard fin else { throw .fragmentedControlFrame }
            guard shortLength <= 125 else { throw .controlFrameTooLong(Int(shortLength)) }
        }
        switch (role, masked) {
        case (.client, true): throw .maskedFrameFromServer
        case (.server, false): throw .unmaskedFrameFromClient
        default: break
        }
        return FixedHeader(fin: fin, opcode: opcode, masked: masked, shortLength: shortLength)
    }

    private func afterLength(_ header: FixedHeader, _ length: Int) throws(WebSocketProtocolError) -> State {
        guard length <= maximumFrameSize else { throw .frameTooLarge(UInt64(length), limit: maximumFrameSize) }
        return header.masked ? .maskKey(header, length: length) : .payload(header, length: length, mask: nil)
    }

    /// Drops consumed bytes once they are most of the buffer, so a long connection does not grow.
    private mutating func compact() {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
    }
}

/// Encodes frames. Clients pass a fresh random mask key for every frame.
public enum FrameEncoder {
    public static func encode(_ frame: Frame, maskKey: [UInt8]?) -> [UInt8] {
        let length = frame.payload.count
        var out: [UInt8] = []
        out.reserveCapacity(length + 14)
        out.append((frame.fin ? 0x80 : 0) | frame.opcode.rawValue)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        if length < 126 {
            out.append(maskBit | UInt8(length))
        } else if length <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(length >> 8))
            out.append(UInt8(length & 0xFF))
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(length) >> UInt64(shift))) }
        }
        if let maskKey {
            precondition(maskKey.count == 4, "a mask key is 4 bytes")
            out.append(contentsOf: maskKey)
            var payload = frame.payload
            applyMask(maskKey, to: &payload)
            out.append(contentsOf: payload)
        } else {
            out.append(contentsOf: frame.payload)
        }
        return out
    }

    /// XORs `payload` with the 4-byte key (masking and unmasking are the same operation).
    public static func applyMask(_ key: [UInt8], to payload: inout [UInt8]) {
        guard payload.count > 0 else { return }
        let k0 = key[0], k1 = key[1], k2 = key[2], k3 = key[3]
        payload.withUnsafeMutableBufferPointer { bytes in
            // Eight bytes at a time, then the tail.
            let word = UInt64(k0) | UInt64(k1) << 8 | UInt64(k2) << 16 | UInt64(k3) << 24
            let wide = word | word << 32
            var index = 0
            if let base = bytes.baseAddress {
                let raw = UnsafeMutableRawPointer(base)
                while index + 8 <= bytes.count {
                    let value = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    raw.storeBytes(of: value ^ UInt64(littleEndian: wide), toByteOffset: index, as: UInt64.self)
                    index += 8
                }
            }
            while index < bytes.count {
                bytes[index] ^= key[index & 3]
                index += 1
            }
        }
    }
}
