import Foundation
import TestSupport
import Testing

@testable import ComfyCLI

/// A native install: `scripts/install.sh` into a temporary prefix, and what it installs working
/// in the real programs: the completions in bash, zsh and fish, the man page in man, the unit
/// in systemd-analyze.
@Suite(.serialized) struct InstallTests {
    static func tool(_ name: String) -> String? {
        ["/usr/bin/\(name)", "/bin/\(name)", "/usr/local/bin/\(name)"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a program to its end and returns its exit status and output (stdout and stderr).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = TestFolder.root.appendingPathComponent("comfyq-install-\(UUID()).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await eventually("\(executable) to exit", timeout: 120, interval: 0.05) { process.isRunning ? nil : process.terminationStatus }
        try handle.close()
        return (status, try String(contentsOf: output, encoding: .utf8))
    }

    /// An install into a fresh prefix, of the binary the tests run (no release build).
    final class Installed: @unchecked Sendable {
        let root = TestFolder.root.appendingPathComponent("comfyq-install-\(UUID())")
        var prefix: String { root.appendingPathComponent("prefix").path }
        var config: String { root.appendingPathComponent("config").path }
        var output = ""

        init() async throws {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let (status, output) = try await InstallTests.run(
                "/bin/bash", [Paths.packageRoot.appendingPathComponent("scripts/install.sh").path, prefix],
                environment: ["COMFYQ_BINARY": Paths.binary.path, "XDG_CONFIG_HOME": config])
            self.output = output
            guard status == 0 else { throw InstallFailed(output: output) }
        }

        deinit { try? FileManager.default.removeItem(at: root) }

        func path(_ relative: String) -> String { prefix + "/" + relative }
    }

    struct InstallFailed: Error, CustomStringConvertible {
        var output: String
        var description: String { "scripts/install.sh failed:\n\(output)" }
    }

    @Test func installPutsEveryPieceInPlace() async throws {
        let installed = try await Installed()
        #expect(installed.output.hasPrefix("installed comfyq \(ComfyQ.version) (built from source) in \(installed.prefix)\n"), "\(installed.output)")
        let (status, version) = try await Self.run(installed.path("bin/comfyq"), ["--version"])
        #expect(status == 0 && version == "comfyq \(ComfyQ.version) (built from source)\n")
        let expected: [(String, String)] = [
            ("share/bash-completion/completions/comfyq", Completions.script(for: .bash, commands: ComfyQ.commands)),
            ("share/zsh/site-functions/_comfyq", Completions.script(for: .zsh, commands: ComfyQ.commands)),
            ("share/fish/vendor_completions.d/comfyq.fish", Completions.script(for: .fish, commands: ComfyQ.commands)),
            ("share/comfyq/types/comfyq.lua", try String(contentsOf: Paths.packageRoot.appendingPathComponent("scripts/types/comfyq.lua"), encoding: .utf8)),
        ]
        for (file, text) in expected { #expect(try String(contentsOfFile: installed.path(file), encoding: .utf8) == text, "\(file)") }
        let unit = try String(contentsOfFile: installed.config + "/systemd/user/comfyq.service", encoding: .utf8)
        #expect(unit.contains("\nExecStart=\(installed.prefix)/bin/comfyq run --watch --serve 127.0.0.1:8190\n"), "\(unit)")
        #expect(!unit.contains("@BINDIR@"))
        // Installed disabled: nothing links to it.
        #expect(!FileManager.default.fileExists(atPath: installed.config + "/systemd/user/default.target.wants/comfyq.service"))
        // Again, over itself: an upgrade.
        #expect(try await Installed().output.contains("installed comfyq"))
    }

    /// Each query: the words typed (the last one being completed) and what must be offered.
    static let bashCases: [(words: [String], offered: [String])] = [
        (["comfyq", "ru"], ["run"]),
        (["comfyq", ""], ComfyQ.commands.map(\.name) + ["--help", "--version"]),
        (["comfyq", "run", "--con"], ["--concurrency"]),
        (["comfyq", "run", "--order", ""], ["models", "strict"]),
        (["comfyq", "run", "--concurrency", "2", "--no-pre"], ["--no-preflight"]),
        (["comfyq", "hook", ""], ["test", "init", "types"]),
        (["comfyq", "hook", "test", "x.lua", "--event", "com"], ["complete"]),
        (["comfyq", "completions", ""], ["bash", "zsh", "fish"]),
        (["comfyq", "help", "conv"], ["convert"]),
        (["comfyq", "servers", ""], ["start", "stop", "restart"]),
        (["comfyq", "simulate", "--comfyui", ""], ["0.38", "0.3.64"]),
    ]

    @Test func bashCompletionsLoadAndOfferCommandsFlagsAndValues() async throws {
        let bash = try #require(Self.tool("bash"))
        let script = TestFolder.root.appendingPathComponent("comfyq-completion-\(UUID()).bash")
        defer { try? FileManager.default.removeItem(at: script) }
        // Every option of every command, too: the table and the script must agree.
        var cases = Self.bashCases
        for command in ComfyQ.commands {
            cases.append((["comfyq", command.name, "--"], (command.options + [CommandSpec.helpOption]).map { "--\($0.long)" }))
        }
        var lines = [Completions.script(for: .bash, commands: ComfyQ.commands), "complete -p comfyq"]
        for (words, _) in cases {
            let quoted = words.map { "'\($0)'" }.joined(separator: " ")
            lines.append("COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); COMPREPLY=(); _comfyq; echo \"=> ${COMPREPLY[*]}\"")
        }
        try lines.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
        let (status, output) = try await Self.run(bash, ["--norc", "--noprofile", script.path])
        #expect(status == 0, "\(output)")
        let results = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(results.first == "complete -F _comfyq comfyq", "\(output)")
        let offered = results.filter { $0.hasPrefix("=> ") }.map { Set($0.dropFirst(3).split(separator: " ").map(String.init)) }
        #expect(offered.count == cases.count, "\(output)")
        for (index, (words, expected)) in cases.enumerated() where index < offered.count {
            #expect(offered[index].isSuperset(of: expected), "\(words.joined(separator: " ")): offered \(offered[index].sorted()), wanted \(expected)")
        }
    }

    /// After --set, --matrix and --zip, bash and fish offer the addresses of the workflow (or
    /// picture, or job) on the line, asked of `comfyq inspect --addresses`.
    @Test func completionOffersTheAddressesOfTheWorkflowOnTheLine() async throws {
        let workflow = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.json").path
        let environment = Hermetic.childEnvironment([
            "PATH": Paths.binary.deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        ])
        let bash = try #require(Self.tool("bash"))
        let script = TestFolder.root.appendingPathComponent("comfyq-addresses-\(UUID()).bash")
        defer { try? FileManager.default.removeItem(at: script) }
        let lines = [
            Completions.script(for: .bash, commands: ComfyQ.commands),
            "COMP_WORDS=(comfyq run '\(workflow)' --seeds 3 --set KSampler.s); COMP_CWORD=6; COMPREPLY=(); _comfyq; printf '=> %s\\n' \"${COMPREPLY[@]}\"",
            "COMP_WORDS=(comfyq add '\(workflow)' --matrix Pos); COMP_CWORD=4; COMPREPLY=(); _comfyq; printf '=> %s\\n' \"${COMPREPLY[@]}\"",
        ]
        try lines.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
        let (status, output) = try await Self.run(bash, ["--norc", "--noprofile", script.path], environment: environment)
        #expect(status == 0, "\(output)")
        let offered = output.split(separator: "\n").filter { $0.hasPrefix("=> ") }.map { String($0.dropFirst(3)) }
        #expect(offered == ["KSampler.seed=", "KSampler.steps=", "KSampler.sampler_name=", "KSampler.scheduler=", "Positive prompt.text="], "\(output)")
        guard let fish = Self.tool("fish") else { return }  // (its own test says when fish is missing)
        let file = TestFolder.root.appendingPathComponent("comfyq-\(UUID()).fish")
        try Completions.script(for: .fish, commands: ComfyQ.commands).write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (fishStatus, fishOutput) = try await Self.run(
            fish, ["--no-config", "-c", "source \(file.path); complete -C 'comfyq run \(workflow) --set Neg'"], environment: environment)
        #expect(fishStatus == 0 && fishOutput.hasPrefix("Negative prompt.text="), "\(fishOutput)")
    }

    @Test(.enabled(if: tool("zsh") != nil, "zsh is not installed (scripts/setup.sh installs it): its completions are not tried"))
    func zshCompletionsLoad() async throws {
        let file = TestFolder.root.appendingPathComponent("comfyq-zsh-\(UUID())")
        try FileManager.default.createDirectory(at: file, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: file) }
        try Completions.script(for: .zsh, commands: ComfyQ.commands).write(to: file.appendingPathComponent("_comfyq"), atomically: true, encoding: .utf8)
        let (status, output) = try await Self.run(
            Self.tool("zsh")!,
            ["-f", "-c", "fpath=(\(file.path) $fpath); autoload -U compinit; compinit -u -D; print -r -- ${_comps[comfyq]}; zsh -n \(file.path)/_comfyq && print syntax ok"])
        #expect(status == 0, "\(output)")
        #expect(output == "_comfyq\nsyntax ok\n", "\(output)")
    }

    @Test(.enabled(if: tool("fish") != nil, "fish is not installed (scripts/setup.sh installs it): its completions are not tried"))
    func fishCompletionsOfferCommandsFlagsAndValues() async throws {
        let file = TestFolder.root.appendingPathComponent("comfyq-\(UUID()).fish")
        try Completions.script(for: .fish, commands: ComfyQ.commands).write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let queries = [("comfyq ru", "run"), ("comfyq run --con", "--concurrency"), ("comfyq run --order ", "strict"), ("comfyq hook ", "init"), ("comfyq completions ", "fish")]
        let script = ["source \(file.path)"] + queries.map { "echo '=> \($0.0)'; complete -C '\($0.0)'" }
        let (status, output) = try await Self.run(Self.tool("fish")!, ["--no-config", "-c", script.joined(separator: "; ")])
        #expect(status == 0, "\(output)")
        let blocks = output.components(separatedBy: "=> ").dropFirst()
        #expect(blocks.count == queries.count, "\(output)")
        for (block, (query, expected)) in zip(blocks, queries) {
            let offered = block.split(separator: "\n").dropFirst().map { String($0.split(separator: "\t").first ?? "") }
            #expect(offered.contains(expected), "\(query): \(offered)")
        }
    }

    @Test(.enabled(if: tool("man") != nil, "man is not installed (scripts/setup.sh installs man-db): the page is not rendered"))
    func theManPageRendersWithEveryCommandAndOption() async throws {
        let installed = try await Installed()
        let (status, output) = try await Self.run(
            Self.tool("man")!, ["-l", installed.path("share/man/man1/comfyq.1")], environment: ["MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat"])
        #expect(status == 0, "\(output)")
        // man marks up bold and italics with backspaces when not on a terminal: read the letters.
        let text = Self.plain(output)
        #expect(text.contains("COMFYQ(1)"), "\(text.prefix(400))")
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES"] {
            #expect(text.contains("\n\(heading)\n"), "\(heading)")
        }
        for command in ComfyQ.commands {
            #expect(text.contains("\n   \(command.name)\n"), "\(command.name)")
            for option in command.options { #expect(text.contains("--\(option.long)"), "\(command.name) --\(option.long)") }
        }
    }

    /// Text without man's overstrike (`X\bX` bold, `_\bX` underline) and with hyphens as typed.
    static func plain(_ text: String) -> String {
        var result: [Character] = []
        for character in text {
            if character == "\u{8}" {
                if !result.isEmpty { result.removeLast() }
                continue
            }
            result.append(character == "\u{2010}" || character == "\u{2212}" ? "-" : character)
        }
        return String(result)
    }

    @Test(.enabled(if: tool("systemd-analyze") != nil, "systemd is not on this machine: the unit file is not verified"))
    func theUnitPassesSystemdAnalyzeVerify() async throws {
        let installed = try await Installed()
        let unit = installed.config + "/systemd/user/comfyq.service"
        // `Documentation=man:comfyq(1)` is checked by running man, which looks in the prefix.
        let (status, output) = try await Self.run(
            Self.tool("systemd-analyze")!, ["verify", unit], environment: ["MANPATH": installed.path("share/man") + ":", "SYSTEMD_LOG_LEVEL": "notice"])
        #expect(status == 0, "\(output)")
        #expect(output.isEmpty, "\(output)")
    }
}
