import Foundation
import QueueStore
import Serve
import Runner
import Synchronization

/// Keeps each job's report (`index.html` in its output folder) up to date while `comfyq run`
/// goes, off the runner, from the queue, at most once per `interval`: the first time a job is
/// written in the run, all its pages; then its first page (how the job stands) and the pages
/// whose items finished since, so what a run rewrites costs what changed, not the job's size.
/// At the end every job written gets its contact sheets (`contact-sheet.png` beside the page,
/// then `contact-sheet-2.png`… for a large job), which `on_batch_done` receives.
final class ReportWriter: JobReports {
    private struct State {
        /// Job name → the pages whose items finished since they were last written.
        var due: [String: Set<Int>] = [:]
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

    func itemFinished(job: String, index: Int) {
        state.withLock { _ = $0.due[job, default: []].insert(ReportPages.page(of: index)) }
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
            let sheet = (page as NSString).deletingLastPathComponent + "/contact-sheet.png"  // beside the page
            var sheets: [String] = []
            do {
                let queue = try Queue(path: databasePath)
                guard let job = try Self.job(named: name, in: queue) else { continue }
                sheets = try ReportCommand.writeContactSheets(job, queue: queue, to: sheet)
            } catch {
                state.withLock { $0.warnings[name] = "contact sheet: \(error)" }
            }
            reports.append(JobReport(job: name, page: page, contactSheets: sheets))
        }
        state.withLock { $0.finished = reports }
        return reports
    }

    /// Rewrites the pages of the jobs that had items finish since the last time.
    private func writeDue() {
        let (due, written) = state.withLock { state -> ([String: Set<Int>], Set<String>) in
            defer { state.due = [:] }
            return (state.due, Set(state.written.keys))
        }
        guard !due.isEmpty else { return }
        let queue: Queue
        do { queue = try Queue(path: databasePath) } catch {
            state.withLock { state in
                for (name, pages) in due {
                    state.warnings[name] = "\(error)"
                    state.due[name, default: []].formUnion(pages)  // tried again next time
                }
            }
            return
        }
        for (name, pages) in due.sorted(by: { $0.key < $1.key }) {
            do {
                guard let job = try Self.job(named: name, in: queue) else { continue }
                // New to this run: every page; then the first (the job's counts) and those that changed.
                let page = try ReportCommand.write(job, queue: queue, folder: nil, pages: written.contains(name) ? pages.union([1]) : nil)
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
