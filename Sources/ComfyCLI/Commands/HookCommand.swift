import ComfyCore
import Foundation
import Hooks
import InputFiles
import QueueStore
import Serve
import Simulator

/// Where hook scripts come from and how they are set up, shared by `run` and `hook test`.
enum HookFiles {
    /// The limits, shared by `run` and `hook test` (read by `settings`).
    static let limitOptions: [OptionSpec] = [
        .value("hook-time-limit", name: "duration", help: "How long one hook call may run (default 5s)."),
        .value("hook-memory-limit", name: "MB", help: "How much memory one script may hold (default 64)."),
    ]

    static let options: [OptionSpec] = [
        .value("hook", name: "file", help: "A Lua hook script for every job (repeatable).", repeatable: true),
        .value("hook-opt", name: "script.key=value", help: "A setting for a script's comfyq.options (repeatable).", repeatable: true),
        .flag("no-user-hooks", help: "Do not load $XDG_CONFIG_HOME/comfyq/hooks/*.lua."),
    ] + limitOptions

    /// `$XDG_CONFIG_HOME/comfyq/hooks` (default `~/.config/comfyq/hooks`).
    static func userFolder(_ environment: [String: String]) -> String {
        UserFolders.config(environment: environment, home: homeFolder(environment)) + "/hooks"
    }

    /// The user's own hook scripts, sorted by name.
    static func userScripts(_ environment: [String: String]) -> [String] {
        let folder = userFolder(environment)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".lua") && !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }

    static func settings(_ arguments: ParsedArguments, command: CommandSpec) throws -> HookScript.Settings {
        var settings = HookScript.Settings()
        if let text = arguments.value("hook-time-limit") {
            guard let seconds = Durations.parse(text), seconds > 0 else {
                throw UsageError("--hook-time-limit must be a duration such as 5s or 500ms, got '\(text)'", command: command)
            }
            settings.limits.time = seconds
        }
        if let text = arguments.value("hook-memory-limit") {
            guard let megabytes = Int(text), megabytes >= 1 else {
                throw UsageError("--hook-memory-limit must be a whole number of megabytes, got '\(text)'", command: command)
            }
            settings.limits.memory = megabytes << 20
        }
        return settings
    }

    /// Applies `--hook-opt script.key=value` to the sources (values stay strings). With `single`,
    /// the script prefix may be left out.
    static func applyOptions(_ arguments: ParsedArguments, to sources: inout [HookSet.Source], command: CommandSpec) throws {
        for text in arguments.values("hook-opt") {
            guard let equals = text.firstIndex(of: "=") else {
                throw UsageError("--hook-opt must be script.key=value, got '\(text)'", command: command)
            }
            let name = String(text[..<equals])
            let value = String(text[text.index(after: equals)...])
            var script: String?
            var key = name
            if let dot = name.lastIndex(of: ".") {
                script = String(name[..<dot])
                key = String(name[name.index(after: dot)...])
            }
            let matches = sources.indices.filter { script == nil ? sources.count == 1 : sources[$0].shortName == script }
            guard !matches.isEmpty, !key.isEmpty else {
                let names = sources.map(\.shortName).joined(separator: ", ")
                throw UsageError(
                    script == nil
                        ? "--hook-opt '\(text)': say which script (script.key=value); scripts: \(names.isEmpty ? "none" : names)"
                        : "--hook-opt '\(text)': no hook script named '\(script!)' (scripts: \(names.isEmpty ? "none" : names))",
                    command: command)
            }
            for index in matches { sources[index].options[key] = .string(value) }
        }
    }

    /// Hook log lines as the terminal shows them.
    static func line(_ log: HookLogLine) -> String {
        log.level == .info ? "\(log.script): \(log.message)" : "\(log.script) [\(log.level.rawValue)] \(log.message)"
    }
}

/// `comfyq hook test FILE [--event NAME]`, `comfyq hook init NAME`, `comfyq hook types`
enum HookCommand {
    static let spec = CommandSpec(
        name: "hook",
        abstract: "Develop hook scripts: 'init NAME' writes a starter, 'test FILE' fires sample events at one.",
        discussion: """
            test FILE: loads the script exactly as 'comfyq run' would (same checks, same limits), then
            sends it realistic events: a batch start, a submission, every phase with sampler steps, a
            completion, an out-of-memory failure, the batch summary and idle. Each call is shown with
            what the script did (logs, notifications, HTTP requests, programs run) and how long it
            took. No server or GPU needed. --dry-run records HTTP, exec and notify instead of doing them.
            Exits 1 when the script fails to load or any call fails.
            init NAME: writes NAME.lua with every hook as a commented stub, annotated for editors.
            types: prints the hook API's definitions for lua-language-server (scripts/types/comfyq.lua).
            """,
        arguments: [
            ArgumentSpec("action", help: "test, init or types", completion: .words(["test", "init", "types"])),
            ArgumentSpec("file", help: "The Lua hook script (test), or the new script's name (init).", optional: true),
        ],
        options: [
            .value("event", name: "name", completion: .words(HookEventKind.allCases.map(\.rawValue)), help: "Only this event: \(HookEventKind.allCases.map(\.rawValue).joined(separator: ", "))."),
            .value("hook-opt", name: "key=value", help: "A setting for comfyq.options (repeatable).", repeatable: true),
            .flag("dry-run", help: "Record HTTP requests, programs and notifications instead of making them."),
        ] + HookFiles.limitOptions,
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let positionals = arguments.positionals
        switch (positionals.first, positionals.count) {
        case ("test", 2): break
        case ("init", 2): return try initScript(positionals[1], console)
        case ("types", 1):
            console.writeOut(HookSchema.luaDefinitions)
            return .success
        default:
            throw UsageError("the actions are: comfyq hook test FILE [--event NAME], comfyq hook init NAME, comfyq hook types", command: spec)
        }
        let path = positionals[1]
        var only: HookEventKind?
        if let name = arguments.value("event") {
            let bare = name.hasPrefix("on_") ? String(name.dropFirst(3)) : name
            guard let kind = HookEventKind(rawValue: bare) else {
                throw UsageError("--event must be one of \(HookEventKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'", command: spec)
            }
            only = kind
        }
        var sources = [HookSet.Source(path: path)]
        try HookFiles.applyOptions(arguments, to: &sources, command: spec)
        var environment = HookEnvironment(variables: console.environment) { log in console.print("  log " + HookFiles.line(log)) }
        environment.dryRun = arguments.flag("dry-run")
        environment.trace = { _, call in console.print("  " + call + (arguments.flag("dry-run") ? "  (dry run)" : "")) }
        let settings = try HookFiles.settings(arguments, command: spec)
        let script: HookScript
        do {
            script = try await HookScript.load(path: path, options: sources[0].options, settings: settings, environment: environment)
        } catch {
            throw CommandFailure(error.message)
        }
        let hooks = HookEventKind.allCases.filter(script.handles).map(\.function)
        console.print("\(path): loaded; hooks: \(hooks.isEmpty ? "none" : hooks.joined(separator: ", "))")
        if !sources[0].options.isEmpty { console.print("  options: \(JSONValue.object(sources[0].options).serialized())") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-hook-test-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pictures = try samplePictures(in: folder)
        let report = await HookTester.run(script, only: only, pictures: pictures) { console.print($0) }
        _ = await script.stopAndWait(timeout: 5)
        let disabled = script.isDisabled ? " (the script disabled itself after \(HookScript.Settings().maximumFailures) failures in a row)" : ""
        console.print("\(report.calls) call\(report.calls == 1 ? "" : "s"), \(report.failures) failed\(disabled)")
        return report.failures == 0 ? .success : .failure
    }

    /// `comfyq hook init NAME`: NAME.lua with every hook as a commented stub; never overwrites.
    static func initScript(_ given: String, _ console: Console) throws -> ExitCode {
        let path = given.hasSuffix(".lua") ? given : given + ".lua"
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw UsageError("hook init: the name must be letters, digits, '-' and '_', got '\(given)'", command: spec)
        }
        guard !FileManager.default.fileExists(atPath: path) else { throw CommandFailure("\(path): already exists; not overwritten") }
        do { try Data(HookSchema.starterScript(name: name).utf8).write(to: URL(fileURLWithPath: path), options: .withoutOverwriting) } catch {
            throw CommandFailure("\(path): cannot write it (\(error.localizedDescription))")
        }
        console.print("wrote \(path): every hook commented out; uncomment what you need, then: comfyq hook test \(path)")
        return .success
    }

    /// The pictures the sample events name, drawn as a run would make them: the first item's
    /// thumbnail and the sample job's contact sheet (one image, one failure).
    static func samplePictures(in folder: String) throws -> HookSamples.Pictures {
        let thumbnail = SimulatedImage.render(width: 256, height: 256, seed: 1001, lines: ["seed 1001", "a lighthouse at dusk", "sample/0"])
        let sheet = ContactSheet(
            title: "sample: 1 of 2 done, 1 failed", columns: ["KSampler.seed = 1001", "KSampler.seed = 1002"], rows: [""],
            cells: [[.image(thumbnail), .text("failed")]]
        ).render()
        let pictures = HookSamples.Pictures(thumbnail: folder + "/.thumbs/sample_0.png", contactSheet: folder + "/contact-sheet.png", page: folder + "/index.html")
        do {
            try FileManager.default.createDirectory(atPath: folder + "/.thumbs", withIntermediateDirectories: true)
            try Data(thumbnail.encoded(level: 1)).write(to: URL(fileURLWithPath: pictures.thumbnail))
            try Data(sheet.encoded(level: 1)).write(to: URL(fileURLWithPath: pictures.contactSheet))
            try Data(ServePages.page("sample", "<p>sample report</p>", live: false).utf8).write(to: URL(fileURLWithPath: pictures.page))
        } catch {
            throw CommandFailure("\(folder): cannot write the sample pictures: \(error.localizedDescription)")
        }
        return pictures
    }
}
