import ComfyClient
import ComfyCore
import Foundation
import QueueStore
import Runner
import WebSocket
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Supervised servers: how fast a crash is recovered and a hang detected, and what supervision
/// costs a healthy night. The servers are real `comfyq simulate` processes (the release
/// `comfyq` built beside this benchmark).
enum SupervisionBenchmark {
    /// The `comfyq` executable beside this one.
    static var comfyq: String? {
        let folder = (CommandLine.arguments[0] as NSString).deletingLastPathComponent
        let path = (folder.isEmpty ? "." : folder) + "/comfyq"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Runner events with the time they arrived, collected as the run goes.
    final class Timeline: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [(Double, RunnerEvent)] = []
        let start = ContinuousClock.now

        func add(_ event: RunnerEvent) {
            lock.lock()
            entries.append(((ContinuousClock.now - start).seconds, event))
            lock.unlock()
        }

        var all: [(Double, RunnerEvent)] {
            lock.lock()
            defer { lock.unlock() }
            return entries
        }

        var now: Double { (ContinuousClock.now - start).seconds }

        func completed() -> Int { all.filter { if case .completed = $0.1 { true } else { false } }.count }

        /// The first event after `time` that `matches`.
        func first(after time: Double, _ matches: (RunnerEvent) -> Bool) -> Double? { all.first { $0.0 > time && matches($0.1) }?.0 }
    }

    static func definition(_ comfyq: String, port: Int, output: String, downAfter: Double = 30, stepTime: String = "35ms") -> ServerDefinition {
        ServerDefinition(
            name: "bench", url: "http://127.0.0.1:\(port)",
            launch: ServerDefinition.Launch(
                argv: [comfyq, "simulate", "--port", String(port), "--output", output, "--step-time", stepTime, "--load-time", "0", "--node-time", "0", "--warm-up", "0"],
                startTimeout: 30),
            downAfter: downAfter)
    }

    static func freePort() -> Int { try! TCPSocket.freeLoopbackPort() }

    /// Waits (polling) until `condition` holds or `timeout` passes.
    static func until(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    static func run() async {
        guard let comfyq else {
            print("supervision: skipped: build the comfyq product beside comfyq-bench (swift build -c release)")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("comfyq-bench-supervision-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // 1. Crash → the next prompt running again.
        var recoveries: [String] = []
        for round in 0..<3 {
            let port = freePort()
            var options = RunnerOptions(definitions: [definition(comfyq, port: port, output: directory.appendingPathComponent("crash-\(round)").path)])
            options.stateFolder = directory.appendingPathComponent("state-crash-\(round)").path
            options.concurrency = 2
            let runner = try! Runner(queuePath: benchQueue(directory, count: 40, name: "crash-\(round)"), options: options)
            let timeline = Timeline()
            let watcher = Task { for await event in runner.events { timeline.add(event) } }
            let run = Task { await runner.run() }
            _ = await until(30) { timeline.completed() >= 5 }
            let pidText = (try? String(contentsOfFile: options.stateFolder + "/servers/bench.pid", encoding: .utf8)) ?? ""
            let pid = pid_t(pidText.split(separator: " ").first ?? "") ?? 0
            let killedAt = timeline.now
            kill(pid, SIGKILL)
            _ = await run.value
            _ = await watcher.value
            // Its start time: from being started again to answering.
            let launched = timeline.first(after: killedAt) { event in
                if case .server(let report) = event { return report.state == .starting }
                return false
            }
            let answered = timeline.first(after: killedAt) { event in
                if case .server(let report) = event { return report.state == .up }
                return false
            }
            let started = launched.flatMap { from in answered.map { $0 - from } }
            let running = timeline.first(after: killedAt) { event in
                if case .transition(_, _, let update) = event { return update.snapshot.phase == .setup || update.snapshot.phase == .sampling }
                return false
            }
            if let running, let started {
                recoveries.append("\(format(running - killedAt, 2)) s (start \(format(started, 2)) s)")
            } else {
                recoveries.append("no recovery seen")
            }
        }
        print("supervision: kill -9 of a supervised comfyq simulate → the next prompt running again: \(recoveries.joined(separator: ", "))  [target ≤ its start time + 2 s; the restart waits a 1 s backoff]")

        // 2. A hung server (answers nothing, sockets open) → down.
        var detections: [String] = []
        let downAfter = 5.0
        for round in 0..<2 {
            let port = freePort()
            var options = RunnerOptions(
                definitions: [definition(comfyq, port: port, output: directory.appendingPathComponent("hang-\(round)").path, downAfter: downAfter)])
            options.stateFolder = directory.appendingPathComponent("state-hang-\(round)").path
            let runner = try! Runner(queuePath: benchQueue(directory, count: 20, name: "hang-\(round)"), options: options)
            let timeline = Timeline()
            let watcher = Task { for await event in runner.events { timeline.add(event) } }
            let run = Task { await runner.run() }
            _ = await until(30) { timeline.completed() >= 3 }
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/sim/hang")!)
            request.httpMethod = "POST"
            _ = try? await URLSession(configuration: .ephemeral).data(for: request)
            let hungAt = timeline.now
            _ = await run.value
            _ = await watcher.value
            let down = timeline.first(after: hungAt) { event in
                if case .server(let report) = event { return report.state == .down }
                return false
            }
            detections.append(down.map { "\(format($0 - hungAt, 2)) s" } ?? "not detected")
        }
        print("supervision: a hung server (down_after \(Int(downAfter)) s) detected down after \(detections.joined(separator: ", "))  [target ≤ down_after + 2 s]")

        // 3. What supervision costs a healthy night: the same comfyq simulate, watched or supervised.
        let prompts = 1_000
        var watched: [Double] = []
        var supervised: [Double] = []
        for round in 0..<5 {
            for mode in ["watched", "supervised"] {
                let port = freePort()
                let output = directory.appendingPathComponent("cost-\(mode)-\(round)").path
                var server = definition(comfyq, port: port, output: output, stepTime: "0")
                var child: Process?
                if mode == "watched" {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: comfyq)
                    process.arguments = Array(server.launch!.argv.dropFirst())
                    process.standardOutput = FileHandle.nullDevice
                    process.standardError = FileHandle.nullDevice
                    try! process.run()
                    child = process
                    server.launch = nil
                    let api = ComfyAPI(baseURL: URL(string: server.url)!, timeout: 1)
                    for _ in 0..<200 {
                        if (try? await api.systemStats()) != nil { break }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
                var options = RunnerOptions(definitions: [server])
                options.stateFolder = directory.appendingPathComponent("state-cost-\(mode)-\(round)").path
                options.concurrency = 4
                let runner = try! Runner(queuePath: benchQueue(directory, count: prompts, name: "cost-\(mode)-\(round)"), options: options)
                let timeline = Timeline()
                let watcher = Task { for await event in runner.events { timeline.add(event) } }
                let summary = await runner.run()
                _ = await watcher.value
                // From the first submission to the last completion: a supervised run also starts its server.
                let first = timeline.all.first { if case .submitted = $0.1 { true } else { false } }?.0 ?? 0
                let last = timeline.all.last { if case .completed = $0.1 { true } else { false } }?.0 ?? 1
                let rate = Double(summary.done) / max(1e-9, last - first)
                if mode == "watched" { watched.append(rate) } else { supervised.append(rate) }
                if let child {
                    child.interrupt()
                    child.waitUntilExit()
                }
            }
        }

        let ratio = median(supervised) / max(1e-9, median(watched))
        print(
            "supervision: \(prompts) prompts, zero simulated time, concurrency 4, one comfyq simulate: watched \(watched.map { format($0, 0) }.joined(separator: "/")) prompts/s, supervised \(supervised.map { format($0, 0) }.joined(separator: "/")) prompts/s, median supervised/watched \(format(ratio, 3))  [target within 2 %]"
        )
    }
}
