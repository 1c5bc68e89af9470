import ComfyCore
import Foundation
import QueueStore

/// `comfyq report JOB [-o DIR]`
enum ReportCommand {
    static let spec = CommandSpec(
        name: "report",
        abstract: "Write a job's page (its grid and every item) as one HTML file to share or archive.",
        discussion: """
            The page opens without a server (file://): images and thumbnails are linked relative to
            it. DIR defaults to the job's output folder; the file is DIR/index.html.
            """,
        arguments: [ArgumentSpec("job", help: "A job name or #id.")],
        options: [.value("output", short: "o", name: "dir", help: "Where to write index.html (default: the job's output folder)."), JobFiles.dbOption],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let queue = try JobFiles.openQueue(arguments, console)
        let reference = arguments.positionals[0]
        guard case .job(let jobID) = try QueueEditCommands.resolve(queue, reference), let job = try queue.jobs().first(where: { $0.id == jobID }) else {
            throw CommandFailure("\(reference): give a job, not an item")
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
        let folder: String
        if let given {
            folder = given
        } else if let first = items.lazy.compactMap(\.outputs.first).first {
            folder = (first as NSString).deletingLastPathComponent
        } else {
            throw CommandFailure("\(job.name) has no outputs yet: give -o DIR to write the report somewhere")
        }
        let base = URL(fileURLWithPath: folder).standardizedFileURL
        let html = ServePages.report(job: job, items: items) { path in Self.relative(path, from: base) }
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let target = base.appendingPathComponent("index.html")
        do { try Data(html.utf8).write(to: target, options: .atomic) } catch {
            throw CommandFailure("\(target.path): cannot write it: \(error.localizedDescription)")
        }
        return target.path
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
}
