import Foundation

/// `comfyq completions bash|zsh|fish`: the shell completion script, from the command table.
enum CompletionsCommand {
    static let spec = CommandSpec(
        name: "completions",
        abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            Generated from the same command table as --help, so it offers every command, option and
            fixed value comfyq has; job and server names are asked of comfyq as you type.
            bash: source <(comfyq completions bash)    zsh: source <(comfyq completions zsh) (after compinit)
            fish: comfyq completions fish | source      (scripts/install.sh installs all three)
            """,
        arguments: [ArgumentSpec("shell", help: "bash, zsh or fish.", completion: .words(Completions.Shell.allCases.map(\.rawValue)))],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let name = arguments.positionals[0]
        guard let shell = Completions.Shell(rawValue: name) else {
            throw UsageError("the shell must be bash, zsh or fish, got '\(name)'", command: spec)
        }
        console.writeOut(Completions.script(for: shell, commands: ComfyQ.commands))
        return .success
    }
}

/// `comfyq man`: the manual page comfyq(1) in roff, from the command table.
enum ManCommand {
    static let spec = CommandSpec(
        name: "man",
        abstract: "Print the manual page comfyq(1) (roff; read it with: comfyq man | man -l -).",
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let overview = """
            comfyq reads batch job files (a ComfyUI workflow, in the API format or as ComfyUI's Save writes it, plus sweeps), \
            keeps a durable queue (nothing lost, nothing run twice), checks every item against the servers' node definitions, \
            submits prompts to ComfyUI servers with bounded concurrency, follows every prompt through one phase-aware \
            progress engine, restarts servers that die or hang, calls Lua hook scripts, and saves outputs with sidecars.
            """
        console.writeOut(ManPage.render(commands: ComfyQ.commands, overview: overview, version: ComfyQ.version, date: "2026-12-04"))
        return .success
    }
}
