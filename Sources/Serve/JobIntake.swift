import ComfyCore
import QueueStore

/// What `serve` leaves to the command line: turning job files and documents into queued jobs
/// with the same loading, validation and checks as `comfyq add`.
package protocol JobIntake: Sendable {
    /// Queues the job file `file` as a follow-up of `job`'s starred items (as
    /// `comfyq add FILE --from JOB --starred`); returns each job added with its item count.
    /// An error's description is the one-line problem shown to the user.
    func addFollowUp(file: String, from job: String, queue: Queue) throws -> [(name: String, items: Int)]

    /// Queues a job sent whole (`POST /api/jobs`): a job file's fields with the workflow inline,
    /// and `page_workflow`, ComfyUI's page's own workflow, kept with it. Checked as `comfyq add`
    /// checks a file, pre-flight included; throws `JobRefused` with what is wrong.
    func addJob(_ document: JSONObject, databasePath: String) async throws -> AddedJob
}

package struct AddedJob: Sendable, Equatable {
    package var name: String
    package var items: Int
    /// What was said while adding it (pre-flight skipped, notes), one line each.
    package var notes: [String]

    package init(name: String, items: Int, notes: [String] = []) {
        self.name = name
        self.items = items
        self.notes = notes
    }
}

/// A job that was not added, with every reason, one line each (no file names: the job came
/// whole, not from a file the user wrote).
package struct JobRefused: Error, Sendable, CustomStringConvertible {
    package var problems: [String]

    package init(problems: [String]) { self.problems = problems }

    package var description: String { problems.joined(separator: "\n") }
}
