import ComfyCore

/// The byte encoding values take across the Swift ↔ Lua boundary (see CLuaShim.h): Swift never
/// pushes onto a Lua stack itself, so no Lua error can unwind a Swift frame.
///
/// Lua → Swift: nil is `.null`; integers and floats are numbers; a table that is a sequence
/// 1…n is a list, any other table an object (integer keys written in decimal, keys sorted, since
/// Lua tables have no order). Swift → Lua: `.null` is nil (and left out of tables).
enum LuaValueCodec {
    /// A value Lua could not hand over (a function, a cycle), with the reason.
    struct Unconvertible: Error, CustomStringConvertible {
        var description: String
    }

    static func encode(_ values: [JSONValue]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        for value in values { encode(value, into: &bytes) }
        return bytes
    }

    static func encode(_ value: JSONValue, into bytes: inout [UInt8]) {
        switch value {
        case .null: bytes.append(UInt8(ascii: "n"))
        case .bool(let flag): bytes.append(UInt8(ascii: flag ? "t" : "f"))
        case .number(let number):
            if number.isInteger, let integer = Int64(number.literal) {
                bytes.append(UInt8(ascii: "i"))
                append64(UInt64(bitPattern: integer), to: &bytes)
            } else {
                bytes.append(UInt8(ascii: "d"))
                append64(number.double.bitPattern, to: &bytes)
            }
        case .string(let text): appendString(text, tag: "s", to: &bytes)
        case .array(let items):
            bytes.append(UInt8(ascii: "a"))
            append32(items.count, to: &bytes)
            for item in items { encode(item, into: &bytes) }
        case .object(let object):
            bytes.append(UInt8(ascii: "o"))
            append32(object.count, to: &bytes)
            for (key, member) in object {
                appendString(key, tag: "s", to: &bytes)
                encode(member, into: &bytes)
            }
        }
    }

    /// Every value in `bytes`.
    static func decodeAll(_ bytes: UnsafeRawBufferPointer) throws(Unconvertible) -> [JSONValue] {
        var reader = Reader(bytes: bytes)
        var values: [JSONValue] = []
        while reader.offset < bytes.count { values.append(try reader.value()) }
        return values
    }

    private static func append32(_ value: Int, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func append64(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendString(_ text: String, tag: Unicode.Scalar, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: tag))
        var text = text
        text.withUTF8 { utf8 in
            append32(utf8.count, to: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func byte() throws(Unconvertible) -> UInt8 {
            guard offset < bytes.count else { throw Unconvertible(description: "truncated value") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u32() throws(Unconvertible) -> Int {
            var value = 0
            for shift in stride(from: 0, to: 32, by: 8) { value |= Int(try byte()) << shift }
            return value
        }

        mutating func u64() throws(Unconvertible) -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 8) { value |= UInt64(try byte()) << UInt64(shift) }
            return value
        }

        mutating func string() throws(Unconvertible) -> String {
            let count = try u32()
            guard count <= bytes.count - offset else { throw Unconvertible(description: "truncated value") }
            defer { offset += count }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        }

        mutating func value() throws(Unconvertible) -> JSONValue {
            switch try byte() {
            case UInt8(ascii: "n"): return .null
            case UInt8(ascii: "f"): return .bool(false)
            case UInt8(ascii: "t"): return .bool(true)
            case UInt8(ascii: "i"): return .number(JSONNumber(Int(Int64(bitPattern: try u64()))))
            case UInt8(ascii: "d"):
                let number = Double(bitPattern: try u64())
                guard number.isFinite else { throw Unconvertible(description: "\(number) has no JSON form") }
                return .number(JSONNumber(number))
            case UInt8(ascii: "s"): return .string(try string())
            case UInt8(ascii: "x"): throw Unconvertible(description: try string())
            case UInt8(ascii: "a"):
                let count = try u32()
                var items: [JSONValue] = []
                items.reserveCapacity(min(count, 1024))
                for _ in 0..<count { items.append(try value()) }
                return .array(items)
            case UInt8(ascii: "o"):
                let count = try u32()
                var members: [(String, JSONValue)] = []
                for _ in 0..<count {
                    guard case .string(let key) = try value() else { throw Unconvertible(description: "a table key must be a string") }
                    members.append((key, try value()))
                }
                var object = JSONObject()
                for (key, member) in members.sorted(by: { $0.0 < $1.0 }) { object.append(key, member) }
                return .object(object)
            case let tag:
                throw Unconvertible(description: "bad value tag \(tag)")
            }
        }
    }
}
