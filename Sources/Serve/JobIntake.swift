import ComfyCore
import QueueStore

/// What `serve` leaves to the command line: turning job files into queued jobs with the same
/// loading, validation and checks as `comfyq add`. An error's description is the one-line
/// problem shown to the user.
package protocol JobIntake: Sendable {
    /// Queues the job file `file` as a follow-up of `job`'s starred items (as
    /// `comfyq add FILE --from JOB --starred`); returns each job added with its item count.
    func addFollowUp(file: String, from job: String, queue: Queue) throws -> [(name: String, items: Int)]
}
