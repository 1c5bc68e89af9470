import ComfyCLI
import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `comfyq run` as a user runs it, against `comfyq simulate` in another process.
@Suite(.serialized) struct RunCommandTests {
    static let workflow = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.json").path

    /// Starts `comfyq simulate` and returns the process with its URL.
    static func startSimulator(_ output: String) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = Paths.binary
        process.environment = Hermetic.childEnvironment()
        process.arguments = ["simulate", "--port", "0", "--output", output, "--step-time", "30ms", "--load-time", "0", "--node-time", "0", "--warm-up", "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // "comfyq simulator listening on URL".
        let first = try await firstLine(of: pipe.fileHandleForReading)
        return (process, String(first.split(separator: " ").last ?? ""))
    }

    static func done(_ db: String) async throws -> Int {
        let status = try await runBinary(["status", "--json", "--db", db])
        return (try? JSONValue(parsing: status.stdout))?["jobs"]?.arrayValue?.first?["counts"]?["done"]?.numberValue?.int ?? 0
    }

    static func doneNow(_ db: String) throws -> Int {
        try Queue(path: db).jobs().first?.counts[.done] ?? 0
    }

    @Test func killedMidBatchTheNextRunFinishesEveryItemOnce() async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-kill-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let (simulator, url) = try await Self.startSimulator(root.appendingPathComponent("sim").path)
        defer { kill(simulator.processIdentifier, SIGKILL) }
        let db = root.appendingPathComponent("queue.db").path
        let job = root.appendingPathComponent("night.json").path
        try """
            {name: "night", workflow: "\(Self.workflow)", seeds: {start: 1, count: 24},
             set: {"KSampler.steps": 12, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64},
             output: {folder: "out", name: "{job}_{index}"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        #expect(try await runBinary(["add", job, "--db", db]).status == .success)

        // The first run dies with SIGKILL once a few items are done and others are in flight.
        let first = Process()
        first.executableURL = Paths.binary
        first.environment = Hermetic.childEnvironment()
        first.arguments = ["run", "--server", url, "--db", db, "--concurrency", "3"]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        // Read from the queue in this process (a `status` process per look is too slow to catch
        // a loaded machine's run part-way): each item takes 12 steps of 30 ms, about 9 s for all.
        let doneBefore = try await eventually("5 items done by the first run", timeout: 60, describe: { "\((try? Self.doneNow(db)) ?? -1) done" }) {
            let done = try Self.doneNow(db)
            return done >= 5 ? done : nil
        }
        kill(first.processIdentifier, SIGKILL)
        #expect(doneBefore >= 5)
        #expect(doneBefore < 24)

        let second = try await runBinary(["run", "--server", url, "--db", db])
        #expect(second.status == .success, "\(second.stdout)\(second.stderr)")
        #expect(try await Self.done(db) == 24)

        let files = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("out").path)) ?? []
        #expect(files.filter { $0.hasSuffix(".png") && $0 != "contact-sheet.png" }.count == 24)
        #expect(!files.contains { $0.contains("-1.") })  // no output written twice
        #expect(!files.contains { $0.hasPrefix(".comfyq-partial") })
        var request = URLRequest(url: URL(string: url + "/sim/stats")!)
        request.httpMethod = "POST"
        let (data, _) = try await URLSession(configuration: .ephemeral).data(for: request)
        let stats = try JSONValue(parsing: Array(data))
        // Prompts in flight at the kill were collected from the server, not run again.
        #expect(stats["completed"] == 24, "\(stats.serialized())")
    }

    @Test func runSimulateRunsTheExampleJob() async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-sim-run-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let job = root.appendingPathComponent("two.json").path
        try """
            {name: "two", workflow: "\(Self.workflow)", seeds: {start: 1, count: 2},
             set: {"KSampler.steps": 3, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64}, output: {folder: "out"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let run = try await runBinary(["run", "--simulate", "--json-events", job, "--db", root.appendingPathComponent("q.db").path])
        #expect(run.status == .success, "\(run.stderr)")
        let events = run.stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        #expect(events.filter { $0["event"] == "completed" }.count == 2)
        #expect(events.last?["event"] == "finished")
        #expect(events.contains { $0["event"] == "transition" && $0["to"] == "sampling" })
        #expect(run.stderr.contains("finished: 2 done, 0 failed"))
    }

    @Test func noServerIsOneLineAndExit1() async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-noserver-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try await runBinary(["run", "--server", "http://127.0.0.1:1", "--db", root.appendingPathComponent("q.db").path])
        #expect(run.status == .failure)
        #expect(run.stderr.contains("Error: no server answers: http://127.0.0.1:1 (see comfyq doctor)"))
    }
}

@Suite(.serialized) struct RunInterruptTests {
    static func start(_ root: URL) throws -> (Process, String) {
        let db = root.appendingPathComponent("q.db").path
        let job = root.appendingPathComponent("many.json").path
        try """
            {name: "many", workflow: "\(RunCommandTests.workflow)", seeds: {start: 1, count: 40},
             set: {"KSampler.steps": 60, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64}, output: {folder: "out"}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        // 1.2 s an item on the simulated GPU: the batch lasts ~50 s, so it is still going however
        // slowly the machine lets the test look at it.
        let process = Process()
        process.executableURL = Paths.binary
        process.environment = Hermetic.childEnvironment()
        process.arguments = ["run", "--simulate", job, "--db", db]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return (process, db)
    }

    static func wait(_ process: Process) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }

    static func counts(_ db: String) async throws -> JSONValue {
        let status = try await runBinary(["status", "--json", "--db", db])
        return try JSONValue(parsing: status.stdout)["jobs"]?.arrayValue?.first?["counts"] ?? [:]
    }

    @Test(arguments: [1, 2])
    func ctrlCDrainsOnceAndStopsTwice(presses: Int) async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-int-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let (process, db) = try Self.start(root)
        let exit = Task { try await Self.wait(process) }
        // Wait until prompts are in flight (the queue is made by the run: until then there is nothing to read).
        _ = try await eventually("prompts in flight", timeout: 60) { () -> Bool? in
            guard FileManager.default.fileExists(atPath: db), let counts = try? await Self.counts(db) else { return nil }
            return (counts["running"]?.numberValue?.int ?? 0) > 0 ? true : nil
        }
        for _ in 0..<presses {
            kill(process.processIdentifier, SIGINT)
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await exit.value == 1)  // stopped early: not every item ran
        let counts = try await Self.counts(db)
        // Consistent either way: nothing left half-way, nothing lost.
        #expect(counts["running"] == 0)
        #expect(counts["submitting"] == 0)
        let done = counts["done"]?.numberValue?.int ?? -1
        let pending = counts["pending"]?.numberValue?.int ?? -1
        #expect(done + pending == 40, "\(counts.serialized())")
        #expect(pending > 0)
        if presses == 1 { #expect(done > 0) }  // what was in flight finished
    }
}

@Suite(.serialized) struct RunModesTests {
    static func job(_ root: URL, name: String, count: Int) throws -> String {
        let path = root.appendingPathComponent("\(name).json").path
        try """
            {name: "\(name)", workflow: "\(RunCommandTests.workflow)", seeds: {start: 1, count: \(count)},
             set: {"KSampler.steps": 3, "Empty Latent Image.width": 64, "Empty Latent Image.height": 64}, output: {folder: "out"}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `--watch` picks up a job added from another process, and Ctrl-C ends it cleanly.
    @Test func watchPicksUpLaterJobs() async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-watch-run-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let db = root.appendingPathComponent("q.db").path
        let process = Process()
        process.executableURL = Paths.binary
        process.environment = Hermetic.childEnvironment()
        process.arguments = ["run", "--simulate", "--watch", "--db", db]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exit = Task { try await RunInterruptTests.wait(process) }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await runBinary(["add", try Self.job(root, name: "later", count: 3), "--db", db]).status == .success)
        var done = 0
        for _ in 0..<100 where done < 3 {
            try await Task.sleep(for: .milliseconds(100))
            done = try await RunInterruptTests.counts(db)["done"]?.numberValue?.int ?? 0
        }
        #expect(done == 3)
        kill(process.processIdentifier, SIGINT)
        #expect(try await exit.value == 0)  // nothing was left: drained with an empty queue
    }

    /// Outputs never overwrite unless asked: a second run of the same names adds `-1`.
    @Test func overwriteOnlyWhenAsked() async throws {
        let root = TestFolder.root.appendingPathComponent("comfyq-over-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let job = try Self.job(root, name: "same", count: 1)
        for arguments in [[], [], ["--overwrite"]] {
            let db = root.appendingPathComponent("q-\(UUID()).db").path
            let run = try await runBinary(["run", "--simulate", job, "--db", db] + arguments)
            #expect(run.status == .success)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("out").path).filter { $0.hasSuffix(".png") }
        #expect(files.sorted() == ["contact-sheet.png", "same_0-1.png", "same_0.png"])  // the job's contact sheet beside its page
    }

    /// On a terminal the run is drawn live (redrawn in place); `script` gives it a pseudo-terminal.
    @Test func liveViewOnATerminal() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "script(1) from bsdutils gives the run a terminal")
        let root = TestFolder.root.appendingPathComponent("comfyq-tty-\(UUID())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let job = try Self.job(root, name: "tty", count: 4)
        let command = "\(Paths.binary.path) run --simulate \(job) --db \(root.appendingPathComponent("q.db").path)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command, "/dev/null"]
        process.environment = Hermetic.environment.merging(["TERM": "xterm", "PATH": "/usr/bin:/bin"]) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        let status = try await RunInterruptTests.wait(process)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status == 0)
        #expect(output.contains("\u{1B}[2K"))  // lines cleared and redrawn
        #expect(output.contains("items/min"))
        // The total line: done/total, failed, in flight, rate, ETA, servers up/total.
        #expect(output.range(of: #"done [0-4]/4, failed 0, in flight [0-9], [0-9.]+ items/min(, ETA [0-9ms]+)?, servers up 1/1"#, options: .regularExpression) != nil, "\(output)")
        #expect(output.contains("finished: 4 done, 0 failed"))
    }
}
