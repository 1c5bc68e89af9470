import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where commands write, and what they may know about the terminal. Commands never touch
/// stdout or stderr directly, so tests capture everything they say.
public struct Console: Sendable {
    public var writeOut: @Sendable (String) -> Void
    public var writeError: @Sendable (String) -> Void
    /// Whether standard output is a terminal (live redraws, colour).
    public var outputIsTerminal: Bool
    public var environment: [String: String]

    public init(
        writeOut: @escaping @Sendable (String) -> Void, writeError: @escaping @Sendable (String) -> Void,
        outputIsTerminal: Bool = false, environment: [String: String] = [:]
    ) {
        self.writeOut = writeOut
        self.writeError = writeError
        self.outputIsTerminal = outputIsTerminal
        self.environment = environment
    }

    /// The process's own standard output and error.
    public static func standard(environment: [String: String]) -> Console {
        Console(
            writeOut: { text in writeAll(STDOUT_FILENO, text) },
            writeError: { text in writeAll(STDERR_FILENO, text) },
            outputIsTerminal: isatty(STDOUT_FILENO) == 1,
            environment: environment)
    }

    /// The user's home folder: `HOME` from the environment commands were given (so a test or
    /// a service can move it), else the account's.
    public var home: String { homeFolder(environment) }

    /// The server to use when none is given and there is no servers file: `COMFYQ_SERVER`, else
    /// ComfyUI's default address, http://127.0.0.1:8188.
    public var defaultServer: String { environment["COMFYQ_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8188" }

    /// Writes a line to standard output.
    public func print(_ line: String) { writeOut(line + "\n") }

    /// Writes a line to standard error.
    public func printError(_ line: String) { writeError(line + "\n") }

    /// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
    public var usesColor: Bool {
        outputIsTerminal && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }
}

/// Writes all of `text` to a file descriptor, unbuffered (so output interleaves correctly with
/// child processes and survives a crash), retrying short writes and EINTR.
private func writeAll(_ descriptor: Int32, _ text: String) {
    var text = text
    text.withUTF8 { buffer in
        guard var address = buffer.baseAddress else { return }
        var remaining = buffer.count
        while remaining > 0 {
            let written = write(descriptor, address, remaining)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            address += written
            remaining -= written
        }
    }
}

/// `HOME` in `environment`, else the account's home folder.
func homeFolder(_ environment: [String: String]) -> String {
    environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
}
