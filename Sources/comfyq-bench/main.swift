// comfyq-bench: the figures quoted in README.md. Build and run in release:
//
//     swift run -c release comfyq-bench [engine|decode|graph300|memory|codec|loopback|http|simulator|queue|runner|hooks|supervision|dispatch|inputs|serve|conversion|soak|report|review|runners|all]
//
// `queue` and `runners` also run on PostgreSQL when given a server's URL (postgresql://…);
// `runners … --postgresql-only` skips its SQLite half.
//
// Each benchmark runs several rounds and reports the median, so one noisy round on a shared
// 2-core machine does not decide the figure.

import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Runner
import Simulator
import WebSocket

let arguments = Set(CommandLine.arguments.dropFirst())
let all = arguments.isEmpty || arguments.contains("all")
#if DEBUG
print("warning: debug build; run with -c release for real figures")
#endif
if all || arguments.contains("engine") { benchmarkEngine() }
if all || arguments.contains("decode") { benchmarkDecode() }
if all || arguments.contains("graph300") { benchmarkGraph300() }
if all || arguments.contains("memory") { benchmarkMemory() }
if all || arguments.contains("codec") { benchmarkCodec() }
if all || arguments.contains("loopback") { await benchmarkLoopback() }
if all || arguments.contains("http") { await benchmarkHTTP() }
if all || arguments.contains("simulator") { await benchmarkSimulator() }
if all || arguments.contains("queue") { benchmarkQueue(postgres: CommandLine.arguments.first { PostgresDatabase.isURL($0) }) }
if arguments.contains("runners") { await RunnersBenchmark.run(postgres: CommandLine.arguments.first { PostgresDatabase.isURL($0) }) }
if all || arguments.contains("runner") { await benchmarkRunner() }
if all || arguments.contains("hooks") { await benchmarkHooks() }
if all || arguments.contains("supervision") { await SupervisionBenchmark.run() }
if all || arguments.contains("dispatch") { await DispatchBenchmark.run() }
if all || arguments.contains("inputs") { await InputsBenchmark.run() }
if all || arguments.contains("serve") { await ServeBenchmark.run() }
if all || arguments.contains("conversion") { ConversionBenchmark.run() }
// Minutes long: only when asked (`soak [count]`).
if arguments.contains("review") { await ReviewBenchmark.run(count: CommandLine.arguments.compactMap { Int($0) }.first ?? 10_000) }
if arguments.contains("report") { await ReportBenchmark.run(count: CommandLine.arguments.compactMap { Int($0) }.first ?? 100_000) }
if arguments.contains("soak") { await SoakBenchmark.run(count: CommandLine.arguments.compactMap { Int($0) }.first ?? 100_000) }
