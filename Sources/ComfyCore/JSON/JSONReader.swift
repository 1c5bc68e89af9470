/// Why JSON parsing failed, with the byte offset where it happened.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidNumber
        case invalidEscape
        case invalidUTF8
        case tooDeep
        case trailingData
        /// A JSON5 `/*` comment that is never closed (the offset is where it starts).
        case unterminatedComment
        /// JSON5's `Infinity` or `NaN` where a value is stored or sent as JSON, which has neither.
        case nonFinite(String)
    }

    public var reason: Reason
    /// Byte offset into the input.
    public var offset: Int

    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// The 1-based line and column (in characters) of `offset` in `text`. Lines end at LF, CR,
    /// CR LF, U+2028 and U+2029, as JSON5 counts them.
    public func location(in text: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var position = 0
        var afterCR = false
        for scalar in text.unicodeScalars {
            if position >= offset { break }
            position += UTF8.width(scalar)
            switch scalar {
            case "\n" where afterCR: break  // the second half of CR LF
            case "\n", "\r", "\u{2028}", "\u{2029}":
                line += 1
                column = 1
            default: column += 1
            }
            afterCR = scalar == "\r"
        }
        return (line, column)
    }

    public var description: String {
        switch reason {
        case .unexpectedEnd: "unexpected end of JSON at byte \(offset)"
        case .unexpectedByte(let byte):
            if byte >= 0x20 && byte < 0x7F {
                "unexpected '\(Character(Unicode.Scalar(byte)))' at byte \(offset)"
            } else {
                "unexpected byte 0x\(String(byte, radix: 16)) at byte \(offset)"
            }
        case .invalidNumber: "invalid number at byte \(offset)"
        case .invalidEscape: "invalid string escape at byte \(offset)"
        case .invalidUTF8: "invalid UTF-8 in string at byte \(offset)"
        case .tooDeep: "JSON nested too deeply at byte \(offset)"
        case .trailingData: "unexpected data after the JSON value at byte \(offset)"
        case .unterminatedComment: "a /* comment that is never closed, from byte \(offset)"
        case .nonFinite(let literal):
            "\(literal) at byte \(offset) cannot be sent to ComfyUI or stored in the queue (JSON has no Infinity or NaN)"
        }
    }
}

/// A pull reader over UTF-8 JSON bytes.
///
/// Every step reads one whole token or throws; nothing is allocated unless a caller asks for a
/// `String`. The event decoder uses it to skip what does not change the outcome (tracebacks,
/// `current_inputs`, repeated `prompt_id`s) without materialising it.
package struct JSONReader: ~Copyable {
    package let bytes: UnsafeBufferPointer<UInt8>
    package var index: Int
    /// Read JSON5 1.0.0 (hand-written files) instead of JSON: comments, trailing commas,
    /// identifier keys, single-quoted and continued strings, hexadecimal, `+`, `.5`, `5.`,
    /// `Infinity` and `NaN`, and JSON5's white space (`JSONReader+JSON5.swift`).
    package var json5 = false
    /// The JSON5 `Infinity` and `NaN` literals read, in order, as the errors they are where
    /// JSON is stored or sent.
    package var nonFinite: [JSONError] = []
    /// Nesting limit for untrusted input, so a hostile server cannot overflow the stack.
    package static let maximumDepth = 256

    package init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.index = 0
    }

    // MARK: Bytes

    /// Skips JSON's four whitespace bytes (strict JSON only: the message path calls it directly).
    @inline(__always)
    package mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Skips whitespace, and in JSON5 mode comments and JSON5's other white space too.
    @inline(__always)
    package mutating func skipSpace() throws(JSONError) {
        skipWhitespace()
        if json5 { try skipJSON5Space() }
    }

    /// The next non-whitespace byte, without consuming it.
    @inline(__always)
    package mutating func peek() throws(JSONError) -> UInt8 {
        try skipSpace()
        guard index < bytes.count else { throw JSONError(.unexpectedEnd, at: index) }
        return bytes[index]
    }

    @inline(__always)
    package mutating func expect(_ byte: UInt8) throws(JSONError) {
        let next = try peek()
        guard next == byte else { throw JSONError(.unexpectedByte(next), at: index) }
        index += 1
    }

    /// Throws unless only whitespace is left.
    package mutating func expectEnd() throws(JSONError) {
        try skipSpace()
        if index < bytes.count { throw JSONError(.trailingData, at: index) }
    }

    // MARK: Containers

    /// Consumes `{`.
    package mutating func beginObject() throws(JSONError) { try expect(UInt8(ascii: "{")) }

    /// Consumes `[`.
    package mutating func beginArray() throws(JSONError) { try expect(UInt8(ascii: "[")) }

    /// Reads the next key of an object (and its colon) as a range of raw bytes, or returns nil and
    /// consumes `}` at the end. `first` tracks whether a comma is expected.
    package mutating func nextKey(first: inout Bool) throws(JSONError) -> Range<Int>? {
        var next = try peek()
        if next == UInt8(ascii: "}") {
            index += 1
            return nil
        }
        if !first {
            guard next == UInt8(ascii: ",") else { throw JSONError(.unexpectedByte(next), at: index) }
            index += 1
            next = try peek()
            if json5 && next == UInt8(ascii: "}") {  // a trailing comma
                index += 1
                return nil
            }
        }
        first = false
        let range: Range<Int>
        if next == UInt8(ascii: "\"") || (json5 && next == UInt8(ascii: "'")) {
            range = try rawStringRange()
        } else if json5 {
            range = try identifierRange()
        } else {
            throw JSONError(.unexpectedByte(next), at: index)
        }
        try expect(UInt8(ascii: ":"))
        return range
    }

    /// True when another array element follows (consuming the comma), false at `]` (consumed).
    package mutating func nextElement(first: inout Bool) throws(JSONError) -> Bool {
        let next = try peek()
        if next == UInt8(ascii: "]") {
            index += 1
            return false
        }
        if !first {
            guard next == UInt8(ascii: ",") else { throw JSONError(.unexpectedByte(next), at: index) }
            index += 1
            if json5, try peek() == UInt8(ascii: "]") {  // a trailing comma
                index += 1
                return false
            }
        }
        first = false
        return true
    }

    /// Whether the raw key bytes equal `key` (keys we look for never contain escapes).
    @inline(__always)
    package func key(_ range: Range<Int>, is key: StaticString) -> Bool {
        guard range.count == key.utf8CodeUnitCount else { return false }
        let start = key.utf8Start
        for offset in 0..<range.count where bytes[range.lowerBound + offset] != start[offset] {
            return false
        }
        return true
    }

    // MARK: Scalars

    /// Consumes `null` if it is next and reports whether it was.
    package mutating func consumeNull() throws(JSONError) -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    package mutating func readBool() throws(JSONError) -> Bool {
        switch try peek() {
        case UInt8(ascii: "t"):
            try literal("true")
            return true
        case UInt8(ascii: "f"):
            try literal("false")
            return false
        case let byte: throw JSONError(.unexpectedByte(byte), at: index)
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw JSONError(.unexpectedEnd, at: bytes.count) }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw JSONError(.unexpectedByte(bytes[index + offset]), at: index + offset)
        }
        index += count
    }

    /// The raw text of the next number, validated against JSON's grammar.
    package mutating func readNumberRange() throws(JSONError) -> Range<Int> {
        try skipSpace()
        let start = index
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw JSONError(.unexpectedEnd, at: index) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        } else {
            throw JSONError(.unexpectedByte(bytes[index]), at: index)
        }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw JSONError(.invalidNumber, at: index) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (bytes[index] | 0x20) == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw JSONError(.invalidNumber, at: index) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        return start..<index
    }

    /// Reads a number as a Double. Plain decimals such as `3`, `1.0` or `0.25` take a fast path;
    /// anything else (exponents, long mantissas) goes through the standard library's parser.
    package mutating func readDouble() throws(JSONError) -> Double {
        let range = try readNumberRange()
        return Self.double(bytes, range)
    }

    package static func double(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Double {
        var i = range.lowerBound
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        var sawDot = false
        while i < range.upperBound {
            let byte = bytes[i]
            if byte == UInt8(ascii: ".") {
                sawDot = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                mantissa = mantissa &* 10 &+ UInt64(byte &- UInt8(ascii: "0"))
                digits += 1
                if sawDot { scale += 1 }
            } else {
                break  // exponent: slow path
            }
            i += 1
        }
        if i == range.upperBound && digits <= 15 && scale <= 15 {
            let value = Double(mantissa) / powersOfTen[scale]
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        return Double(text) ?? .nan
    }

    private static let powersOfTen: [Double] = (0...15).map { exponent in
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }

    // MARK: Strings

    /// Skips a string and returns the range of its raw bytes (between the quotes, escapes
    /// unresolved). Validates escapes but not UTF-8.
    package mutating func rawStringRange() throws(JSONError) -> Range<Int> {
        if json5 { return try rawJSON5StringRange() }
        try expect(UInt8(ascii: "\""))
        let start = index
        while index < bytes.count {
            index = Self.nextSpecialByte(in: bytes, from: index)
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return start..<(index - 1)
            }
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < bytes.count else { throw JSONError(.unexpectedEnd, at: bytes.count) }
                    for offset in 1...4 where hexValue(bytes[index + offset]) == nil {
                        throw JSONError(.invalidEscape, at: index + offset)
                    }
                    index += 5
                default:
                    throw JSONError(.invalidEscape, at: index)
                }
                continue
            }
            throw JSONError(.unexpectedByte(byte), at: index)  // a control character
        }
        throw JSONError(.unexpectedEnd, at: index)
    }

    /// The position of the next `"`, `\\` or control byte at or after `start` (or the end).
    /// Strings are most of the bytes ComfyUI sends, so this looks at eight bytes at a time.
    @inline(__always)
    private static func nextSpecialByte(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var position = start
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while position + 8 <= bytes.count {
                let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                // A zero byte in `quote`/`backslash`, or a byte below 0x20 in `word`, sets its high bit.
                let hits =
                    ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
                let first = hits & highs
                // The lowest flagged byte is exact (borrows only disturb bytes above a real hit).
                if first != 0 { return position + first.trailingZeroBitCount / 8 }
                position += 8
            }
        }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { return position }
            position += 1
        }
        return position
    }

    /// Reads a string value.
    package mutating func readString() throws(JSONError) -> String {
        let range = try rawStringRange()
        return try Self.string(bytes, range)
    }

    /// Reads a string, or nil for `null`.
    package mutating func readOptionalString() throws(JSONError) -> String? {
        if try consumeNull() { return nil }
        return try readString()
    }

    /// Decodes the raw bytes of a string (as returned by `rawStringRange`, or an identifier key),
    /// resolving escapes. One decoder for JSON and JSON5: the scanners admit only their own
    /// escapes, so JSON5's (`\v`, `\0`, `\xHH`, line continuations, any other character standing
    /// for itself) never reach it from a JSON document.
    package static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(JSONError) -> String {
        let raw = UnsafeBufferPointer(rebasing: bytes[range])
        if !raw.contains(UInt8(ascii: "\\")) {
            // Invalid UTF-8 is repaired with U+FFFD rather than refused: the WebSocket layer
            // already validates text frames, and a replacement character is harmless here.
            return String(decoding: raw, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = range.lowerBound
        while i < range.upperBound {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            let escape = bytes[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"): appendUnicodeEscape(bytes, at: &i, end: range.upperBound, to: &out)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "0"): out.append(0x00)
            case UInt8(ascii: "x"):
                appendScalar(UInt32(hexValue(bytes[i])!) << 4 | UInt32(hexValue(bytes[i + 1])!), to: &out)
                i += 2
            case 0x0A: break  // a JSON5 line continuation stands for nothing
            case 0x0D: if i < range.upperBound && bytes[i] == 0x0A { i += 1 }
            case 0xE2 where i + 1 < range.upperBound && bytes[i] == 0x80 && (bytes[i + 1] == 0xA8 || bytes[i + 1] == 0xA9): i += 2
            default: out.append(escape)  // \" \\ \/, and in JSON5 any other character (its other UTF-8 bytes follow as they are)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the character of the `\\uXXXX` escape whose digits start at `i` (a surrogate pair
    /// when a second escape completes it; U+FFFD for a lone surrogate) and steps past it.
    static func appendUnicodeEscape(_ bytes: UnsafeBufferPointer<UInt8>, at i: inout Int, end: Int, to out: inout [UInt8]) {
        var scalar = hexQuad(bytes, i)
        i += 4
        if (0xD800..<0xDC00).contains(scalar), i + 5 < end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
            let low = hexQuad(bytes, i + 2)
            if (0xDC00..<0xE000).contains(low) {
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            }
        }
        appendScalar(scalar, to: &out)
    }

    /// Appends `scalar` as UTF-8 (U+FFFD where it is not a Unicode scalar).
    static func appendScalar(_ scalar: UInt32, to out: inout [UInt8]) {
        out.append(contentsOf: Array(String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8))
    }

    static func hexQuad(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | UInt32(hexValue(bytes[i + offset]) ?? 0) }
        return value
    }

    // MARK: Skipping

    /// Skips one whole value of any kind.
    package mutating func skipValue(depth: Int = 0) throws(JSONError) {
        guard depth < Self.maximumDepth else { throw JSONError(.tooDeep, at: index) }
        switch try peek() {
        case UInt8(ascii: "{"):
            index += 1
            var first = true
            while try nextKey(first: &first) != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            index += 1
            var first = true
            while try nextElement(first: &first) { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""): _ = try rawStringRange()
        case UInt8(ascii: "'") where json5: _ = try rawStringRange()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try readBool()
        case UInt8(ascii: "n"): _ = try consumeNull()
        default:
            if json5 { _ = try readJSON5Number() } else { _ = try readNumberRange() }
        }
    }
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
