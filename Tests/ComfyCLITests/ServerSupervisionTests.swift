import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A night as a user sets it up: a servers file whose command is `comfyq simulate`, a job, a
/// hook that writes down every `on_server` event, and `comfyq run` as a real process.
final class Night: @unchecked Sendable {
    let root: URL
    var db: String { path("queue.db") }
    var serversFile: String { path("config/comfyq/servers.json5") }
    var state: String { path("state") }
    var serverEvents: String { path("server-events.txt") }
    var environment: [String: String] {
        ["XDG_CONFIG_HOME": path("config"), "XDG_STATE_HOME": state, "COMFYQ_DB": db]
    }

    init(_ name: String) throws {
        root = TestFolder.root.appendingPathComponent("comfyq-\(name)-\(UUID())")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config/comfyq"), withIntermediateDirectories: true)
        try """
            function on_server(e)
              local file = assert(io.open("\(serverEvents)", "a"))
              file:write(e.server, " ", e.previous_state, " -> ", e.state, " | ", e.reason, " | ", table.concat(e.log_tail or {}, " / "), "\\n")
              file:close()
            end
            function on_pause(e)
              local file = assert(io.open("\(serverEvents)", "a"))
              file:write("pause | ", e.folder, " | ", e.reason, " | needs ", e.needed_bytes, "\\n")
              file:close()
            end
            function on_resume(e)
              local file = assert(io.open("\(serverEvents)", "a"))
              file:write("resume | ", e.folder, " | after ", e.paused_for, "\\n")
              file:close()
            end
            """.write(toFile: path("servers-hook.lua"), atomically: true, encoding: .utf8)
    }

    deinit {
        // Whatever a failed test left running.
        for pidFile in pidFiles() {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.split(separator: " ").first ?? "") {
                kill(-pid, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(at: root)
    }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// A supervised entry running `comfyq simulate` on free ports; returns the first port.
    @discardableResult
    func writeServers(instances: Int = 1, extraArguments: String = "", fields: String = "", command: String? = nil) throws -> Int {
        let port = try Ports.outsideEphemeralRange(instances)
        let simulate =
            command
            ?? "\(Paths.binary.path) simulate --port {port} --output \(path("sim-out"))/{index} --step-time 40ms --load-time 0 --node-time 0 --warm-up 0 \(extraArguments)"
        try """
            {servers: [{name: "local", url: "http://127.0.0.1:{port}", port: \(port), instances: \(instances),
                        command: "\(simulate)", start_timeout: "20s", \(fields)}]}
            """.write(toFile: serversFile, atomically: true, encoding: .utf8)
        return port
    }

    func writeJob(count: Int, steps: Int = 6, extra: String = "") throws -> String {
        let job = path("night.json")
        try """
            {name: "night", workflow: "\(RunCommandTests.workflow)", seeds: {start: 1, count: \(count)},
             set: {"KSampler.steps": \(steps), "Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             output: {folder: "\(path("out"))", name: "{job}_{index}"}, \(extra)}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        return job
    }

    /// A `comfyq simulate` on `port` that no run supervises (its outputs in `sim-out/NAME`),
    /// once it answers. Stopped when the caller lets go of it.
    func startSimulator(port: Int, stepTime: String, name: String = "0") async throws -> ChildProcess {
        let simulator = try startBinary([
            "simulate", "--port", String(port), "--output", path("sim-out/\(name)"), "--step-time", stepTime, "--load-time", "0", "--node-time", "0",
            "--warm-up", "0",
        ])
        _ = try await eventually("the simulator on port \(port) to answer", describe: { simulator.tail }) {
            (await InputFilesCommandTests.stats(port: port))["completed"] != nil ? true : nil
        }
        return simulator
    }

    /// `comfyq run` in the background, its output in files.
    func startRun(_ arguments: [String], tag: String = "run") throws -> Process {
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = ["run", "--hook", path("servers-hook.lua"), "--no-user-hooks"] + arguments
        process.environment = Hermetic.childEnvironment(environment)
        _ = FileManager.default.createFile(atPath: path("\(tag).out"), contents: nil)
        _ = FileManager.default.createFile(atPath: path("\(tag).err"), contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: path("\(tag).out"))
        process.standardError = FileHandle(forWritingAtPath: path("\(tag).err"))
        try process.run()
        tags[ObjectIdentifier(process)] = tag
        return process
    }

    /// Waits for a process started with `startRun` to exit (off the cooperative pool).
    func wait(_ process: Process, timeout: Double = 90) async throws -> Int32 {
        try await eventually("comfyq run to exit", timeout: timeout, interval: 0.05, describe: { self.outputs(of: process) }) {
            process.isRunning ? nil : process.terminationStatus
        }
    }

    /// What a run started with `startRun` printed so far.
    func outputs(of process: Process) -> String {
        let tag = (process.arguments ?? []).isEmpty ? "run" : tags[ObjectIdentifier(process)] ?? "run"
        return output(tag)
    }

    private var tags: [ObjectIdentifier: String] = [:]

    func output(_ tag: String) -> String {
        ((try? String(contentsOfFile: path("\(tag).err"), encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: path("\(tag).out"), encoding: .utf8)) ?? "")
    }

    func events() -> [String] {
        ((try? String(contentsOfFile: serverEvents, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func pidFiles() -> [String] {
        let folder = state + "/comfyq/servers/local"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let single = state + "/comfyq/servers/local.pid"
        return names.filter { $0.hasSuffix(".pid") }.map { folder + "/" + $0 } + (FileManager.default.fileExists(atPath: single) ? [single] : [])
    }

    /// The pid of the running supervised server (from its pid file).
    func serverPID(_ file: String) -> Int32? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        return Int32(text.split(separator: " ").first ?? "")
    }

    func done() async throws -> Int {
        let status = try await Self.statusJSON(db)
        return status["jobs"]?.arrayValue?.first?["counts"]?["done"]?.numberValue?.int ?? 0
    }

    /// `comfyq status --json`, in-process (this runs often while waiting).
    static func statusJSON(_ db: String) async throws -> JSONValue {
        let capture = Capture()
        let status = await ComfyQ.main(arguments: ["status", "--json", "--db", db], console: capture.console)
        guard status == .success else { throw NotYet(what: "status", seconds: 0, lastSeen: capture.stderr) }
        return try JSONValue(parsing: capture.stdout)
    }

    func outputs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path("out"))) ?? []).filter { $0.hasSuffix(".png") && $0 != "contact-sheet.png" }.sorted()
    }

    /// PNGs the simulators wrote (every incarnation of every instance): a prompt that ran to the
    /// end twice would show here twice.
    func simulatorOutputs() -> Int {
        let root = path("sim-out")
        let names = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []
        return names.filter { $0.hasSuffix(".png") && !$0.contains("temp") && !$0.split(separator: "/").contains("input") }.count
    }

    func post(_ url: String, _ path: String) async throws {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data("{}".utf8)
        _ = try await URLSession(configuration: .ephemeral).data(for: request)
    }
}

@Suite(.serialized) struct ServerSupervisionTests {
    @Test func killNineMidBatchRestartsTheServerAndRunsEveryItemOnce() async throws {
        let night = try Night("kill9")
        try night.writeServers()
        let job = try night.writeJob(count: 16, steps: 12)
        let run = try night.startRun([job, "--concurrency", "2"])
        // Its server's pid file, once 4 items are done (the batch is far from over by then).
        let pidFile = try await eventually("4 items done", describe: { night.output("run") }) { () -> String? in
            try await night.done() >= 4 ? night.pidFiles().first : nil
        }
        let pid = try #require(night.serverPID(pidFile))
        kill(pid, SIGKILL)
        let status = try await night.wait(run)
        #expect(status == 0, "\(night.output("run"))")
        #expect(try await night.done() == 16)
        #expect(night.outputs().count == 16)
        #expect(!night.outputs().contains { $0.contains("-1.") })
        // A prompt the server finished in the instant before the kill, before its outputs were
        // fetched, runs again (its history died with the process); at most the 2 it held.
        #expect((16...18).contains(night.simulatorOutputs()), "\(night.simulatorOutputs()) prompts ran to the end")
        let events = night.events()
        let crash = events.firstIndex { $0.hasPrefix("local up -> down") }
        let restarting = events.firstIndex { $0.hasPrefix("local down -> restarting") }
        let back = events.lastIndex { $0.hasPrefix("local starting -> up") }
        #expect(crash != nil && restarting != nil && back != nil, "\(events)")
        if let crash, let restarting, let back { #expect(crash < restarting && restarting < back) }
        #expect(events.first { $0.hasPrefix("local up -> down") }?.contains("killed by signal 9") == true, "\(events)")
        #expect(night.pidFiles().isEmpty, "the server was left running")

        // The morning after: the server reads stopped (by the run, when), not down, and the
        // night's restart is kept with its time and reason.
        let servers = try await runBinary(["servers", "--json"], environment: night.environment)
        let local = try JSONValue(parsing: servers.stdout)["servers"]?.arrayValue?.first
        #expect(local?["state"] == "stopped" && local?["last_error"] == .null, "\(servers.stdout)")
        #expect(local?["stopped_by"]?.stringValue?.contains("/") == true && local?["stopped_at"]?.numberValue != nil, "\(servers.stdout)")
        #expect(local?["restarts"] == 1, "\(servers.stdout)")
        let incidents = local?["incidents"]?.arrayValue ?? []
        #expect(incidents.count == 1 && incidents.first?["kind"] == "restart", "\(servers.stdout)")
        #expect(incidents.first?["reason"]?.stringValue?.contains("killed by signal 9") == true, "\(servers.stdout)")
        let text = try await runBinary(["servers"], environment: night.environment)
        #expect(text.stdout.hasPrefix("local  stopped (stopped by the run "), "\(text.stdout)")
        #expect(text.stdout.contains("  last run: the run ") && text.stdout.contains("): 1 restart\n"), "\(text.stdout)")
        let shown = try await runBinary(["status"], environment: night.environment)
        #expect(shown.stdout.contains("LAST RUN'S INCIDENTS\nlocal: the run "), "\(shown.stdout)")
        let statusJSON = try await Night.statusJSON(night.db)
        #expect(statusJSON["servers"]?.arrayValue?.first?["incidents"]?.arrayValue?.count == 1)
        #expect(statusJSON["servers"]?.arrayValue?.first?["restarts"] == 1)
    }

    /// `comfyq_extension: true`: the run installs comfyq's ComfyUI extension into the server's
    /// folder before it starts it, and says so in its log.
    @Test func aSupervisedServerGetsTheExtensionInstalled() async throws {
        let night = try Night("extension")
        let comfy = night.path("ComfyUI")
        try FileManager.default.createDirectory(atPath: comfy + "/custom_nodes", withIntermediateDirectories: true)
        try night.writeServers(fields: "cwd: \"\(comfy)\", comfyq_extension: true")
        let job = try night.writeJob(count: 1)
        let run = try await runBinary(["run", job], environment: night.environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: comfy + "/custom_nodes/comfyq/web/comfyq.js"))
        let config = try JSONValue(parsing: try String(contentsOfFile: comfy + "/custom_nodes/comfyq/web/comfyq.json", encoding: .utf8))
        #expect(config["serve"] == "http://127.0.0.1:8190", "\(config.serialized())")
    }

    @Test func aHungServerIsDownWithinDownAfterAndRestarted() async throws {
        let night = try Night("hang")
        try night.writeServers(fields: "down_after: \"2s\"")
        let job = try night.writeJob(count: 8, steps: 8)
        let run = try night.startRun([job, "--concurrency", "1"])
        try await eventually("2 items done", describe: { night.output("run") }) { try await night.done() >= 2 ? true : nil }
        let servers = try String(contentsOfFile: night.serversFile, encoding: .utf8)
        let port = try #require(servers.split(separator: ",").first { $0.contains("port:") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces))
        try await night.post("http://127.0.0.1:\(port)", "/sim/hang")
        let status = try await night.wait(run)
        #expect(status == 0, "\(night.output("run"))")
        #expect(try await night.done() == 8)
        #expect(night.events().contains { $0.hasPrefix("local up -> down | not answering for 2 s") }, "\(night.events())")
        #expect(night.events().contains { $0.hasPrefix("local down -> restarting") }, "\(night.events())")
        // A prompt the server finished in the instant before it hung, before its outputs were
        // fetched, runs again after the restart (its history died with the process): at most the
        // one it held. The queue still has each item done once, with one set of outputs.
        #expect((8...9).contains(night.simulatorOutputs()), "\(night.simulatorOutputs()) prompts ran to the end")
        #expect(night.outputs().count == 8)
    }

    @Test func aPoisonItemFailsAfterTwoCrashesAndTheRestFinish() async throws {
        let night = try Night("poison")
        try night.writeServers(extraArguments: "--crash-on-seed 3")
        let job = try night.writeJob(count: 6)
        let run = try night.startRun([job, "--concurrency", "1"])
        let status = try await night.wait(run)
        #expect(status == 1, "\(night.output("run"))")  // an item failed
        let json = try await Night.statusJSON(night.db)
        let counts = json["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["done"] == 5 && counts?["failed"] == 1, "\(json.serialized())\n\(night.output("run"))\n\(night.events())")
        let failed = json["items"]?.arrayValue?.first { $0["state"] == "failed" }
        let error = failed?["error"]?.stringValue ?? ""
        #expect(failed?["index"] == 2)  // seed 3
        #expect(error.hasPrefix("server local crashed twice while running it; its log ends:"), "\(error)")
        #expect(error.contains("simulated crash: seed 3"), "\(error)")
        // Both crashes and the poison prompt are the night's incidents, after the run.
        let server = json["servers"]?.arrayValue?.first
        let kinds = server?["incidents"]?.arrayValue?.compactMap { $0["kind"]?.stringValue } ?? []
        #expect(kinds.filter { $0 == "restart" }.count == 2 && kinds.contains("poison"), "\(kinds)")
        #expect(server?["incidents"]?.arrayValue?.first { $0["kind"] == "poison" }?["item"] == "night/2")
    }

    @Test func aCommandThatExitsAtOnceIsGivenUpAndItemsStayPending() async throws {
        let night = try Night("giveup")
        try night.writeServers(fields: "max_restarts: 2", command: "false")
        let job = try night.writeJob(count: 3)
        let run = try night.startRun([job])
        let status = try await night.wait(run)
        let output = night.output("run")
        #expect(status == 1, "\(output)")
        #expect(output.contains("Error: no server left, 3 items still pending: local given up: restarted 2 times within an hour"), "\(output)")
        #expect(output.contains("(log: \(night.state)/comfyq/servers/local.log)"), "\(output)")
        let json = try await Night.statusJSON(night.db)
        #expect(json["jobs"]?.arrayValue?.first?["counts"]?["pending"] == 3)
        #expect(night.events().last?.hasPrefix("local down -> given up") == true, "\(night.events())")
    }

    @Test func twoRunsWithOneServersFileStartOneServer() async throws {
        let night = try Night("two-runs")
        try night.writeServers()
        let job = try night.writeJob(count: 12)
        #expect(try await runBinary(["add", job], environment: night.environment).status == .success)
        let first = try night.startRun([], tag: "first")
        let second = try night.startRun([], tag: "second")
        let one = try await night.wait(first)
        let two = try await night.wait(second)
        #expect(one == 0 && two == 0, "\(night.output("first"))\n\(night.output("second"))")
        #expect(try await night.done() == 12)
        let log = try String(contentsOfFile: night.state + "/comfyq/servers/local.log", encoding: .utf8)
        #expect(log.components(separatedBy: "==== comfyq: starting local").count - 1 == 1, "\(log)")
        #expect(night.simulatorOutputs() == 12)
    }

    @Test func aPortHeldBySomethingElseIsAnErrorNamingIt() async throws {
        let night = try Night("port-held")
        let other = try await HTTPListener.start(status: 404)  // a web server that is not ComfyUI
        defer { other.stop() }
        let port = other.server.port
        try """
            {servers: [{name: "local", url: "http://127.0.0.1:\(port)", command: "\(Paths.binary.path) simulate --port \(port)"}]}
            """.write(toFile: night.serversFile, atomically: true, encoding: .utf8)
        let job = try night.writeJob(count: 2)
        let run = try await runBinary(["run", job, "--no-user-hooks"], environment: night.environment)
        #expect(run.status == .failure)
        #expect(run.stderr.contains("Error: no server left, 2 items still pending: local given up: port \(port) is held by something that is not ComfyUI"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: night.state + "/comfyq/servers/local.log"))  // nothing was started
        // servers says what holds the port, instead of "down" or trying to start ComfyUI on it.
        let start = try await runBinary(["servers", "start", "local"], environment: night.environment)
        #expect(start.status == .failure && start.stderr.contains("local: port \(port) is held by something that is not ComfyUI"), "\(start.stderr)")
        #expect(!FileManager.default.fileExists(atPath: night.state + "/comfyq/servers/local.log"))
        let shown = try await runBinary(["servers", "--json"], environment: night.environment)
        #expect(try JSONValue(parsing: shown.stdout)["servers"]?.arrayValue?.first?["state"] == "not ComfyUI", "\(shown.stdout)")
    }

    @Test func badServersFilesGetOneLineAndAddNothing() async throws {
        let night = try Night("bad")
        try "{servers: [{name: 'a', url: 'http://127.0.0.1:{port}', port: 9000, instances: 2, command: 'no-such-comfyui --port {port}'}]}"
            .write(toFile: night.serversFile, atomically: true, encoding: .utf8)
        let job = try night.writeJob(count: 2)
        let run = try await runBinary(["run", job], environment: night.environment)
        #expect(run.status == .dataError)
        #expect(run.stderr == "Error: \(night.serversFile): servers[0].command: no-such-comfyui is not on PATH\n")
        try night.writeServers()
        let unknown = try await runBinary(["run", job, "--server", "gpu9"], environment: night.environment)
        #expect(unknown.status == .usage)
        #expect(unknown.stderr.hasPrefix("Error: --server gpu9: no server of that name in \(night.serversFile) (servers: local)"), "\(unknown.stderr)")
        let json = try await Night.statusJSON(night.db)
        #expect(json["jobs"]?.arrayValue?.isEmpty == true)
    }
}

/// A full disk pauses the night instead of failing it: a real filesystem that fills up (a small
/// tmpfs, mounted by the test, which needs root as CI is).
@Suite(.serialized) struct DiskFullTests {
    @Test func aFullDiskPausesAndResumesWhenThereIsRoomAgain() async throws {
        let night = try Night("diskfull")
        let folder = night.path("out")
        guard try await Self.mountTmpfs(size: "300k", at: folder) else { return }
        defer { _ = try? runToolSync("/bin/umount", ["-l", folder]) }
        try night.writeServers()
        let job = night.path("night.json")
        try """
            {name: "night", workflow: "\(RunCommandTests.workflow)", seeds: {start: 1, count: 6},
             set: {"KSampler.steps": 2, "Empty Latent Image.width": 1024, "Empty Latent Image.height": 1024},
             output: {folder: "\(folder)", name: "{job}_{index}"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let run = try night.startRun([job, "--space-check", "200ms", "--json-events"])
        let paused = try await eventually("the run to pause", describe: { night.output("run") }) {
            try await Night.statusJSON(night.db)["paused"] == true ? true : nil
        }
        #expect(paused)
        let status = try await Night.statusJSON(night.db)
        let counts = status["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["failed"] == 0, "\(status.serialized())")
        #expect((counts?["done"]?.numberValue?.int ?? 0) < 6)
        #expect(night.events().contains { $0.hasPrefix("pause | \(folder) | ") && $0.contains("no space left") }, "\(night.events())")
        let text = try await runBinary(["status"], environment: night.environment)
        #expect(text.stdout.hasPrefix("PAUSED: run \(run.processIdentifier) since"), "\(text.stdout)")
        // Room again: the run resumes by itself and finishes everything.
        #expect(try await runTool("/bin/mount", ["-o", "remount,size=20m", folder]) == 0)
        let exit = try await night.wait(run)
        #expect(exit == 0, "\(night.output("run"))")
        #expect(try await night.done() == 6)
        #expect(night.outputs().count == 6)
        #expect(!night.outputs().contains { $0.contains("-1.") })
        #expect(night.events().contains { $0.hasPrefix("resume | \(folder) | after") }, "\(night.events())")
        let lines = night.output("run").split(separator: "\n")
        #expect(lines.contains { $0.contains("\"event\":\"pause\"") } && lines.contains { $0.contains("\"event\":\"resume\"") })
        #expect(night.simulatorOutputs() == 6, "a prompt ran twice")
    }
}

extension DiskFullTests {
    /// A small tmpfs at `folder`, a filesystem that really fills up. False (the test is skipped,
    /// and says so) only without root, which mounting needs; CI runs as root.
    static func mountTmpfs(size: String, at folder: String) async throws -> Bool {
        guard getuid() == 0 else {
            print("DiskFullTests: skipped: mounting a small tmpfs needs root (CI runs as root)")
            return false
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let status = try await runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", folder])
        try #require(status == 0, "mount -t tmpfs failed with status \(status)")
        return true
    }

    @Test func aQueueThatCannotBeWrittenPausesToo() async throws {
        let night = try Night("dbfull")
        let folder = night.path("db")
        guard try await Self.mountTmpfs(size: "2m", at: folder) else { return }
        defer { _ = try? runToolSync("/bin/umount", ["-l", folder]) }
        try night.writeServers()
        let job = try night.writeJob(count: 10, steps: 8)
        var environment = night.environment
        environment["COMFYQ_DB"] = folder + "/queue.db"
        #expect(try await runBinary(["add", job], environment: environment).status == .success)
        let run = try night.startRun(["--space-check", "200ms", "--json-events", "--db", folder + "/queue.db"])
        try await eventually("2 items done", describe: { night.output("run") }) {
            night.outputs().count >= 2 ? true : nil
        }
        // Fill the queue's filesystem to the last byte.
        _ = try await runTool("/bin/dd", ["if=/dev/zero", "of=\(folder)/filler", "bs=64k", "status=none"])
        try await eventually("the run to pause", describe: { night.output("run") }) {
            night.output("run").contains("\"event\":\"pause\"") ? true : nil
        }
        #expect(night.output("run").contains("the queue cannot be written"), "\(night.output("run"))")
        try FileManager.default.removeItem(atPath: folder + "/filler")
        let exit = try await night.wait(run)
        #expect(exit == 0, "\(night.output("run"))")
        let status = try await Night.statusJSON(folder + "/queue.db")
        #expect(status["jobs"]?.arrayValue?.first?["counts"]?["done"] == 10, "\(status.serialized())")
        #expect(night.outputs().count == 10)
        #expect(!night.outputs().contains { $0.contains("-1.") })
        #expect(night.simulatorOutputs() == 10, "a prompt ran twice")
    }
}

/// Runs a system tool to the end (off the cooperative pool) and returns its exit status.
func runTool(_ path: String, _ arguments: [String]) async throws -> Int32 {
    try await offPool { try runToolSync(path, arguments) }
}

func runToolSync(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// `comfyq servers`: health, and start/stop/restart, directly and through the run.
@Suite(.serialized) struct ServersCommandTests {
    static func port(of night: Night) throws -> Int {
        let text = try String(contentsOfFile: night.serversFile, encoding: .utf8)
        let field = text.split(separator: ",").first { $0.contains("port:") } ?? ""
        return Int(field.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
    }

    @Test func showsStartsRestartsAndStopsASupervisedServer() async throws {
        let night = try Night("servers-cmd")
        try night.writeServers()
        let port = try Self.port(of: night)
        let down = try await runBinary(["servers", "--json"], environment: night.environment)
        let before = try JSONValue(parsing: down.stdout)["servers"]?.arrayValue?.first
        #expect(before?["name"] == "local" && before?["state"] == "down" && before?["supervised"] == true, "\(down.stdout)")

        let start = try await runBinary(["servers", "start", "local"], environment: night.environment)
        #expect(start.status == .success, "\(start.stderr)")
        #expect(start.stdout.hasPrefix("local: up at http://127.0.0.1:\(port) in "), "\(start.stdout)")
        let firstPID = try #require(night.pidFiles().first.flatMap(night.serverPID))

        let up = try await runBinary(["servers", "--json"], environment: night.environment)
        let row = try JSONValue(parsing: up.stdout)["servers"]?.arrayValue?.first
        #expect(row?["state"] == "up" && row?["version"] == "0.38.1" && row?["gpu"] == "sim:0 comfyq simulator", "\(up.stdout)")
        #expect(row?["log_tail"]?.arrayValue?.contains { $0.stringValue?.contains("comfyq simulator listening") == true } == true)
        let text = try await runBinary(["servers"], environment: night.environment)
        #expect(text.stdout.contains("local  up  http://127.0.0.1:\(port)  (supervised)"), "\(text.stdout)")
        #expect(text.stdout.contains("ComfyUI 0.38.1, sim:0 comfyq simulator, 85.9 GB of 85.9 GB free"), "\(text.stdout)")

        let doctor = try await runBinary(["doctor", "--server", "local"], environment: night.environment)
        #expect(doctor.status == .success && doctor.stdout.contains("✓ websocket"), "\(doctor.stdout)")
        let again = try await runBinary(["servers", "start", "local"], environment: night.environment)
        #expect(again.stdout == "local: already running (pid \(firstPID)) at http://127.0.0.1:\(port)\n", "\(again.stdout)")

        let restart = try await runBinary(["servers", "restart", "local"], environment: night.environment)
        #expect(restart.status == .success, "\(restart.stderr)")
        let secondPID = try #require(night.pidFiles().first.flatMap(night.serverPID))
        #expect(secondPID != firstPID)
        #expect(kill(firstPID, 0) != 0)

        let stop = try await runBinary(["servers", "stop", "local"], environment: night.environment)
        #expect(stop.stdout == "local: stopped\n", "\(stop.stderr)")
        #expect(night.pidFiles().isEmpty)
        #expect(Ports.nothingListens(on: port))
    }

    @Test func aRunUsesAServerStartedBeforeAndRestartRequestsGoThroughIt() async throws {
        let night = try Night("servers-run")
        try night.writeServers(fields: "keep_running: true")
        #expect(try await runBinary(["servers", "start", "local"], environment: night.environment).status == .success)
        let pid = try #require(night.pidFiles().first.flatMap(night.serverPID))
        let job = try night.writeJob(count: 20, steps: 10)
        let run = try night.startRun([job])
        try await eventually("3 items done", describe: { night.output("run") }) { try await night.done() >= 3 ? true : nil }
        #expect(night.output("run").contains("local: found its process (pid \(pid)) from an earlier run"), "\(night.output("run"))")
        let restart = try await runBinary(["servers", "restart", "local"], environment: night.environment)
        #expect(restart.stdout == "local: asked the run that supervises it to restart it\n", "\(restart.stdout)\(restart.stderr)")
        #expect(try await night.wait(run) == 0, "\(night.output("run"))")
        #expect(try await night.done() == 20)
        #expect(night.events().contains { $0.hasPrefix("local up -> restarting | restart asked for") }, "\(night.events())")
        // A prompt that finished as the restart stopped the server, before the run collected it,
        // left a file but no history: it runs again. At most the 2 in flight.
        #expect((20...22).contains(night.simulatorOutputs()), "\(night.simulatorOutputs()) prompts ran to the end")
        // keep_running: the run leaves it running for the next one.
        let left = try #require(night.pidFiles().first.flatMap(night.serverPID))
        #expect(left != pid && kill(left, 0) == 0)
        #expect(try await runBinary(["servers", "stop", "local"], environment: night.environment).stdout == "local: stopped\n")
    }

    @Test func aWatchedServerCannotBeStarted() async throws {
        let night = try Night("servers-watch")
        try "{servers: [{name: 'gpu0', url: 'http://127.0.0.1:1'}]}".write(toFile: night.serversFile, atomically: true, encoding: .utf8)
        let start = try await runBinary(["servers", "start", "gpu0"], environment: night.environment)
        #expect(start.status == .failure)
        #expect(start.stderr == "Error: gpu0 has no command in the servers file: comfyq only watches it, and cannot start it\n")
        let unknown = try await runBinary(["servers", "fly", "gpu0"], environment: night.environment)
        #expect(unknown.status == .usage)
        #expect(unknown.stderr.hasPrefix("Error: unknown action 'fly' (actions: start, stop, restart)"))
    }
}
