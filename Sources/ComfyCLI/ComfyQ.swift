/// The `comfyq` command router. The only place that turns errors into messages and exit codes.
public enum ComfyQ {
    public static let version = "0.1.0"

    /// Every command, in the order `comfyq help` lists them.
    static var commands: [CommandSpec] {
        [RunCommand.spec, ValidateCommand.spec, AddCommand.spec, InspectCommand.spec, StatusCommand.spec, ServeCommand.spec, ReportCommand.spec, ConvertCommand.spec, QueueEditCommands.cancel, QueueEditCommands.retry, RateCommands.star, RateCommands.reject, RateCommands.unrate, QueueEditCommands.remove, QueueEditCommands.drain, ServersCommand.spec, SimulateCommand.spec, DoctorCommand.spec, ReplayCommand.spec, HookCommand.spec, ComfyUICommand.spec, CompletionsCommand.spec, ManCommand.spec, helpSpec]
    }

    static let helpSpec = CommandSpec(
        name: "help", abstract: "Show help for comfyq or one of its commands.",
        arguments: [ArgumentSpec("command", help: "The command to describe.", optional: true, completion: .commands)]
    ) { _, _ in .success }  // handled by the router, which knows the other commands

    /// Runs a command line (without the program name) and returns the exit status.
    public static func main(arguments: [String], console: Console) async -> ExitCode {
        guard let first = arguments.first else {
            console.writeOut(overview)
            return .success
        }
        switch first {
        case "--help", "-h":
            console.writeOut(overview)
            return .success
        case "--version":
            // `--version --verbose`: the commit and date, and the C libraries in use.
            if arguments.dropFirst().contains("--verbose") {
                for line in BuildInfo.lines { console.print(line) }
            } else {
                console.print(BuildInfo.versionLine)
            }
            return .success
        case "help":
            return help(Array(arguments.dropFirst()), console: console)
        default:
            break
        }
        guard let command = commands.first(where: { $0.name == first }) else {
            let message =
                first.hasPrefix("-") ? "unknown option '\(first)'" : "unknown command '\(first)'"
            return report(UsageError(message), console: console)
        }
        do {
            guard let parsed = try ParsedArguments.parse(Array(arguments.dropFirst()), for: command) else {
                console.writeOut(command.help)
                return .success
            }
            return try await command.run(parsed, console)
        } catch {
            return report(error, console: console)
        }
    }

    private static func help(_ arguments: [String], console: Console) -> ExitCode {
        guard let name = arguments.first else {
            console.writeOut(overview)
            return .success
        }
        guard let command = commands.first(where: { $0.name == name }) else {
            return report(UsageError("unknown command '\(name)'"), console: console)
        }
        console.writeOut(command.help)
        return .success
    }

    /// `Error: …`, then for usage errors the usage and where to read more.
    static func report(_ error: any Error, console: Console) -> ExitCode {
        // One line per problem (job files report every problem at once).
        for line in "\(error)".split(separator: "\n", omittingEmptySubsequences: false) { console.printError("Error: \(line)") }
        if let usage = error as? UsageError {
            if let line = usage.usage, let name = usage.commandName {
                console.printError("Usage: \(line)")
                console.printError("  See 'comfyq \(name) --help' for more information.")
            } else {
                console.printError("Usage: comfyq <command> [options]")
                console.printError("  See 'comfyq help' for the list of commands.")
            }
        }
        return (error as? any ExitCodeProviding)?.exitCode ?? .failure
    }

    static var overview: String {
        var text = """
            OVERVIEW: Run ComfyUI batches overnight: durable queue, many servers, phase-aware progress.

            USAGE: comfyq <command> [options]

            COMMANDS:

            """
        for command in commands { text += HelpFormatter.row(command.name, command.abstract) }
        text += """

            OPTIONS:

            """
        text += HelpFormatter.row("--version", "Show the version and the commit it was built from (--verbose: and the C libraries in use).")
        text += HelpFormatter.row("-h, --help", "Show help information.")
        text += "\n  See 'comfyq help <command>' for detailed help.\n"
        return text
    }
}
