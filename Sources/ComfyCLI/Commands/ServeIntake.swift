import ComfyCore
import Foundation
import QueueStore
import Serve

/// How `comfyq serve` queues jobs: with the command line's loading and checks, as `comfyq add`
/// (the servers to pre-flight against are serve's `--server`, else the servers file's).
package struct CommandLineIntake: JobIntake {
    let arguments: ParsedArguments
    let console: Console

    package init(arguments: ParsedArguments, console: Console) {
        self.arguments = arguments
        self.console = console
    }

    package func addFollowUp(file: String, from job: String, queue: Queue) throws -> [(name: String, items: Int)] {
        var sweeps = JobSources()
        sweeps.from = (job, true, nil)
        try sweeps.resolveFollowUp(queue)
        let specs = try JobFiles.load([file], sweeps: sweeps)
        var added: [(name: String, items: Int)] = []
        for spec in specs {
            let items = spec.expand(random: JobFiles.random)
            _ = try queue.add(try JobFiles.withHookSources(spec), items: items, now: JobFiles.now)
            added.append((spec.name, items.count))
        }
        return added
    }

    /// The job is written as a file first (`STATE/comfyq/from-comfyui/NAME-TIME.json`), so it
    /// is read exactly as `comfyq add` reads one, its outputs go beside it unless it says where,
    /// and the user can add it again by hand.
    package func addJob(_ document: JSONObject, databasePath: String) async throws -> AddedJob {
        var fields = document
        let page = fields["page_workflow"]
        fields["page_workflow"] = nil
        if let page, page.objectValue == nil { throw JobRefused(problems: ["page_workflow: must be the page's workflow (an object), not \(page.kindName)"]) }
        guard fields["workflow"]?.objectValue != nil else {
            throw JobRefused(problems: ["workflow: required: the workflow itself, in the API format (the page's app.graphToPrompt().output)"])
        }
        let name = fields["name"]?.stringValue ?? "comfyui"
        let folder = UserFolders.state(environment: console.environment, home: console.home) + "/from-comfyui"
        let safe = String(name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" }.prefix(60))
        let stamp = String(format: "%.0f", JobFiles.now * 1000)
        let path = "\(folder)/\(safe.isEmpty ? "job" : safe)-\(stamp).json"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(JSONValue.object(fields).serialized(pretty: true).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw JobRefused(problems: ["cannot write the job to \(path): \(error.localizedDescription)"])
        }
        let checked: (jobs: [(JobSpec, [JobItem])], lines: [String])
        do {
            checked = try await AddCommand.checkedJobs([path], sweeps: JobSources(), arguments: arguments, command: ServeCommand.spec, console: console)
        } catch {
            try? FileManager.default.removeItem(atPath: path)  // a job refused leaves nothing behind (and if it does, nothing reads it)
            switch error {
            case let error as InvalidJobFiles: throw JobRefused(problems: error.error.problems.map(Self.line))
            case let error as PreflightProblems: throw JobRefused(problems: error.problems.problems.map(Self.line))
            default: throw error
            }
        }
        guard let (spec, items) = checked.jobs.first else { throw JobRefused(problems: ["the job has no items"]) }
        var stored = try JobFiles.withHookSources(spec)
        stored.pageWorkflow = page
        let queue = try Queue(path: databasePath)
        _ = try queue.add(stored, items: items, now: JobFiles.now)
        return AddedJob(name: spec.name, items: items.count, notes: checked.lines + (spec.uiWorkflow?.notes ?? []) + spec.notes)
    }

    /// A problem without the file's name (the page did not write a file).
    static func line(_ problem: JobProblem) -> String {
        problem.location.isEmpty ? problem.reason : "\(problem.location): \(problem.reason)"
    }
}
