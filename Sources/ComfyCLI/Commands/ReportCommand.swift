import ComfyCore
import Foundation
import InputFiles
import QueueStore
import Serve

/// `comfyq report JOB [-o DIR] [--png FILE]`
enum ReportCommand {
    static let spec = CommandSpec(
        name: "report",
        abstract: "Write a job's page (its grid and every item) as one HTML file to share or archive.",
        discussion: """
            The page opens without a server (file://): images and thumbnails are linked relative to
            it. DIR defaults to the job's output folder; the file is DIR/index.html (a job of more
            than 1,000 items is paged: index-2.html, index-3.html… for each further 1,000). --png
            FILE writes the grid as a contact-sheet picture instead (thumbnails and axis values),
            to attach to a message: one per 1,000 items, FILE then FILE-2.png…, none wider than
            40 pictures or taller than 16,384 pixels.
            """,
        arguments: [ArgumentSpec("job", help: "A job name or #id.", completion: .jobs)],
        options: [
            .value("output", short: "o", name: "dir", help: "Where to write index.html (default: the job's output folder)."),
            .value("png", name: "file", help: "Write the grid as a contact-sheet PNG to FILE instead of the page."),
            JobFiles.dbOption,
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let queue = try JobFiles.openQueue(arguments, console)
        let reference = arguments.positionals[0]
        guard case .job(let jobID) = try QueueEditCommands.resolve(queue, reference), let job = try queue.jobs().first(where: { $0.id == jobID }) else {
            throw CommandFailure("\(reference): give a job, not an item")
        }
        if let png = arguments.value("png") {
            for path in try writeContactSheets(job, queue: queue, to: png) { console.print("wrote \(path)") }
            return .success
        }
        let target = try write(job, queue: queue, folder: arguments.value("output"))
        console.print("wrote \(target)")
        return .success
    }

    /// Writes the job's report into `folder` (default: where its outputs are): `index.html`, and
    /// for a job of more than one page `index-2.html`… (`ReportPages`); only `pages` when given.
    /// Each page is read from the queue on its own: memory is one page's, whatever the job's size.
    /// Returns the path of `index.html`.
    static func write(_ job: JobSummary, queue: Queue, folder given: String?, pages: Set<Int>? = nil) throws -> String {
        let settings = try settings(job, queue: queue)
        let folder = given ?? settings.output.folder
        let base = URL(fileURLWithPath: folder).standardizedFileURL
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        for page in 1...ReportPages.count(job) where pages?.contains(page) ?? true {
            let range = ReportPages.range(page)
            let details = try queue.details(jobID: job.id, indices: range)
            let items = try queue.items(jobID: job.id, indices: range).map { row in
                (row: row, parameters: ServeApp.parameters(row), outputs: details[row.index]?.outputs ?? [], timings: details[row.index]?.timings)
            }
            let html = ServePages.report(job: job, items: items, matrixAxes: settings.matrixAxes, page: page) { path in Self.relative(path, from: base) }
            let target = base.appendingPathComponent(ReportPages.fileName(page))
            do { try Data(html.utf8).write(to: target, options: .atomic) } catch {
                throw CommandFailure("\(target.path): cannot write it: \(error.localizedDescription)")
            }
        }
        return base.appendingPathComponent("index.html").path
    }

    /// The job's settings as stored when it was added (its output folder, its matrix axes).
    static func settings(_ job: JobSummary, queue: Queue) throws -> JobSettings {
        do { return try queue.settings(of: job) } catch let error as UnreadableSettings { throw CommandFailure(error.description) }
    }

    /// `path` as a link from a page in `base` (`../out/x.png`), each segment percent-encoded.
    static func relative(_ path: String, from base: URL) -> String {
        let target = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
        let from = base.pathComponents
        var common = 0
        while common < min(target.count, from.count) && target[common] == from[common] { common += 1 }
        let up = Array(repeating: "..", count: from.count - common)
        return (up + target[common...].map(ServePages.segment)).joined(separator: "/")
    }

    /// The grid of the job's items on report page `page` as a contact sheet: each cell its first
    /// output's thumbnail (the output itself when it has none and is a PNG), or its state, read
    /// from disk when its band is drawn.
    static func contactSheet(_ job: JobSummary, queue: Queue, page: Int = 1, matrixAxes: [String]) throws -> ContactSheet {
        let range = ReportPages.range(page)
        let rows = try queue.items(jobID: job.id, indices: range)
        let byIndex = Dictionary(rows.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        let outputs = try queue.outputs(jobID: job.id, indices: range)
        let grid = JobGrid(items: rows.map { JobGrid.Item(index: $0.index, parameters: ServeApp.parameters($0)) }, matrixAxes: matrixAxes)
        var title = "\(job.name): \(job.counts[.done] ?? 0) of \(job.total) done" + ((job.counts[.failed] ?? 0) > 0 ? ", \(job.counts[.failed]!) failed" : "")
        if ReportPages.count(job) > 1 { title += "; items \(range.lowerBound)-\(min(range.upperBound, job.total) - 1)" }
        // The bitmap font is ASCII: the rows' separator becomes a slash.
        let rowLabels = grid.rows.map { $0.replacingOccurrences(of: " · ", with: " / ") }
        var caption = grid.across.map { "across: \($0)" } ?? ""
        if !grid.down.isEmpty { caption += "; down: " + grid.down.joined(separator: " / ") }
        let cells = grid.cells
        return ContactSheet(title: title, caption: caption, columns: grid.columns, rows: rowLabels) { row, column in
            guard let index = cells[row][column].first, let item = byIndex[index] else { return .text("") }
            if let output = outputs[index]?.first {
                for path in [Thumbnail.path(for: output), output] {
                    // A thumbnail that cannot be read shows the output, or the item's state.
                    if let data = FileManager.default.contents(atPath: path), let image = try? PNGImage(decoding: [UInt8](data)) { return .image(image) }
                }
            }
            return .text(item.state == .running || item.state == .submitting ? item.phase ?? "running" : item.state.rawValue)
        }
    }

    /// Writes the job's contact sheets, one set per report page (see `ContactSheet.write`): the
    /// first to `path`, the others beside it (`NAME-2.png`…). Returns their paths.
    static func writeContactSheets(_ job: JobSummary, queue: Queue, to path: String) throws -> [String] {
        let axes = try settings(job, queue: queue).matrixAxes
        var written: [String] = []
        do {
            for page in 1...ReportPages.count(job) {
                written += try contactSheet(job, queue: queue, page: page, matrixAxes: axes).write(to: path, startingAt: written.count + 1)
            }
        } catch let error as PNGStreamWriter.WriteError {
            throw CommandFailure(error.description)
        }
        return written
    }
}
