import ComfyClient
import ComfyCore
import Foundation
import Simulator
import Testing

/// The simulator's caches against ComfyUI's (`comfy_execution/caching.py`): the classic cache
/// keeps only what the previous prompt used, so alternating checkpoints loads every time;
/// `--cache-lru N` keeps the last N results, so going back to a checkpoint is free.
@Suite struct CacheFidelityTests {
    static func prompt(checkpoint: String, seed: Int) -> Workflow {
        var workflow = SimulatorProtocolTests.txt2img(seed: seed, steps: 2)
        workflow.set(node: "4", input: "ckpt_name", to: .string(checkpoint))
        return workflow
    }

    /// Runs the prompts in order and returns, for each, whether its loader (node 4) ran.
    static func loaderRuns(_ cache: CachePolicy, _ checkpoints: [String]) async throws -> [Bool] {
        let fixture = try SimulatorFixture { options in
            options.instant()
            options.cache = cache
        }
        let listener = try await fixture.listen(clientID: "c")
        var runs: [Bool] = []
        for (index, checkpoint) in checkpoints.enumerated() {
            let id = "p\(index)"
            _ = try await fixture.api.submit(Self.prompt(checkpoint: checkpoint, seed: index), promptID: id, clientID: "c")
            let messages = await listener.until(end: id)
            let cached = messages.first { $0["type"] == "execution_cached" }?["data"]?["nodes"]?.arrayValue ?? []
            let executed = messages.contains { $0["type"] == "executing" && $0["data"]?["node"] == "4" }
            #expect(executed != cached.contains("4"), "node 4 both cached and run in \(id)")
            runs.append(executed)
        }
        listener.close()
        return runs
    }

    @Test(arguments: [
        (CachePolicy.classic, ["A", "B", "A", "B"], [true, true, true, true]),
        (CachePolicy.classic, ["A", "A", "B", "B"], [true, false, true, false]),
        (CachePolicy.lru(20), ["A", "B", "A", "B"], [true, true, false, false]),
        // Each prompt leaves 7 results; with room for 8 only the latest prompt's survive.
        (CachePolicy.lru(8), ["A", "B", "A"], [true, true, true]),
    ])
    func aLoaderRunsWhenItsResultIsNotCached(cache: CachePolicy, checkpoints: [String], expected: [Bool]) async throws {
        #expect(try await Self.loaderRuns(cache, checkpoints) == expected)
    }

    /// A loader that runs costs the load time every time: alternating checkpoints is slow on
    /// the classic cache, as on a real ComfyUI.
    @Test func alternatingCheckpointsCostsALoadPerPrompt() async throws {
        let fixture = try SimulatorFixture { options in
            options.instant()
            options.loadTime = 0.2
        }
        let listener = try await fixture.listen(clientID: "c")
        for (index, checkpoint) in ["A", "B", "A", "B"].enumerated() {
            _ = try await fixture.api.submit(Self.prompt(checkpoint: checkpoint, seed: index), promptID: "p\(index)", clientID: "c")
            _ = await listener.until(end: "p\(index)")
        }
        let stats = try await fixture.post("/sim/stats")
        #expect((stats["busy_seconds"]?.numberValue?.double ?? 0) >= 0.8, "\(stats.serialized())")
    }

    @Test(arguments: [("classic", CachePolicy.classic), ("lru:5", .lru(5))])
    func policiesReadAsTheFlagIsWritten(text: String, policy: CachePolicy) {
        #expect(CachePolicy(text) == policy)
        #expect(policy.description == text)
    }

    @Test(arguments: ["lru", "lru:0", "lru:x", "ram"])
    func otherPoliciesAreRefused(text: String) {
        #expect(CachePolicy(text) == nil)
    }
}
