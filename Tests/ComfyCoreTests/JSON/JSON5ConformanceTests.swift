import ComfyCore
import Foundation
import Testing

/// JSON5 1.0.0 against the json5 project's own parse tests (`Tests/Fixtures/json5-tests`), and
/// the values and errors the tests there do not spell out.
struct JSON5ConformanceTests {
    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/json5-tests")

    /// Every case file, relative to the folder: `.json` and `.json5` are valid, `.js` and `.txt` not.
    static let cases: [String] = {
        let enumerator = FileManager.default.enumerator(atPath: folder.path)
        var found: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if ["json", "json5", "js", "txt"].contains((path as NSString).pathExtension) { found.append(path) }
        }
        return found.sorted()
    }()

    static func text(_ path: String) throws -> String {
        try String(decoding: Data(contentsOf: folder.appendingPathComponent(path)), as: UTF8.self)
    }

    @Test func theSuiteIsThere() {
        #expect(Self.cases.count == 113, "\(Self.cases.count) case files")
        #expect(Self.cases.filter { $0.hasSuffix(".json") || $0.hasSuffix(".json5") }.count == 82)
    }

    @Test(arguments: cases) func caseFile(_ path: String) throws {
        let text = try Self.text(path)
        let valid = path.hasSuffix(".json") || path.hasSuffix(".json5")
        if valid {
            let value = try JSONValue(parsingJSON5: text, allowingNonFinite: true)
            if path.hasSuffix(".json") {
                // JSON stays JSON: the same value as the strict parser's.
                #expect(value == (try JSONValue(parsing: text)), "\(path)")
            }
        } else {
            #expect(throws: JSONError.self, "\(path) must be refused") { try JSONValue(parsingJSON5: text, allowingNonFinite: true) }
        }
    }

    @Test(arguments: [
        ("numbers/hexadecimal.json5", "200"),
        ("numbers/hexadecimal-lowercase-letter.json5", "200"),
        ("numbers/negative-hexadecimal.json5", "-200"),
        ("numbers/hexadecimal-with-integer-exponent.json5", "51428"),
        ("numbers/float-leading-decimal-point.json5", "0.5"),
        ("numbers/negative-float-leading-decimal-point.json5", "-0.5"),
        ("numbers/float-trailing-decimal-point.json5", "5.0"),
        ("numbers/float-trailing-decimal-point-with-integer-exponent.json5", "5.0e4"),
        ("numbers/positive-integer.json5", "15"),
        ("numbers/infinity.json5", "Infinity"),
        ("numbers/negative-infinity.json5", "-Infinity"),
        ("numbers/positive-infinity.json5", "Infinity"),
        ("numbers/nan.json5", "NaN"),
    ])
    func numbers(_ path: String, _ literal: String) throws {
        let value = try JSONValue(parsingJSON5: Self.text(path), allowingNonFinite: true)
        #expect(value.numberValue?.literal == literal)
        #expect(value.numberValue?.isFinite == !(literal.hasSuffix("Infinity") || literal == "NaN"))
    }

    @Test func theReadmeExample() throws {
        let value = try JSONValue(parsingJSON5: Self.text("misc/readme-example.json5"), allowingNonFinite: true)
        #expect(value["foo"] == "bar")
        #expect(value["while"] == true)
        #expect(value["this"] == "is a multi-line string")
        #expect(value["here"] == "is another")
        #expect(value["hex"]?.numberValue?.literal == "3735928559")
        #expect(value["half"]?.numberValue?.double == 0.5)
        #expect(value["delta"]?.numberValue?.int == 10)
        #expect(value["to"]?.numberValue?.double == .infinity)
        #expect(value["oh"]?.arrayValue?.count == 3)
        #expect(value.objectValue?.keys == ["foo", "while", "this", "here", "hex", "half", "delta", "to", "finally", "oh"])
    }

    @Test(arguments: [
        ("new-lines/escaped-lf.json5", "line 1 line 2"),
        ("new-lines/escaped-crlf.json5", "line 1 line 2"),
        ("new-lines/escaped-cr.json5", "line 1 line 2"),
    ])
    func continuedStrings(_ path: String, _ expected: String) throws {
        #expect(try JSONValue(parsingJSON5: Self.text(path))["a"] == .string(expected))
    }

    @Test(arguments: [
        (#"'I can\'t wait'"#, "I can't wait"),
        (#""\v\0\x41\u00e9\q""#, "\u{0B}\u{00}Aéq"),
        (#""\ud83d\ude00""#, "😀"),
        ("'a\u{2028}b'", "a\u{2028}b"),  // U+2028 may stand in a string unescaped
        ("\"tab\there\"", "tab\there"),
        ("'\\\u{2029}x'", "x"),  // a backslash before U+2029 continues the line
    ])
    func strings(_ source: String, _ expected: String) throws {
        #expect(try JSONValue(parsingJSON5: source) == .string(expected))
    }

    @Test func identifiersOfAnyScript() throws {
        #expect(try JSONValue(parsingJSON5: Self.text("todo/unicode-unquoted-key.json5")).objectValue?.keys == ["ümlåût"])
        #expect(try JSONValue(parsingJSON5: Self.text("todo/unicode-escaped-unquoted-key.json5")).objectValue?.keys == ["sigΣma"])
        #expect(try JSONValue(parsingJSON5: "{$_a1\u{0301}: 1, _: 2, \\u0061b: 3}").objectValue?.keys == ["$_a1\u{0301}", "_", "ab"])
    }

    @Test func everyKindOfWhiteSpace() throws {
        let spaces = "\u{09}\u{0A}\u{0B}\u{0C}\u{0D}\u{20}\u{A0}\u{FEFF}\u{2028}\u{2029}\u{3000}\u{2003}"
        #expect(try JSONValue(parsingJSON5: spaces + "[1," + spaces + "2]" + spaces) == [1, 2])
        #expect(try JSONValue(parsingJSON5: "[1, // to the end of the line\r2]") == [1, 2])
        #expect(try JSONValue(parsingJSON5: "[1, // to the end of the line\u{2028}2]") == [1, 2])
    }

    /// Errors say where, in lines and columns as JSON5 counts them (CR, CR LF, U+2028 end lines).
    @Test(arguments: [
        ("{\n  a: 1,\n  /* never closed\n", 3, 3, "never closed"),
        ("{\r\n  a: 1,\r\n  10b: 2\r\n}", 3, 3, "unexpected '1'"),
        ("{\r  a: 010\r}", 2, 7, "invalid number"),
        ("[\"one\n\"]", 1, 6, "unexpected byte 0xa"),
        ("['\\1']", 1, 4, "invalid string escape"),
        ("{\n  seeds: [1, 2, Infinity],\n}", 2, 17, "Infinity at byte"),
        ("[\u{2028}-NaN]", 2, 1, "-NaN"),
        ("", 1, 1, "unexpected end"),
    ])
    func errorsSayWhere(_ source: String, _ line: Int, _ column: Int, _ fragment: String) {
        do {
            _ = try JSONValue(parsingJSON5: source)
            Issue.record("\(source.debugDescription) was accepted")
        } catch {
            let location = error.location(in: source)
            #expect(location.line == line && location.column == column, "\(source.debugDescription): \(error) at \(location)")
            #expect("\(error)".contains(fragment), "\(error)")
        }
    }

    /// Where JSON is read (ComfyUI's messages, the queue, `/object_info`), none of this is accepted.
    @Test(arguments: ["{a: 1}", "[1,]", "// c\n1", "'s'", "0x10", "+1", ".5", "5.", "Infinity", "NaN", "\"a\\\nb\"", "\u{A0}1", "\"\\x41\""])
    func jsonStaysStrict(_ source: String) {
        #expect(throws: JSONError.self) { try JSONValue(parsing: source) }
    }

    @Test func largeHexadecimal() throws {
        #expect(try JSONValue(parsingJSON5: "0xFFFFFFFFFFFFFFFF").numberValue?.literal == "18446744073709551615")
        #expect(try JSONValue(parsingJSON5: "0x10000000000000000").numberValue?.double == 18446744073709551616)
    }
}
