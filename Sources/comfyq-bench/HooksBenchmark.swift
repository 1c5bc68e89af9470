import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A phase event as the runner builds it: every key set, three parameters, per-phase timings.
func fullHookEvent(_ index: Int) -> HookEvent {
    let prompt = HookPrompt(
        job: "night", item: index, promptID: "7d4f0b9e-3c2a-4c56-9a53-2b8e1f0a6c11", server: "http://127.0.0.1:8188",
        params: ["KSampler.seed": .int(index), "Positive prompt.text": "a lighthouse at dusk, film grain", "KSampler.cfg": 7.5], attempt: 1)
    let snapshot = ProgressSnapshot(
        promptID: prompt.promptID, phase: .decoding, node: NodeRef(id: "8", classType: "VAEDecode", title: "VAE Decode"), sampler: 2, samplers: 2,
        step: 20, steps: 20, fraction: 0.9)
    return .prompt(
        .phase, prompt, snapshot: snapshot, previous: .sampling, elapsed: 12.5, outputs: ["outputs/night/night_1.png"],
        failure: HookFailure(message: "none", node: "8", classType: "VAEDecode", exceptionType: "x"), willRetry: false,
        timings: ["queued": 0.1, "setup": 2, "sampling": 10])
}

func benchmarkHooks() async {
    let source = """
        local count = 0
        function on_phase(e)
          if e.phase == 'decoding' and e.params['KSampler.seed'] >= 0 then count = count + 1 end
          return e.item
        end
        """
    let lua = try! LuaScript(source: source, name: "bench.lua")
    let events = (0..<1000).map(fullHookEvent)
    let tables = events.map { JSONValue.object($0.table) }
    let calls = 20_000
    let call = measure(rounds: 5) {
        for index in 0..<calls { _ = try! lua.call("on_phase", [tables[index % tables.count]]) }
    } / Double(calls)
    let build = measure(rounds: 5) {
        var keys = 0
        for index in 0..<calls { keys += fullHookEvent(index).table.count }
        precondition(keys > 0)
    } / Double(calls)
    print("hooks: one call with a full event table (\(tables[0].objectValue!.count) keys, nested params/node/error/timings): \(format(call * 1e6, 2)) µs to encode, push, call on_phase and read its result; building the event \(format(build * 1e6, 2)) µs  [target ≤ 20 µs]")

    // Through the mailbox: the caller's cost per deliver, and the script thread's throughput.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-hooks-\(UUID())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("bench.lua").path
    try! source.write(toFile: path, atomically: true, encoding: .utf8)
    let script = try! await HookScript.load(path: path, environment: HookEnvironment { _ in })
    let count = 100_000
    let start = ContinuousClock.now
    for index in 0..<count { script.deliver(events[index % events.count]) }
    let delivered = seconds(since: start)
    await script.flush()
    let handled = seconds(since: start)
    script.stop()
    print("hooks: \(count) events through one script's mailbox: deliver() \(format(delivered / Double(count) * 1e6, 2)) µs each on the caller's side, all handled after \(format(handled, 2)) s (\(format(Double(count) / handled, 0)) events/s)")

    // A hook that sleeps 10 s on every phase change and progress event, beside the same batch
    // without it: the batch must not notice.
    let sleeper = directory.appendingPathComponent("sleeper.lua").path
    try! """
        function on_phase(e) comfyq.exec({'sleep', '10'}, 15) end
        function on_progress(e) comfyq.exec({'sleep', '10'}, 15) end
        """.write(toFile: sleeper, atomically: true, encoding: .utf8)
    let prompts = 20
    var results: [(span: Double, busy: Double, progress: Int)] = []
    for withHook in [false, true] {
        let simulator = gpuSimulator(latency: 0, output: directory.appendingPathComponent("sim-\(withHook)").path)
        var options = RunnerOptions(servers: [URL(string: simulator.url)!])
        var hookSet: HookSet?
        if withHook {
            var settings = HookScript.Settings()
            settings.limits.time = 15
            hookSet = try! await HookSet.load([HookSet.Source(path: sleeper)], settings: settings, environment: HookEnvironment { _ in })
            options.hooks = hookSet
            options.hookDrainTimeout = 0.1
        }
        let runner = try! Runner(queuePath: benchQueue(directory, count: prompts, name: "sleeper-\(withHook)"), options: options)
        let watcher = Task { () -> (Double, Int) in
            let start = ContinuousClock.now
            var last = 0.0
            var progress = 0
            for await event in runner.events {
                switch event {
                case .completed: last = seconds(since: start)
                case .progress, .transition: progress += 1
                default: break
                }
            }
            return (last, progress)
        }
        _ = await runner.run()
        let (span, progress) = await watcher.value
        results.append((span, simulator.busySeconds / simulator.activeSeconds, progress))
        simulator.stop()
        if let hookSet { print("  (the sleeping hook got through \(hookSet.scripts[0].stats.calls) of its events while the batch ran)") }
    }
    print("hooks: \(prompts) prompts of 20 steps at 35 ms, concurrency 2, with a hook that sleeps 10 s on every phase change and progress event vs none: last output after \(format(results[1].span, 2)) s vs \(format(results[0].span, 2)) s (ratio \(format(results[1].span / results[0].span, 3))), GPU busy \(format(results[1].busy * 100, 2))% vs \(format(results[0].busy * 100, 2))%, progress updates seen \(results[1].progress) vs \(results[0].progress)")
}
