/// A JSON number kept as its literal text, so a 64-bit seed such as 18446744073709551615
/// survives a round trip exactly.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number as written (validated JSON number grammar).
    public let literal: String

    package init(literal: String) { self.literal = literal }

    public init(_ value: Int) { literal = String(value) }
    public init(_ value: UInt64) { literal = String(value) }
    public init(_ value: Double) {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
            literal = String(Int64(value)) + ".0"
        } else if value.isFinite {
            literal = "\(value)"
        } else {
            literal = "0"  // JSON has no NaN or infinity
        }
    }

    public var double: Double { Double(literal) ?? .nan }
    /// False for JSON5's `Infinity`, `-Infinity` and `NaN` (never in JSON itself).
    public var isFinite: Bool { literal.last.map { $0.isNumber } ?? false }
    /// The value as an Int when the literal is an integer that fits.
    public var int: Int? { Int(literal) }
    /// Whether the literal has no fraction or exponent.
    public var isInteger: Bool { isFinite && !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) }
    public var description: String { literal }
}

/// A JSON object that keeps its keys in document order.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []

    public init() {}
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Reads or replaces a member; assigning nil removes it. Lookup is linear: objects here are small
    /// or are indexed by their owners (the graph keeps its own dictionary).
    public subscript(key: String) -> JSONValue? {
        get { keys.firstIndex(of: key).map { values[$0] } }
        set {
            if let index = keys.firstIndex(of: key) {
                if let newValue {
                    values[index] = newValue
                } else {
                    keys.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    /// Appends without checking for an existing key (the parser: later duplicates win on lookup
    /// only if removed first, so the parser uses the subscript instead when it sees a duplicate).
    package mutating func append(_ key: String, _ value: JSONValue) {
        keys.append(key)
        values.append(value)
    }

    public func makeIterator() -> Zip2Sequence<[String], [JSONValue]>.Iterator {
        zip(keys, values).makeIterator()
    }
}

/// A parsed JSON document. Used where structure matters more than speed: graphs, traces, history
/// records, command output. The hot message path uses `ServerEventDecoder` instead.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
    public static func double(_ value: Double) -> JSONValue { .number(JSONNumber(value)) }

    public var objectValue: JSONObject? { if case .object(let object) = self { object } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let array) = self { array } else { nil } }
    public var stringValue: String? { if case .string(let string) = self { string } else { nil } }
    public var numberValue: JSONNumber? { if case .number(let number) = self { number } else { nil } }
    public var boolValue: Bool? { if case .bool(let bool) = self { bool } else { nil } }
    public var isNull: Bool { self == .null }

    /// Member access for objects; nil for anything else.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// A short name for the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number(let number): number.isInteger ? "an integer" : "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

extension JSONValue {
    /// Parses one JSON document.
    public init(parsing text: String) throws(JSONError) {
        var text = text
        let result = text.withUTF8 { bytes in Result { () throws(JSONError) in try JSONValue(parsing: bytes) } }
        self = try result.get()
    }

    /// Parses one JSON document from UTF-8 bytes.
    public init(parsing bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        var reader = JSONReader(bytes)
        self = try reader.readValue()
        try reader.expectEnd()
    }

    /// Parses a hand-written document as JSON5 1.0.0 (job files, workflows, the servers file).
    /// `Infinity` and `NaN` are refused (`.nonFinite`, at the first) unless `allowingNonFinite`:
    /// whatever comes from such a file is stored or sent as JSON, which has neither.
    public init(parsingJSON5 text: String, allowingNonFinite: Bool = false) throws(JSONError) {
        var text = text
        let result = text.withUTF8 { bytes in
            Result { () throws(JSONError) in
                var reader = JSONReader(bytes)
                reader.json5 = true
                let value = try reader.readValue()
                try reader.expectEnd()
                if !allowingNonFinite, let first = reader.nonFinite.first { throw first }
                return value
            }
        }
        self = try result.get()
    }

    /// Parses one JSON document from UTF-8 bytes.
    public init(parsing bytes: [UInt8]) throws(JSONError) {
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONError) in try JSONValue(parsing: buffer) }
        }
        self = try result.get()
    }
}

extension JSONReader {
    /// Reads any value into a `JSONValue` tree.
    package mutating func readValue(depth: Int = 0) throws(JSONError) -> JSONValue {
        guard depth < Self.maximumDepth else { throw JSONError(.tooDeep, at: index) }
        switch try peek() {
        case UInt8(ascii: "{"):
            index += 1
            var object = JSONObject()
            var first = true
            while let key = try nextKey(first: &first) {
                let name = try Self.string(bytes, key)
                let value = try readValue(depth: depth + 1)
                if object[name] != nil { object[name] = value } else { object.append(name, value) }
            }
            return .object(object)
        case UInt8(ascii: "["):
            index += 1
            var array: [JSONValue] = []
            var first = true
            while try nextElement(first: &first) { array.append(try readValue(depth: depth + 1)) }
            return .array(array)
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "'") where json5: return .string(try readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try readBool())
        case UInt8(ascii: "n"):
            _ = try consumeNull()
            return .null
        default:
            if json5 { return .number(try readJSON5Number()) }
            let range = try readNumberRange()
            let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            return .number(JSONNumber(literal: literal))
        }
    }
}
