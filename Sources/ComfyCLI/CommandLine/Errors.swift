/// Process exit statuses, after BSD `sysexits.h`.
public struct ExitCode: RawRepresentable, Sendable, Equatable, Hashable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = ExitCode(rawValue: 0)
    /// Something failed: a server, a prompt, a file.
    public static let failure = ExitCode(rawValue: 1)
    /// `run` did everything it could and nothing failed, but items are held: no server can run
    /// them (pre-flight).
    public static let held = ExitCode(rawValue: 2)
    /// The command line was wrong (EX_USAGE).
    public static let usage = ExitCode(rawValue: 64)
    /// The input data was wrong: a job file, a workflow (EX_DATAERR).
    public static let dataError = ExitCode(rawValue: 65)
}

/// An error that decides its own exit status.
public protocol ExitCodeProviding: Error {
    var exitCode: ExitCode { get }
}

/// A command line that does not match the command: printed with the command's usage, exit 64.
public struct UsageError: Error, Sendable, CustomStringConvertible, ExitCodeProviding {
    public var message: String
    /// The command whose usage to print; nil for the top level.
    public var commandName: String?
    var usage: String?

    public init(_ message: String, command: CommandSpec? = nil) {
        self.message = message
        self.commandName = command?.name
        self.usage = command?.usage
    }

    public var description: String { message }
    public var exitCode: ExitCode { .usage }
}

/// A failure whose one-line message says it all (exit 1 unless told otherwise).
public struct CommandFailure: Error, Sendable, CustomStringConvertible, ExitCodeProviding {
    public var message: String
    public var exitCode: ExitCode

    public init(_ message: String, exitCode: ExitCode = .failure) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }
}
