import ComfyCore
import Foundation

/// Realistic events for `comfyq hook test`: a two-item batch on one server where the first item
/// runs through every phase (with sampler steps) and completes, and the second fails with an
/// out-of-memory error in VAEDecode and will not be retried.
public enum HookSamples {
    static let server = "http://127.0.0.1:8188"

    /// Sample files for the events to name: the first item's thumbnail and the job's contact
    /// sheet, so scripts that attach pictures send real ones.
    public struct Pictures: Sendable {
        public var thumbnail: String
        public var contactSheet: String
        public var page: String
        public init(thumbnail: String, contactSheet: String, page: String) {
            self.thumbnail = thumbnail
            self.contactSheet = contactSheet
            self.page = page
        }
    }

    public static func events(pictures: Pictures? = nil) -> [HookEvent] {
        var events: [HookEvent] = []
        events.append(.batch(.batchStart, ["pending": 2, "servers": [.string(server)], "concurrency": 2, "watch": false, "started_at": .double(Date().timeIntervalSince1970)]))
        let first = HookPrompt(
            job: "sample", item: 0, promptID: "7d4f0b9e-3c2a-4c56-9a53-2b8e1f0a6c11", server: server,
            params: ["KSampler.seed": 1001, "Positive prompt.text": "a lighthouse at dusk, film grain"], attempt: 1)
        events.append(.prompt(.submit, first, elapsed: 0))
        var snapshot = ProgressSnapshot(
            promptID: first.promptID, phase: .setup, node: NodeRef(id: "4", classType: "CheckpointLoaderSimple", title: "Load Checkpoint"),
            sampler: 0, samplers: 1, step: 0, steps: 0, fraction: 0.02, outcome: nil, queuedAt: 0, startedAt: 0.4, phaseSince: 0.4)
        var timings: [String: Double] = ["queued": 0.4]
        events.append(.prompt(.phase, first, snapshot: snapshot, previous: .queued, elapsed: 0.4, timings: timings))
        snapshot.phase = .sampling
        snapshot.node = NodeRef(id: "3", classType: "KSampler", title: "KSampler")
        snapshot.sampler = 1
        snapshot.steps = 20
        timings["setup"] = 2.1
        events.append(.prompt(.phase, first, snapshot: snapshot, previous: .setup, elapsed: 2.5, timings: timings))
        for step in [1, 5, 10, 15, 20] {
            snapshot.step = step
            snapshot.fraction = 0.1 + 0.8 * Double(step) / 20
            events.append(.prompt(.progress, first, snapshot: snapshot, elapsed: 2.5 + 0.15 * Double(step)))
        }
        snapshot.phase = .decoding
        snapshot.node = NodeRef(id: "8", classType: "VAEDecode", title: "VAE Decode")
        timings["sampling"] = 3.0
        events.append(.prompt(.phase, first, snapshot: snapshot, previous: .sampling, elapsed: 5.5, timings: timings))
        snapshot.phase = .saving
        snapshot.fraction = 0.95
        snapshot.node = NodeRef(id: "9", classType: "SaveImage", title: "Save Image")
        timings["decoding"] = 0.3
        events.append(.prompt(.phase, first, snapshot: snapshot, previous: .decoding, elapsed: 5.8, timings: timings))
        snapshot.phase = .done
        snapshot.fraction = 1
        snapshot.outcome = .success
        timings["saving"] = 0.2
        events.append(.prompt(.phase, first, snapshot: snapshot, previous: .saving, elapsed: 6.0, timings: timings))
        events.append(
            .prompt(
                .complete, first, snapshot: snapshot, elapsed: 6.1, outputs: ["outputs/sample/sample_0.png"],
                thumbnails: [pictures?.thumbnail ?? "outputs/sample/.thumbs/sample_0.png"], timings: timings))

        let second = HookPrompt(
            job: "sample", item: 1, promptID: "0b0e5a61-96b4-4f1c-8d7e-5f2d0c9a7e42", server: server,
            params: ["KSampler.seed": 1002, "Positive prompt.text": "a lighthouse at dawn, film grain"], attempt: 3)
        events.append(.prompt(.submit, second, elapsed: 0))
        let failure = ExecutionFailure(nodeID: "8", classType: "VAEDecode", exceptionType: "torch.OutOfMemoryError", message: "CUDA out of memory. Tried to allocate 2.00 GiB")
        var failed = snapshot
        failed.promptID = second.promptID
        failed.phase = .failed
        failed.node = NodeRef(id: "8", classType: "VAEDecode", title: "VAE Decode")
        failed.fraction = 0.9
        failed.outcome = .failed(failure)
        events.append(.prompt(.phase, second, snapshot: failed, previous: .decoding, elapsed: 5.9))
        events.append(.prompt(.error, second, snapshot: failed, elapsed: 5.9, failure: HookFailure(failure), willRetry: false))
        events.append(
            .batch(
                .batchDone,
                [
                    "done": 1, "failed": 1, "retried": 2, "skipped": 0, "held": 0, "held_jobs": [], "elapsed": 19.4, "servers": [.string(server)],
                    "failures": [["job": "sample", "item": 1, "prompt_id": .string(second.promptID), "error": .string(failure.description)]],
                    "finished_at": .double(Date().timeIntervalSince1970),
                    "reports": [
                        [
                            "job": "sample", "page": .string(pictures?.page ?? "outputs/sample/index.html"),
                            "contact_sheet": .string(pictures?.contactSheet ?? "outputs/sample/contact-sheet.png"),
                            "contact_sheets": [.string(pictures?.contactSheet ?? "outputs/sample/contact-sheet.png")],
                        ]
                    ],
                ]))
        events.append(.batch(.idle, ["done": 1, "failed": 1, "retried": 2, "skipped": 0, "held": 0, "held_jobs": [], "elapsed": 19.4]))
        let log = ["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory.", "==== comfyq: the process was killed by signal 9"]
        events.append(
            .server(
                name: "local/0", url: "http://127.0.0.1:8190", state: "down", previousState: "up", reason: "its process was killed by signal 9",
                restarts: 0, downFor: nil, logTail: log))
        events.append(
            .server(
                name: "local/0", url: "http://127.0.0.1:8190", state: "restarting", previousState: "down", reason: "its process was killed by signal 9",
                restarts: 1, downFor: nil, logTail: log))
        events.append(
            .server(
                name: "local/0", url: "http://127.0.0.1:8190", state: "up", previousState: "starting", reason: "started in 12.8 s", restarts: 1,
                downFor: 14.2, logTail: nil))
        events.append(
            .server(
                name: "local/0", url: "http://127.0.0.1:8190", state: "given up", previousState: "down",
                reason: "restarted 5 times within an hour; last: its process exited with status 1", restarts: 5, downFor: nil, logTail: log))
        let reason = "outputs/sample/sample_7.png: no space left: The operation couldn’t be completed. No space left on device"
        events.append(
            .batch(.pause, ["reason": .string(reason), "folder": "outputs/sample", "needed_bytes": 1_048_576, "free_bytes": 4096, "in_flight": 2]))
        events.append(.batch(.resume, ["reason": .string(reason), "folder": "outputs/sample", "paused_for": 95.2]))
        return events
    }
}

/// Fires sample events at one script, in order, and reports what each call did.
public enum HookTester {
    public struct Report: Sendable {
        public var calls = 0
        public var failures = 0
    }

    /// Runs `script` through the sample events (only `only` when given); `say` gets each line.
    public static func run(
        _ script: HookScript, only: HookEventKind? = nil, pictures: HookSamples.Pictures? = nil, say: @escaping @Sendable (String) -> Void
    ) async -> Report {
        var report = Report()
        let events = HookSamples.events(pictures: pictures).filter { only == nil || $0.kind == only }
        for event in events {
            guard script.handles(event.kind) else { continue }
            say("→ \(event.kind.function)(\(describe(event)))")
            let before = script.stats.failures
            let start = ContinuousClock.now
            if event.kind == .submit {
                let answer = await script.submit(event) { _ in nil }
                let elapsed = ContinuousClock.now - start
                switch answer {
                case .unchanged: say("  returned: no change (\(milliseconds(elapsed)))")
                case .skip: say("  returned false: the item would be skipped (\(milliseconds(elapsed)))")
                case .overrides(let values): say("  returned overrides \(JSONValue.object(values).serialized()) (\(milliseconds(elapsed)))")
                }
            } else {
                script.deliver(event)
                await script.flush()
                let failed = script.stats.failures > before
                say("  \(failed ? "failed" : "ok") (\(milliseconds(ContinuousClock.now - start)))")
            }
            report.calls += 1
            report.failures += script.stats.failures - before
        }
        if report.calls == 0 {
            let wanted = only.map { [$0.function] } ?? HookEventKind.allCases.map(\.function)
            say("\(script.name) defines none of: \(wanted.joined(separator: ", "))")
        }
        return report
    }

    static func describe(_ event: HookEvent) -> String {
        let table = event.table
        switch event.kind {
        case .batchStart: return "pending \(table["pending"]?.serialized() ?? "?")"
        case .batchDone, .idle: return "done \(table["done"]?.serialized() ?? "?"), failed \(table["failed"]?.serialized() ?? "?")"
        case .pause: return "\(table["folder"]?.stringValue ?? "?"): \(table["reason"]?.stringValue ?? "")"
        case .resume: return "after \(table["paused_for"]?.serialized() ?? "?") s"
        case .server:
            return "\(table["server"]?.stringValue ?? "?") \(table["previous_state"]?.stringValue ?? "?") → \(table["state"]?.stringValue ?? "?"): \(table["reason"]?.stringValue ?? "")"
        default:
            var text = "\(table["job"]?.stringValue ?? "?")/\(table["item"]?.serialized() ?? "?")"
            if let phase = table["phase"]?.stringValue { text += " \(phase)" }
            if event.kind == .progress, let step = table["step"], let steps = table["steps"] { text += " step \(step.serialized())/\(steps.serialized())" }
            if let message = table["error"]?["message"]?.stringValue { text += ": \(message)" }
            return text
        }
    }

    static func milliseconds(_ duration: Duration) -> String { String(format: "%.1f ms", duration.seconds * 1000) }
}
