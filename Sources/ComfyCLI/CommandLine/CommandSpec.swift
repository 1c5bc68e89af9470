/// An option a command accepts. The parser and the help text are both generated from these.
public struct OptionSpec: Sendable {
    public var long: String
    public var short: Character?
    /// The value's placeholder (`<url>`); nil for a flag.
    public var valueName: String?
    public var help: String
    /// Whether it may be given more than once.
    public var repeatable: Bool
    /// What shell completion offers for its value.
    public var completion: ValueCompletion

    public static func flag(_ long: String, short: Character? = nil, help: String) -> OptionSpec {
        OptionSpec(long: long, short: short, valueName: nil, help: help, repeatable: false, completion: .none)
    }

    /// An option with a value; completion offers files when the value's name says it is one
    /// (`file`, `path`, `dir`), else what `completion` says.
    public static func value(
        _ long: String, short: Character? = nil, name: String, completion: ValueCompletion? = nil, help: String, repeatable: Bool = false
    ) -> OptionSpec {
        let files = ["file", "path", "dir"].contains { name.contains($0) }
        return OptionSpec(long: long, short: short, valueName: name, help: help, repeatable: repeatable, completion: completion ?? (files ? .files : .none))
    }

    var isFlag: Bool { valueName == nil }

    /// `-s, --long <value>` as shown in help and usage.
    var synopsis: String {
        var text = short.map { "-\($0), " } ?? ""
        text += "--\(long)"
        if let valueName { text += " <\(valueName)>" }
        return text
    }
}

/// What shell completion offers for a value: nothing, files, fixed words, the queue's job
/// names or the servers file's server names (asked of comfyq as the user types), commands, or
/// the input addresses of the workflow (job, picture) on the line (`comfyq inspect --addresses`).
public enum ValueCompletion: Sendable, Equatable {
    case none, files, jobs, servers, commands, addresses
    case words([String])
}

/// A positional argument.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var optional: Bool
    public var variadic: Bool
    public var completion: ValueCompletion

    public init(_ name: String, help: String, optional: Bool = false, variadic: Bool = false, completion: ValueCompletion = .files) {
        self.name = name
        self.help = help
        self.optional = optional
        self.variadic = variadic
        self.completion = completion
    }

    var synopsis: String {
        let base = "<\(name)>" + (variadic ? " ..." : "")
        return optional ? "[\(base)]" : base
    }
}

/// A command: its documentation, what it accepts, and what it does.
public struct CommandSpec: Sendable {
    public var name: String
    public var abstract: String
    public var discussion: String?
    public var arguments: [ArgumentSpec]
    public var options: [OptionSpec]
    public var run: @Sendable (ParsedArguments, Console) async throws -> ExitCode

    public init(
        name: String, abstract: String, discussion: String? = nil, arguments: [ArgumentSpec] = [],
        options: [OptionSpec] = [], run: @escaping @Sendable (ParsedArguments, Console) async throws -> ExitCode
    ) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.arguments = arguments
        self.options = options
        self.run = run
    }

    static let helpOption = OptionSpec.flag("help", short: "h", help: "Show help information.")

    /// `comfyq replay <trace> [--json]`
    var usage: String {
        var parts = ["comfyq", name]
        parts += arguments.map(\.synopsis)
        for option in options {
            let value = option.valueName.map { " <\($0)>" } ?? ""
            parts.append("[--\(option.long)\(value)]" + (option.repeatable ? " ..." : ""))
        }
        return parts.joined(separator: " ")
    }

    /// OVERVIEW / USAGE / ARGUMENTS / OPTIONS, as swift-argument-parser prints them.
    var help: String {
        var text = "OVERVIEW: \(abstract)\n"
        if let discussion { text += "\n\(discussion)\n" }
        text += "\nUSAGE: \(usage)\n"
        if !arguments.isEmpty {
            text += "\nARGUMENTS:\n"
            for argument in arguments { text += HelpFormatter.row("<\(argument.name)>", argument.help) }
        }
        text += "\nOPTIONS:\n"
        for option in options + [Self.helpOption] { text += HelpFormatter.row(option.synopsis, option.help) }
        return text
    }
}

enum HelpFormatter {
    static let column = 26

    /// An indented two-column row; long names push the help to the next line.
    static func row(_ name: String, _ help: String) -> String {
        let indent = String(repeating: " ", count: column)
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        var text = "  \(name)"
        if name.count + 2 >= column - 1 {
            text += "\n" + indent
        } else {
            text += String(repeating: " ", count: column - name.count - 2)
        }
        text += lines.joined(separator: "\n" + indent) + "\n"
        return text
    }
}
