import ComfyCLI
import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing

/// What `comfyq status` shows of servers and pauses, from the rows a run writes (written here
/// as a run would, with this process as the run, so the picture is exact).
@Suite struct StatusServersTests {
    /// As status writes a duration: `4s`, `1m05s`.
    static func duration(_ seconds: Int) -> String { seconds < 60 ? "\(seconds)s" : "\(seconds / 60)m" + String(format: "%02ds", seconds % 60) }

    static func queue() throws -> (Queue, String) {
        let path = TestFolder.root.appendingPathComponent("comfyq-status-\(UUID()).db").path
        let queue = try Queue(path: path)
        let workflow = Paths.packageRoot.appendingPathComponent("jobs/workflows/txt2img.json").path
        let loader = JobLoader(readFile: { try String(contentsOfFile: $0, encoding: .utf8) }, fileExists: { _ in true })
        let spec = try loader.load(text: #"{name: "night", workflow: "\#(workflow)", seeds: {start: 1, count: 4}}"#, path: "/tmp/night.json")
        try queue.add(spec, items: spec.expand(random: { 0 }), now: 0)
        return (queue, path)
    }

    @Test func aRunsServersAreShownAndItemsOnADownServerSaySo() async throws {
        let (queue, path) = try Self.queue()
        let now = Date().timeIntervalSince1970
        _ = try queue.claimNext(server: "local/0", promptID: "p0", now: now - 20)
        _ = try queue.markRunning(1, promptID: "p0", now: now - 19)
        _ = try queue.recordProgress(1, promptID: "p0", phase: "sampling", step: 3, steps: 20, fraction: 0.3, now: now - 18)
        let pid = Int(getpid())
        try queue.record(ServerRecord(name: "local/0", url: "http://127.0.0.1:8190", state: "restarting", since: now - 4,
                                      reason: "its process was killed by signal 9", restarts: 1, supervised: true, runnerPID: pid, updatedAt: now))
        try queue.record(ServerRecord(name: "gpu1", url: "http://10.0.0.6:8188", state: "down", since: now - 65,
                                      reason: "not answering for 30 s", runnerPID: pid, updatedAt: now))
        // A row from a run that is gone is not shown as if it were true now.
        try queue.record(ServerRecord(name: "old", url: "http://127.0.0.1:9", state: "up", since: 0, runnerPID: pid, updatedAt: now - 3600))

        let text = try await runBinary(["status", "--db", path])
        #expect(text.stdout.contains("night (#1)"))
        #expect(text.stdout.contains("waiting for a server"), "\(text.stdout)")
        // Seconds since: the rows were written a moment before `status` ran, so a loaded machine may show a second or two more.
        func shows(_ prefix: String, secondsFrom low: Int, _ suffix: String = "") -> Bool {
            (low...(low + 5)).contains { text.stdout.contains(prefix + Self.duration($0) + suffix) }
        }
        #expect(shows("night/0                local/0                waiting: the server is restarting since ", secondsFrom: 4), "\(text.stdout)")
        #expect(!text.stdout.contains("step 3/20"))
        #expect(text.stdout.contains("SERVER                   STATE        SINCE    IN FLIGHT  RESTARTS  REASON"))
        #expect(
            (4...9).contains { text.stdout.contains("local/0                  restarting   \(Self.duration($0))               1         1  its process was killed by signal 9") },
            "\(text.stdout)")
        #expect(
            (65...70).contains { text.stdout.contains("gpu1                     down         \(Self.duration($0))            0         0  not answering for 30 s") },
            "\(text.stdout)")
        #expect(!text.stdout.contains("old "))

        let json = try JSONValue(parsing: try await runBinary(["status", "--json", "--db", path]).stdout)
        #expect(json["waiting_for_a_server"] == true)
        let servers = json["servers"]?.arrayValue ?? []
        #expect(servers.first { $0["name"] == "local/0" }?["state"] == "restarting")
        #expect(servers.first { $0["name"] == "local/0" }?["in_flight"] == 1)
        #expect(servers.first { $0["name"] == "old" }?["state"] == "unknown")
        #expect(servers.first { $0["name"] == "old" }?["last_state"] == "up")

        // One server up again: progress shows, and the ETA is no longer waiting.
        try queue.record(ServerRecord(name: "local/0", url: "http://127.0.0.1:8190", state: "up", since: now, runnerPID: pid, updatedAt: now))
        let after = try await runBinary(["status", "--db", path])
        #expect(after.stdout.contains("sampling  step 3/20 30%"), "\(after.stdout)")
        #expect(!after.stdout.contains("waiting for a server"))
    }

    @Test func aPausedRunIsTheFirstLine() async throws {
        let (queue, path) = try Self.queue()
        let now = Date().timeIntervalSince1970
        try queue.record(RunnerRecord(pid: Int(getpid()), host: ProcessInfo.processInfo.hostName, startedAt: now - 100, heartbeatAt: now,
                                      pausedReason: "/mnt/out/night_3.png: no space left", pausedFolder: "/mnt/out", pausedSince: now - 125))
        let text = try await runBinary(["status", "--db", path])
        // 2m05s, or a second more when starting the binary took that long.
        #expect(text.stdout.hasPrefix("PAUSED: run \(getpid()) since 2m0"), "\(text.stdout)")
        #expect(text.stdout.contains("s: /mnt/out/night_3.png: no space left; resumes by itself once there is room in /mnt/out\n"), "\(text.stdout)")
        let json = try JSONValue(parsing: try await runBinary(["status", "--json", "--db", path]).stdout)
        #expect(json["paused"] == true)
        #expect(json["runners"]?.arrayValue?.first?["paused_folder"] == "/mnt/out")
    }
}
