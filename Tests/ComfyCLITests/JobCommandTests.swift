import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing

/// `validate`, `add`, `status`, `cancel`, `retry`, `remove` through the real binary.
@Suite struct JobCommandTests {
    static func job(_ name: String) -> String { Paths.packageRoot.appendingPathComponent("jobs/\(name)").path }

    @Test func addStatusCancelRetryRemove() async throws {
        let db = TestFolder.root.appendingPathComponent("comfyq-cli-\(UUID()).db").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) } }
        let environment = ["COMFYQ_DB": db]
        let added = try await runBinary(["add", Self.job("seed-sweep.json"), Self.job("prompt-matrix.json")], environment: environment)
        #expect(added.status == .success, "\(added.stderr)")
        #expect(added.stdout == "added job seed-sweep (#1): 8 items\nadded job prompt-matrix (#2): 12 items\n")

        let status = try await runBinary(["status", "--json", "seed-sweep"], environment: environment)
        let json = try JSONValue(parsing: status.stdout)
        #expect(json["schema"] == 1)
        #expect(json["items"]?.arrayValue?.first?["model_key"] == "ckpt_name=v1-5-pruned-emaonly.safetensors")
        let all = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: environment).stdout)
        #expect(all["jobs"]?.arrayValue?.map { $0["name"] } == ["prompt-matrix", "seed-sweep"])
        #expect(all["jobs"]?.arrayValue?.first?["counts"]?["pending"] == 12)

        #expect(try await runBinary(["cancel", "seed-sweep"], environment: environment).stdout == "cancelled 8 items\n")
        #expect(try await runBinary(["retry", "seed-sweep/3"], environment: environment).stdout == "queued 1 item again\n")
        let text = try await runBinary(["status", "seed-sweep"], environment: environment)
        #expect(text.stdout.contains("seed-sweep/3           pending"))
        let refused = try await runBinary(["remove", "seed-sweep"], environment: environment)
        #expect(refused.status == .failure)
        #expect(refused.stderr == "Error: job #1 still has 1 unfinished item; cancel it first\n")
    }

    @Test func invalidJobsExit65WithOneLinePerProblemAndQueueNothing() async throws {
        let directory = TestFolder.root.appendingPathComponent("comfyq-jobs-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = directory.appendingPathComponent("night.json").path
        try #"{workflow: "\#(Self.job("workflows/txt2img.json"))", matrix: {"KSampler.sede": [1]}, repeat: 0}"#
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let db = directory.appendingPathComponent("q.db").path
        let run = try await runBinary(["add", Self.job("seed-sweep.json"), bad], environment: ["COMFYQ_DB": db])
        #expect(run.status == .dataError)
        #expect(run.stderr.split(separator: "\n") == [
            #"Error: \#(bad): matrix["KSampler.sede"]: KSampler has no input "sede" (inputs: seed, steps, cfg, sampler_name, scheduler, denoise)"#,
            "Error: \(bad): repeat: must be at least 1",
        ])
        // The valid file was not added either: all or nothing.
        let status = try await runBinary(["status", "--json"], environment: ["COMFYQ_DB": db])
        #expect(try JSONValue(parsing: status.stdout)["jobs"] == [])
    }

    @Test func validateAndDryRun() async throws {
        let valid = await comfyq("validate", Self.job("hires-fix.json"))
        #expect(valid.status == .success)
        #expect(valid.stdout.hasSuffix("hires-fix.json: ok, 6 items (hires-fix)\n"))
        let dry = await comfyq("add", "--dry-run", Self.job("seed-sweep.json"))
        #expect(dry.stdout.hasPrefix("seed-sweep: 8 items (dry run, nothing added)\n  seed-sweep/0  {"))
        #expect(dry.stdout.contains(#""3.seed":1007"#))
        #expect(dry.stdout.hasSuffix("  model groups: 1; one server loads 1 time\n    8 items: ckpt_name=v1-5-pruned-emaonly.safetensors\n"), "\(dry.stdout)")
    }

    /// A checkpoint sweep is one model group per checkpoint: what the plan expects to load.
    @Test func dryRunShowsTheModelGroups() async throws {
        let folder = TestFolder.root.appendingPathComponent("comfyq-groups-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let job = folder.appendingPathComponent("models.json").path
        try """
            {workflow: "\(Self.job("workflows/txt2img.json"))", seeds: {start: 1, count: 2},
             matrix: {"Load Checkpoint.ckpt_name": ["a.safetensors", "b.safetensors", "c.ckpt"]}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let dry = await comfyq("add", "--dry-run", job)
        #expect(dry.stdout.hasSuffix(
            "  model groups: 3; one server loads 3 times\n    2 items: ckpt_name=a.safetensors\n    2 items: ckpt_name=b.safetensors\n    2 items: ckpt_name=c.ckpt\n"), "\(dry.stdout)")

        // The same checkpoints as the inner axis: written order would load at every item.
        try """
            {workflow: "\(Self.job("workflows/txt2img.json"))",
             matrix: {"KSampler.seed": [1, 2], "Load Checkpoint.ckpt_name": ["a.safetensors", "b.safetensors", "c.ckpt"]}}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let inner = await comfyq("add", "--dry-run", job)
        #expect(inner.stdout.contains("  model groups: 3; one server loads 3 times (6 in the written order)\n"), "\(inner.stdout)")

        // Added, `status` shows what waits by model, and `--json` each group.
        let db = folder.appendingPathComponent("queue.db").path
        #expect(await comfyq("add", job, "--db", db).status == .success)
        let status = await comfyq("status", "--db", db)
        #expect(status.stdout.contains("  waiting by model: a.safetensors ×2, b.safetensors ×2, c.ckpt ×2 (3 loads on one server)\n"), "\(status.stdout)")
        let json = try JSONValue(parsing: await comfyq("status", "--json", "--db", db).stdout)
        let groups = json["jobs"]?.arrayValue?.first?["model_groups"]?.arrayValue ?? []
        #expect(groups == [
            ["model_key": "ckpt_name=a.safetensors", "pending": 2], ["model_key": "ckpt_name=b.safetensors", "pending": 2],
            ["model_key": "ckpt_name=c.ckpt", "pending": 2],
        ])
    }
}

@Suite struct StatusWatchTests {
    /// Not on a terminal, `--watch` prints a plain snapshot every 2 s (no escape codes) until stopped.
    @Test func watchPrintsPlainSnapshots() async throws {
        let db = TestFolder.root.appendingPathComponent("comfyq-watch-\(UUID()).db").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) } }
        let added = try await runBinary(["add", JobCommandTests.job("seed-sweep.json")], environment: ["COMFYQ_DB": db])
        try #require(added.status == .success, "\(added.stderr)")
        let watch = try startBinary(["status", "--watch", "--db", db])
        defer { watch.stop() }
        let text = try await watch.waitForOutput("two snapshots") { $0.components(separatedBy: "seed-sweep (#1)").count >= 3 }
        #expect(!text.contains("\u{1B}["))
    }
}
