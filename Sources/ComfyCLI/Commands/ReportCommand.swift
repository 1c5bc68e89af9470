import ComfyCore
import Foundation
import InputFiles
import QueueStore

/// `comfyq report JOB [-o DIR] [--png FILE]`
enum ReportCommand {
    static let spec = CommandSpec(
        name: "report",
        abstract: "Write a job's page (its grid and every item) as one HTML file to share or archive.",
        discussion: """
            The page opens without a server (file://): images and thumbnails are linked relative to
            it. DIR defaults to the job's output folder; the file is DIR/index.html. --png FILE
            writes the grid as one contact-sheet picture instead (thumbnails and axis values), to
            attach to a message.
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
            try writeContactSheet(job, queue: queue, to: png)
            console.print("wrote \(png)")
            return .success
        }
        let target = try write(job, queue: queue, folder: arguments.value("output"))
        console.print("wrote \(target)")
        return .success
    }

    /// Writes `index.html` for the job into `folder` (default: where its outputs are); returns its path.
    static func write(_ job: JobSummary, queue: Queue, folder given: String?) throws -> String {
        var items: [(row: ItemRow, parameters: JSONObject, outputs: [String], timings: JSONValue?)] = []
        for row in try queue.items(jobID: job.id) {
            let found = try queue.item(jobID: job.id, index: row.index)
            items.append((row, ServeApp.parameters(row), found?.outputs ?? [], found?.timings))
        }
        let settings = try settings(job, queue: queue)
        let folder = given ?? settings.output.folder
        let base = URL(fileURLWithPath: folder).standardizedFileURL
        let html = ServePages.report(job: job, items: items, matrixAxes: settings.matrixAxes) { path in Self.relative(path, from: base) }
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let target = base.appendingPathComponent("index.html")
        do { try Data(html.utf8).write(to: target, options: .atomic) } catch {
            throw CommandFailure("\(target.path): cannot write it: \(error.localizedDescription)")
        }
        return target.path
    }

    /// The job's settings as stored when it was added (its output folder, its matrix axes).
    static func settings(_ job: JobSummary, queue: Queue) throws -> JobSettings {
        guard let stored = try queue.definition(jobID: job.id) else { throw CommandFailure("no job #\(job.id)") }
        do {
            return try JobSettings(json: JSONValue(parsing: stored.spec))
        } catch {
            throw CommandFailure("\(job.name): its stored settings cannot be read (\(error))")
        }
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

    /// The job's grid as one picture: each cell its first output's thumbnail (the output itself
    /// when it has none and is a PNG), or its state.
    static func contactSheet(_ job: JobSummary, queue: Queue) throws -> PNGImage {
        let rows = try queue.items(jobID: job.id)
        let byIndex = Dictionary(rows.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        let outputs = try queue.outputs(jobID: job.id)
        let grid = JobGrid(items: rows.map { JobGrid.Item(index: $0.index, parameters: ServeApp.parameters($0)) }, matrixAxes: try settings(job, queue: queue).matrixAxes)
        let cells = grid.cells.map { row in
            row.map { indexes -> ContactSheet.Cell in
                guard let index = indexes.first, let item = byIndex[index] else { return .text("") }
                if let output = outputs[index]?.first {
                    let thumbnail = Thumbnail.path(for: output)
                    for path in [thumbnail, output] {
                        if let data = FileManager.default.contents(atPath: path), let image = try? PNGImage(decoding: [UInt8](data)) { return .image(image) }
                    }
                }
                return .text(item.state == .running || item.state == .submitting ? item.phase ?? "running" : item.state.rawValue)
            }
        }
        let title = "\(job.name): \(job.counts[.done] ?? 0) of \(job.total) done" + ((job.counts[.failed] ?? 0) > 0 ? ", \(job.counts[.failed]!) failed" : "")
        // The bitmap font is ASCII: the rows' separator becomes a slash.
        let rowLabels = grid.rows.map { $0.replacingOccurrences(of: " · ", with: " / ") }
        var caption = grid.across.map { "across: \($0)" } ?? ""
        if !grid.down.isEmpty { caption += "; down: " + grid.down.joined(separator: " / ") }
        return ContactSheet(title: title, caption: caption, columns: grid.columns, rows: rowLabels, cells: cells).render()
    }

    static func writeContactSheet(_ job: JobSummary, queue: Queue, to path: String) throws {
        let png = try contactSheet(job, queue: queue).encoded(level: 6)
        do { try Data(png).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CommandFailure("\(path): cannot write it: \(error.localizedDescription)")
        }
    }
}
