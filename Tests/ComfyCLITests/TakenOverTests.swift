import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing

/// Two `comfyq run`s on one queue as on two machines (host and pid namespaces of their own, so
/// neither can see whether the other's process lives: only the lease speaks), one frozen with
/// SIGSTOP past its lease with prompts in flight, as a suspended laptop or VM. The other takes
/// its items over; when the frozen run wakes it says so once and reports nothing of them: every
/// item is executed, reported done, hooked and saved exactly once.
@Suite(.serialized) struct TakenOverTests {
    /// Namespaces need root (CI runs as root; elsewhere the test says why it is skipped).
    static let canUnshare = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
    static let unshareMissing = "separate host and pid namespaces need root and /usr/bin/unshare"

    @Test(.enabled(if: canUnshare, Comment(rawValue: unshareMissing)), arguments: QueueBackend.all)
    func aRunFrozenPastItsLeaseReportsNothingOfWhatWasTakenOver(_ backend: QueueBackend) async throws {
        let night = try Night("taken-over-\(backend)")
        let location = try backend.location()
        let port = try Ports.outsideEphemeralRange(1)
        let simulator = try await night.startSimulator(port: port, stepTime: "100ms")
        defer {
            simulator.terminate()
            simulator.waitUntilExit()
        }
        let count = 60
        let job = try night.writeJob(count: count, steps: 4)
        #expect(try await runBinary(["add", job, "--db", location, "--no-preflight"]).status == .success)
        let completions = night.path("completions.txt")
        let hook = night.path("complete.lua")
        try """
            function on_complete(e)
              local file = assert(io.open("\(completions)", "a"))
              file:write(e.job, "/", e.item, "\\n")
              file:close()
            end
            """.write(toFile: hook, atomically: true, encoding: .utf8)
        let arguments = ["run", "--server", "http://127.0.0.1:\(port)", "--db", location, "--lease", "6s", "--hook", hook, "--no-user-hooks", "--json-events"]
        let a = try Self.machine("machine-a", arguments, environment: night.environment)
        let b = try Self.machine("machine-b", arguments, environment: night.environment)
        defer {
            for run in [a, b] {
                for pid in Self.descendants(of: run.processIdentifier) { kill(pid, SIGCONT) }
                run.stop()
            }
        }
        // Freeze A with prompts of its own in flight, outside any transaction of the queue (a
        // frozen holder of the queue's write lock stalls every run, which is not this test).
        let heldByA = { @Sendable () throws -> Int in try Queue(path: location).items(states: [.running]).filter { $0.runner?.hasPrefix("machine-a/") ?? false }.count }
        _ = try await eventually("run A to have prompts in flight", timeout: 60, describe: { a.tail }) { try heldByA() >= 2 ? true : nil }
        let pids = Self.descendants(of: a.processIdentifier)
        #expect(!pids.isEmpty)
        _ = try await eventually("run A frozen outside a transaction", timeout: 30, describe: { a.tail }) {
            for pid in pids { kill(pid, SIGSTOP) }
            if try Self.queueIsFree(location, backend) { return true }
            for pid in pids { kill(pid, SIGCONT) }
            return nil
        }
        // B takes over what A held once A has been silent for its lease, and finishes it.
        _ = try await eventually("run B to take over A's items", timeout: 60, describe: { b.tail }) { (b.stdout + b.stderr).contains("reconciling") ? true : nil }
        _ = try await eventually("A's items done by B", timeout: 60, describe: { b.tail }) { try heldByA() == 0 ? true : nil }
        for pid in pids { kill(pid, SIGCONT) }
        #expect(try await a.exit(timeout: 120) == 0, "\(Self.crash(a))")
        #expect(try await b.exit(timeout: 120) == 0, "\(Self.crash(b))")

        let counts = try await Night.statusJSON(location)["jobs"]?.arrayValue?.first?["counts"]
        #expect(counts?["done"] == .int(count), "\(String(describing: counts))")
        #expect((await InputFilesCommandTests.stats(port: port))["completed"] == .int(count), "each item executed once")
        let hooked = ((try? String(contentsOfFile: completions, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(hooked.count == count && Set(hooked).count == count, "on_complete fired \(hooked.count) times for \(count) items")
        let reported = [a, b].map { run in run.stdout.split(separator: "\n").filter { $0.contains("\"event\":\"completed\"") }.count }
        #expect(reported.reduce(0, +) == count, "completions reported: A \(reported[0]), B \(reported[1])")
        let outputs = try FileManager.default.contentsOfDirectory(atPath: night.path("out")).filter { $0.hasPrefix("night_") && $0.hasSuffix(".png") }
        #expect(outputs.count == count && !outputs.contains { $0.contains("-1.") }, "\(outputs.count) outputs")
        let lost = (a.stdout + a.stderr).split(separator: "\n").filter { $0.contains("taken over by the run machine-b/") }
        #expect(!lost.isEmpty, "A says what it lost: \(a.stderr)")
        #expect(Set(lost).count == lost.count, "once each")
    }

    /// What a run that failed said: its error lines, or where it crashed (a backtrace's first frames).
    static func crash(_ run: ChildProcess) -> String {
        let lines = run.stderr.split(separator: "\n")
        guard let start = lines.firstIndex(where: { $0.contains("Fatal error") || $0.contains("crashed") || $0.contains("Error:") }) else { return run.tail }
        return lines[start...].prefix(80).joined(separator: "\n")
    }

    /// `comfyq ARGUMENTS` as the only process of a machine called `host`.
    static func machine(_ host: String, _ arguments: [String], environment: [String: String]) throws -> ChildProcess {
        try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/unshare"),
            // Its own /proc too, as a machine or a container has: libdispatch's thread-pool monitor
            // reads /proc/TID/stat, and with the host's /proc a namespace's thread ids name other
            // processes (it stops the program when it cannot read them: seen under load).
            ["--uts", "--pid", "--fork", "--mount-proc", "--kill-child", "/bin/sh", "-c", "hostname \(host) && exec \"$0\" \"$@\"", Paths.binary.path] + arguments,
            environment: Hermetic.childEnvironment(environment))
    }

    /// Every process below `pid` (the run inside the namespaces, under `unshare`).
    static func descendants(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        let children = text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return children + children.flatMap { descendants(of: $0) }
    }

    /// Whether no transaction of the queue is left open (by a frozen run).
    static func queueIsFree(_ location: String, _ backend: QueueBackend) throws -> Bool {
        switch backend {
        case .sqlite:
            let database = try SQLiteDatabase(path: location, busyTimeout: 300)
            do {
                try database.transaction {}
                return true
            } catch {
                return false
            }
        case .postgres:
            let database = try PostgresDatabase(url: location)
            let open = try database.query("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")
            return open.first?.first?.int == 0
        }
    }
}
