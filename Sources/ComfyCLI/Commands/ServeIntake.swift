import ComfyCore
import Foundation
import QueueStore
import Serve

/// How `comfyq serve` queues jobs: with the command line's loading and checks, as `comfyq add`.
package struct CommandLineIntake: JobIntake {
    package init() {}

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
}
