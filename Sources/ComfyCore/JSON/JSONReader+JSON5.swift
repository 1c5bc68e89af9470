/// JSON5 1.0.0 (https://spec.json5.org), for the files people write by hand: job files, the
/// servers file, workflows. Strict JSON never comes here; these run only when `json5` is set.
extension JSONReader {
    // MARK: White space and comments

    /// Skips JSON5 white space (tab, line feed, vertical tab, form feed, carriage return, space,
    /// NBSP, BOM, U+2028/9 and every other space separator) and comments. A `//` comment ends at
    /// any line terminator (LF, CR, U+2028, U+2029); a `/*` comment must be closed.
    mutating func skipJSON5Space() throws(JSONError) {
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20: index += 1
            case UInt8(ascii: "/"):
                guard index + 1 < bytes.count else { return }
                if bytes[index + 1] == UInt8(ascii: "/") {
                    index += 2
                    while index < bytes.count && lineTerminatorLength(at: index) == 0 { index += 1 }
                } else if bytes[index + 1] == UInt8(ascii: "*") {
                    let start = index
                    index += 2
                    while index + 1 < bytes.count && !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) {
                        index += 1
                    }
                    guard index + 1 < bytes.count else { throw JSONError(.unterminatedComment, at: start) }
                    index += 2
                } else {
                    return
                }
            case 0x80...:
                guard let (scalar, length) = scalar(at: index), Self.isJSON5Space(scalar) else { return }
                index += length
            default: return
            }
        }
    }

    /// The length in bytes of the line terminator at `position` (LF, CR, CR LF, U+2028, U+2029), or 0.
    func lineTerminatorLength(at position: Int) -> Int {
        switch bytes[position] {
        case 0x0A: return 1
        case 0x0D: return position + 1 < bytes.count && bytes[position + 1] == 0x0A ? 2 : 1
        case 0xE2:
            guard position + 2 < bytes.count, bytes[position + 1] == 0x80, bytes[position + 2] == 0xA8 || bytes[position + 2] == 0xA9 else {
                return 0
            }
            return 3
        default: return 0
        }
    }

    static func isJSON5Space(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0xFEFF, 0x2028, 0x2029: true
        default: scalar.properties.generalCategory == .spaceSeparator
        }
    }

    /// The Unicode scalar encoded in UTF-8 at `position` and its length, or nil for invalid UTF-8.
    func scalar(at position: Int) -> (Unicode.Scalar, Int)? {
        let lead = bytes[position]
        let length: Int
        var value: UInt32
        switch lead {
        case 0x00..<0x80: return (Unicode.Scalar(lead), 1)
        case 0xC2..<0xE0: (length, value) = (2, UInt32(lead & 0x1F))
        case 0xE0..<0xF0: (length, value) = (3, UInt32(lead & 0x0F))
        case 0xF0..<0xF5: (length, value) = (4, UInt32(lead & 0x07))
        default: return nil
        }
        guard position + length <= bytes.count else { return nil }
        for offset in 1..<length {
            let byte = bytes[position + offset]
            guard byte & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        let smallest: UInt32 = [0, 0, 0x80, 0x800, 0x10000][length]
        guard value >= smallest, let scalar = Unicode.Scalar(value) else { return nil }  // overlong, surrogate, too large
        return (scalar, length)
    }

    // MARK: Keys

    /// An unquoted key: an ECMAScript 5.1 IdentifierName (letters of any script, `$`, `_`,
    /// `\uXXXX` escapes, then digits, marks and connectors too). Returns its raw bytes.
    mutating func identifierRange() throws(JSONError) -> Range<Int> {
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            let character: Unicode.Scalar
            let length: Int
            if byte == UInt8(ascii: "\\") {
                guard index + 5 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else { throw JSONError(.invalidEscape, at: index) }
                for offset in 2...5 where hexValue(bytes[index + offset]) == nil { throw JSONError(.invalidEscape, at: index + offset) }
                guard let escaped = Unicode.Scalar(Self.hexQuad(bytes, index + 2)) else { throw JSONError(.invalidEscape, at: index) }
                (character, length) = (escaped, 6)
            } else {
                guard let (decoded, size) = scalar(at: index) else { throw JSONError(.invalidUTF8, at: index) }
                (character, length) = (decoded, size)
            }
            guard Self.isIdentifier(character, first: index == start) else { break }
            index += length
        }
        guard index > start else {
            guard index < bytes.count else { throw JSONError(.unexpectedEnd, at: index) }
            throw JSONError(.unexpectedByte(bytes[index]), at: index)
        }
        return start..<index
    }

    static func isIdentifier(_ character: Unicode.Scalar, first: Bool) -> Bool {
        if character == "$" || character == "_" { return true }
        if character.isASCII {
            return ("a"..."z").contains(character) || ("A"..."Z").contains(character) || (!first && ("0"..."9").contains(character))
        }
        switch character.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .letterNumber: return true
        case .nonspacingMark, .spacingMark, .decimalNumber, .connectorPunctuation: return !first
        default: return !first && (character.value == 0x200C || character.value == 0x200D)
        }
    }

    // MARK: Strings

    /// A string in single or double quotes: any character but its quote, a backslash or a line
    /// feed or carriage return (U+2028/9 are allowed); escapes `\'`, `\"`, `\\`, `\b \f \n \r \t
    /// \v`, `\0` (not before a digit), `\xHH`, `\uHHHH`, a backslash before a line terminator
    /// (the string goes on on the next line), and a backslash before any other character but a
    /// digit, which stands for that character.
    mutating func rawJSON5StringRange() throws(JSONError) -> Range<Int> {
        let quote = try peek()
        guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { throw JSONError(.unexpectedByte(quote), at: index) }
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == quote {
                index += 1
                return start..<(index - 1)
            }
            if byte == 0x0A || byte == 0x0D { throw JSONError(.unexpectedByte(byte), at: index) }
            guard byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            switch bytes[index] {
            case UInt8(ascii: "u"): try hexDigits(4, after: index)
            case UInt8(ascii: "x"): try hexDigits(2, after: index)
            case UInt8(ascii: "1")...UInt8(ascii: "9"): throw JSONError(.invalidEscape, at: index)
            case UInt8(ascii: "0"):
                if index + 1 < bytes.count && isDigit(bytes[index + 1]) { throw JSONError(.invalidEscape, at: index) }
                index += 1
            default:
                index += max(1, lineTerminatorLength(at: index))  // CR LF continues the string as one
            }
        }
        throw JSONError(.unexpectedEnd, at: index)
    }

    /// Checks `count` hex digits after the escape letter at `position` and steps past them.
    private mutating func hexDigits(_ count: Int, after position: Int) throws(JSONError) {
        guard position + count < bytes.count else { throw JSONError(.unexpectedEnd, at: bytes.count) }
        for offset in 1...count where hexValue(bytes[position + offset]) == nil { throw JSONError(.invalidEscape, at: position + offset) }
        index = position + count + 1
    }

    // MARK: Numbers

    /// A JSON5 number, written out as a JSON number: a leading `+` is dropped, `.5` becomes
    /// `0.5` and `5.` `5.0`, hexadecimal becomes decimal. `Infinity`, `-Infinity` and `NaN`
    /// are kept as those words (`JSONNumber.isFinite` is false), and their places recorded in
    /// `nonFinite`: JSON has no such values, so whoever would send or store one refuses it there.
    mutating func readJSON5Number() throws(JSONError) -> JSONNumber {
        try skipSpace()
        let start = index
        var negative = false
        if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        guard index < bytes.count else { throw JSONError(.unexpectedEnd, at: index) }
        switch bytes[index] {
        case UInt8(ascii: "I"):
            try literal("Infinity")
            let number = JSONNumber(literal: negative ? "-Infinity" : "Infinity")
            nonFinite.append(JSONError(.nonFinite(number.literal), at: start))
            return number
        case UInt8(ascii: "N"):
            try literal("NaN")
            nonFinite.append(JSONError(.nonFinite(negative ? "-NaN" : "NaN"), at: start))
            return JSONNumber(literal: "NaN")
        case UInt8(ascii: "0") where index + 1 < bytes.count && bytes[index + 1] | 0x20 == UInt8(ascii: "x"):
            index += 2
            let digits = index
            while index < bytes.count && hexValue(bytes[index]) != nil { index += 1 }
            guard index > digits else { throw JSONError(.invalidNumber, at: index) }
            return JSONNumber(literal: Self.decimal(hexadecimal: digits..<index, in: bytes, negative: negative))
        default: break
        }
        let integer = index
        if index < bytes.count && bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) { throw JSONError(.invalidNumber, at: index) }  // no octal, no leading zeros
        } else {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        let integerDigits = integer..<index
        var fraction: Range<Int>?
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            let digits = index
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            fraction = digits..<index
        }
        guard !integerDigits.isEmpty || !(fraction?.isEmpty ?? true) else {
            if fraction != nil || index >= bytes.count { throw JSONError(.invalidNumber, at: start) }
            throw JSONError(.unexpectedByte(bytes[index]), at: index)
        }
        var exponent: Range<Int>?
        if index < bytes.count && bytes[index] | 0x20 == UInt8(ascii: "e") {
            let mark = index
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw JSONError(.invalidNumber, at: index) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            exponent = mark..<index
        }
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        var literal = negative ? "-" : ""
        literal += integerDigits.isEmpty ? "0" : text(integerDigits)
        if let fraction { literal += "." + (fraction.isEmpty ? "0" : text(fraction)) }
        if let exponent { literal += text(exponent) }
        return JSONNumber(literal: literal)
    }

    /// Hexadecimal digits as a decimal literal: exact up to 64 bits, a double beyond.
    static func decimal(hexadecimal range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>, negative: Bool) -> String {
        var exact: UInt64 = 0
        var approximate = 0.0
        var overflowed = false
        for position in range {
            let digit = UInt64(hexValue(bytes[position])!)
            approximate = approximate * 16 + Double(digit)
            let (shifted, overflow) = exact.multipliedReportingOverflow(by: 16)
            overflowed = overflowed || overflow
            exact = shifted | digit
        }
        let magnitude = overflowed ? "\(approximate)" : String(exact)
        return negative ? "-" + magnitude : magnitude
    }
}
