import ComfyCore

/// Tables a hook received, checked against the schema (what the tests hold real events to).
extension HookSchema {
    /// Every way `value` (a table a hook got, as JSON) differs from `className`: keys the schema
    /// does not have, required keys missing, values of the wrong type. Empty when it conforms.
    public static func problems(in value: JSONValue, className: String, path: String = "") -> [String] {
        guard let type = classes.first(where: { $0.name == className }) else { return ["\(path): unknown class \(className)"] }
        guard let object = value.objectValue else { return ["\(path.isEmpty ? className : path): not a table"] }
        var problems: [String] = []
        for (key, entry) in object {
            let place = path.isEmpty ? key : "\(path).\(key)"
            guard let field = type.field(key) else {
                problems.append("\(place): not in \(className)")
                continue
            }
            if entry == .null {
                if !field.optional { problems.append("\(place): nil, but \(className).\(key) is not optional") }
                continue
            }
            problems += check(entry, against: field.type, at: place)
        }
        for field in type.fields where !field.optional && object[field.name] == nil {
            problems.append("\(path.isEmpty ? field.name : "\(path).\(field.name)"): missing from \(className)")
        }
        return problems
    }

    /// `value` against a LuaLS type expression.
    static func check(_ value: JSONValue, against type: String, at place: String) -> [String] {
        let alternatives = split(type, on: "|")
        var found: [String] = []
        for alternative in alternatives {
            let problems = checkOne(value, against: alternative.trimmingCharacters(in: .whitespaces), at: place)
            if problems.isEmpty { return [] }
            found = problems
        }
        return alternatives.count == 1 ? found : ["\(place): \(value.serialized()) is not \(type)"]
    }

    private static func checkOne(_ value: JSONValue, against type: String, at place: String) -> [String] {
        if type.hasSuffix("?") { return value == .null ? [] : check(value, against: String(type.dropLast()), at: place) }
        if type.hasPrefix("\""), type.hasSuffix("\"") {
            return value.stringValue == String(type.dropFirst().dropLast()) ? [] : ["\(place): \(value.serialized()) is not \(type)"]
        }
        // An empty Lua table is both an empty list and an empty map (comfyq.json.encode writes `{}`).
        let empty = value.arrayValue?.isEmpty == true || value.objectValue?.isEmpty == true
        if type.hasSuffix("[]") {
            if empty { return [] }
            guard let array = value.arrayValue else { return ["\(place): \(value.serialized()) is not a list"] }
            return array.enumerated().flatMap { check($1, against: String(type.dropLast(2)), at: "\(place)[\($0 + 1)]") }
        }
        if type.hasPrefix("table<"), type.hasSuffix(">") {
            let inner = String(type.dropFirst(6).dropLast())
            if empty { return [] }
            guard let object = value.objectValue else { return ["\(place): \(value.serialized()) is not a table"] }
            let parts = split(inner, on: ",")
            let valueType = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : "any"
            return object.flatMap { check($1, against: valueType, at: "\(place)[\"\($0)\"]") }
        }
        if let alias = aliases.first(where: { $0.name == type }) {
            return alias.values.contains(value.stringValue ?? "\u{0}") ? [] : ["\(place): \(value.serialized()) is not a \(type)"]
        }
        if classes.contains(where: { $0.name == type }) { return problems(in: value, className: type, path: place) }
        let ok: Bool =
            switch type {
            case "any": true
            case "string": value.stringValue != nil
            case "boolean": value.boolValue != nil
            case "number": value.numberValue != nil
            case "integer": value.numberValue.map { $0.double == $0.double.rounded() } ?? false
            case "table": value.objectValue != nil || value.arrayValue != nil
            case "nil": value == .null
            default: false
            }
        return ok ? [] : ["\(place): \(value.serialized()) is not \(type == "integer" ? "an" : "a") \(type)"]
    }

    /// Splits on `separator` outside `<…>` and quotes.
    static func split(_ text: String, on separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if !quoted {
                if character == "<" { depth += 1 }
                if character == ">" { depth -= 1 }
                if character == separator && depth == 0 {
                    parts.append(current)
                    current = ""
                    continue
                }
            }
            current.append(character)
        }
        parts.append(current)
        return parts
    }

}
