import Foundation
import QueueStore
import Runner
import Synchronization

/// Keeps each job's report (`index.html` in its output folder) up to date while `comfyq run`
/// goes: a job whose items finished is rewritten at most once per `interval`, off the runner,
/// from the queue. At the end every job written gets its last page and its contact sheet
/// (`contact-sheet.png` beside it), which `on_batch_done` receives.
final class ReportWriter: JobReports {
    private struct State {
        var due: Set<String> = []
        /// Job name → its page, for each job written in this run.
        var written: [String: String] = [:]
        var warnings: [String: String] = [:]
        var loop: Task<Void, Never>?
        var finished: [JobReport]?
    }

    private let databasePath: String
    private let state = Mutex(State())

    init(databasePath: String, interval: Duration = .seconds(1)) {
        self.databasePath = databasePath
        let loop = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)  // cancelled: the loop ends and `finish` writes the rest
                self?.writeDue()
            }
        }
        state.withLock { $0.loop = loop }
    }

    func itemFinished(job: String) {
        state.withLock { _ = $0.due.insert(job) }
    }

    /// What could not be written, one line per job (the last problem each had).
    var warnings: [String] { state.withLock { $0.warnings.sorted { $0.key < $1.key }.map { "report of \($0.key) not written: \($0.value)" } } }

    /// What `finish` wrote, once it has run.
    var reports: [JobReport]? { state.withLock { $0.finished } }

    func finish() async -> [JobReport] {
        if let done = reports { return done }
        let loop = state.withLock { state -> Task<Void, Never>? in
            defer { state.loop = nil }
            return state.loop
        }
        loop?.cancel()
        await loop?.value
        writeDue()
        let written = state.withLock { $0.written }
        var reports: [JobReport] = []
        for (name, page) in written.sorted(by: { $0.key < $1.key }) {
            var sheet: String? = (page as NSString).deletingLastPathComponent + "/contact-sheet.png"  // beside the page
            do {
                let queue = try Queue(path: databasePath)
                guard let job = try Self.job(named: name, in: queue) else { continue }
                try ReportCommand.writeContactSheet(job, queue: queue, to: sheet!)
            } catch {
                state.withLock { $0.warnings[name] = "contact sheet: \(error)" }
                sheet = nil
            }
            reports.append(JobReport(job: name, page: page, contactSheet: sheet))
        }
        state.withLock { $0.finished = reports }
        return reports
    }

    /// Rewrites the pages of the jobs that had items finish since the last time.
    private func writeDue() {
        let due = state.withLock { state -> Set<String> in
            defer { state.due = [] }
            return state.due
        }
        guard !due.isEmpty else { return }
        let queue: Queue
        do { queue = try Queue(path: databasePath) } catch {
            state.withLock { state in
                for name in due { state.warnings[name] = "\(error)" }
                state.due.formUnion(due)  // tried again next time
            }
            return
        }
        for name in due.sorted() {
            do {
                guard let job = try Self.job(named: name, in: queue) else { continue }
                let page = try ReportCommand.write(job, queue: queue, folder: nil)
                state.withLock {
                    $0.written[name] = page
                    $0.warnings[name] = nil
                }
            } catch {
                state.withLock { $0.warnings[name] = "\(error)" }
            }
        }
    }

    static func job(named name: String, in queue: Queue) throws -> JobSummary? {
        try queue.jobs().filter { $0.name == name }.max { $0.id < $1.id }
    }
}
