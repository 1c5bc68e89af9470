/// A command line that matched its command's spec.
public struct ParsedArguments: Sendable, Equatable {
    public private(set) var positionals: [String] = []
    private var flags: Set<String> = []
    private var values: [String: [String]] = [:]

    /// Whether a flag was given.
    public func flag(_ long: String) -> Bool { flags.contains(long) }

    /// The last value given for an option.
    public func value(_ long: String) -> String? { values[long]?.last }

    /// Every value given for a repeatable option, in order.
    public func values(_ long: String) -> [String] { values[long] ?? [] }

    /// Parses `arguments` (without the command name) against `spec`. `--help` is reported by
    /// returning nil.
    static func parse(_ arguments: [String], for spec: CommandSpec) throws(UsageError) -> ParsedArguments? {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        func option(named name: String) throws(UsageError) -> OptionSpec {
            guard let option = spec.options.first(where: { $0.long == name }) else {
                throw UsageError("unknown option '--\(name)'", command: spec)
            }
            return option
        }
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || argument == "-" || !argument.hasPrefix("-") {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" {
                onlyPositionals = true
                continue
            }
            if argument == "--help" || argument == "-h" { return nil }

            var spelled: String
            var name: String
            var inline: String?
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                if let equals = body.firstIndex(of: "=") {
                    name = String(body[..<equals])
                    inline = String(body[body.index(after: equals)...])
                } else {
                    name = String(body)
                }
                spelled = "--\(name)"
            } else {
                guard argument.count == 2, let letter = argument.last,
                    let match = spec.options.first(where: { $0.short == letter })
                else { throw UsageError("unknown option '\(argument)'", command: spec) }
                name = match.long
                spelled = argument
            }
            let option = try option(named: name)
            if option.isFlag {
                if inline != nil { throw UsageError("option '\(spelled)' takes no value", command: spec) }
                parsed.flags.insert(option.long)
                continue
            }
            let value: String
            if let inline {
                value = inline
            } else if index < arguments.count {
                value = arguments[index]
                index += 1
            } else {
                throw UsageError("missing value for '\(spelled) <\(option.valueName!)>'", command: spec)
            }
            if !option.repeatable, parsed.values[option.long] != nil {
                throw UsageError("option '\(spelled)' given more than once", command: spec)
            }
            parsed.values[option.long, default: []].append(value)
        }
        try checkPositionals(parsed.positionals, spec)
        return parsed
    }

    private static func checkPositionals(_ positionals: [String], _ spec: CommandSpec) throws(UsageError) {
        let required = spec.arguments.filter { !$0.optional }.count
        let variadic = spec.arguments.contains { $0.variadic }
        if positionals.count < required {
            let missing = spec.arguments.filter { !$0.optional }[positionals.count]
            throw UsageError("missing expected argument '<\(missing.name)>'", command: spec)
        }
        if !variadic && positionals.count > spec.arguments.count {
            throw UsageError("unexpected argument '\(positionals[spec.arguments.count])'", command: spec)
        }
    }
}
