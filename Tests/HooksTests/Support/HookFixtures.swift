import ComfyCore
import Foundation
import TestSupport
import Hooks
import Synchronization

/// Collects what scripts log, from their threads.
final class LogCollector: Sendable {
    private let lines = Mutex<[HookLogLine]>([])
    private let traces = Mutex<[String]>([])

    func environment(variables: [String: String] = ProcessInfo.processInfo.environment) -> HookEnvironment {
        var environment = HookEnvironment(variables: variables) { line in self.lines.withLock { $0.append(line) } }
        environment.trace = { _, call in self.traces.withLock { $0.append(call) } }
        return environment
    }

    var all: [HookLogLine] { lines.withLock { $0 } }
    var messages: [String] { all.map(\.message) }
    var calls: [String] { traces.withLock { $0 } }
}

/// A script written to a temporary file.
func scriptFile(_ source: String, name: String = "hook.lua") throws -> String {
    let folder = TestFolder.root.appendingPathComponent("comfyq-hooks-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let path = folder.appendingPathComponent(name).path
    try source.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func loadScript(
    _ source: String, name: String = "hook.lua", settings: HookScript.Settings = HookScript.Settings(), options: JSONObject = JSONObject(),
    log: LogCollector
) async throws -> HookScript {
    try await HookScript.load(path: try scriptFile(source, name: name), options: options, settings: settings, environment: log.environment())
}

func phaseEvent(_ item: Int, job: String = "j", promptID: String? = nil, phase: Phase = .sampling) -> HookEvent {
    let prompt = HookPrompt(job: job, item: item, promptID: promptID ?? "p\(item)", server: "http://s", params: ["KSampler.seed": .int(item)], attempt: 1)
    return .prompt(.phase, prompt, snapshot: ProgressSnapshot(promptID: prompt.promptID, phase: phase), previous: .setup, elapsed: 1)
}

func progressEvent(_ item: Int, step: Int, promptID: String? = nil) -> HookEvent {
    let prompt = HookPrompt(job: "j", item: item, promptID: promptID ?? "p\(item)", server: "http://s", params: [:], attempt: 1)
    return .prompt(.progress, prompt, snapshot: ProgressSnapshot(promptID: prompt.promptID, phase: .sampling, step: step, steps: 100), elapsed: 1)
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let duration = ContinuousClock.now - start
    return duration.seconds
}
