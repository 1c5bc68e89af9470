import ComfyCore
import Testing

@Suite struct JSONTests {
    @Test(arguments: [
        (#"{"a":1,"b":[true,false,null],"c":"x"}"#, #"{"a":1,"b":[true,false,null],"c":"x"}"#),
        (#" { "k" : -0.5e3 } "#, #"{"k":-0.5e3}"#),
        (#""\u00e9\n\"\\ \ud83d\ude00""#, "\"é\\n\\\"\\\\ 😀\""),
        (#"18446744073709551615"#, "18446744073709551615"),
        (#"[]"#, "[]"),
        (#"{}"#, "{}"),
    ])
    func roundTrips(input: String, expected: String) throws {
        #expect(try JSONValue(parsing: input).serialized() == expected)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "tru", "{\"a\":1}x", "\"\\x\"", "\"\u{01}\"",
        "[1 2]", "{,}",
    ])
    func rejectsMalformedInput(input: String) {
        #expect(throws: JSONError.self) { try JSONValue(parsing: input) }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONError.self) { try JSONValue(parsing: deep) }
    }

    @Test func keepsKeyOrderAndLastDuplicateWins() throws {
        let value = try JSONValue(parsing: #"{"z":1,"a":2,"z":3}"#)
        #expect(value.objectValue?.keys == ["z", "a"])
        #expect(value["z"] == 3)
    }

    @Test func numbersKeepTheirLiteral() throws {
        let value = try JSONValue(parsing: "[7, 7.0, 1e2]")
        let numbers = value.arrayValue?.compactMap(\.numberValue) ?? []
        #expect(numbers.map(\.literal) == ["7", "7.0", "1e2"])
        #expect(numbers.map(\.isInteger) == [true, false, false])
        #expect(numbers.map(\.double) == [7, 7, 100])
    }

    @Test func prettyPrinting() throws {
        let value: JSONValue = ["a": [1, 2], "b": [:]]
        #expect(value.serialized(pretty: true) == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}")
    }
}
