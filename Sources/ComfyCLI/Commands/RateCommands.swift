import ComfyCore
import Foundation
import QueueStore

/// `comfyq star JOB/INDEX…`, `comfyq reject JOB/INDEX…`, `comfyq unrate JOB/INDEX…`: the
/// morning review from the command line (the same ratings the browser sets).
enum RateCommands {
    static let star = rate("star", abstract: "Star finished pictures (JOB/INDEX…; JOB/3,7,12 for several of one job).", as: .starred)
    static let reject = rate("reject", abstract: "Reject finished pictures (JOB/INDEX…; JOB/3,7,12 for several of one job).", as: .rejected)
    static let unrate = rate("unrate", abstract: "Clear the rating of pictures (JOB/INDEX…; JOB/3,7,12 for several of one job).", as: nil)

    private static func rate(_ name: String, abstract: String, as rating: Rating?) -> CommandSpec {
        CommandSpec(
            name: name, abstract: abstract,
            discussion: "Only done items are rated; others are named and left alone. `status --json` shows each item's rating.",
            arguments: [ArgumentSpec("item", help: "JOB/INDEX (a job name or #id), or JOB/3,7,12.", variadic: true, completion: .jobs)],
            options: [JobFiles.dbOption]
        ) { arguments, console in
            let queue = try JobFiles.openQueue(arguments, console)
            // Every reference is read before anything changes: a typo rates nothing.
            var chosen: [(job: JobSummary, indices: [Int])] = []
            for reference in arguments.positionals {
                guard let slash = reference.lastIndex(of: "/") else {
                    throw UsageError("\(reference): give JOB/INDEX (or JOB/3,7,12)", command: commandSpec(name))
                }
                let name = String(reference[..<slash])
                let list = reference[reference.index(after: slash)...].split(separator: ",", omittingEmptySubsequences: false)
                let indices = list.compactMap { Int($0) }
                guard indices.count == list.count, !indices.isEmpty, indices.allSatisfy({ $0 >= 0 }) else {
                    throw UsageError("\(reference): the item must be a number (or numbers, comma-separated)", command: commandSpec(name))
                }
                let job: JobSummary
                do { job = try queue.job(named: name.hasPrefix("#") ? String(name.dropFirst()) : name) } catch { throw CommandFailure("\(error)") }
                if let outside = indices.first(where: { $0 >= job.total }) {
                    throw CommandFailure("\(job.name)/\(outside): no such item (the job has \(job.total), 0 to \(job.total - 1))")
                }
                chosen.append((job, indices))
            }
            var rated = 0
            var skipped: [String] = []
            for (job, indices) in chosen {
                let result: (rated: Int, notDone: [Int])
                do { result = try queue.rate(jobID: job.id, indices: indices, as: rating) } catch let error as QueueError { throw CommandFailure(error.message) }
                rated += result.rated
                skipped += result.notDone.map { "\(job.name)/\($0)" }
            }
            let verb = rating.map { $0 == .starred ? "starred" : "rejected" } ?? "unrated"
            console.print("\(verb) \(rated) picture\(rated == 1 ? "" : "s")")
            if !skipped.isEmpty { console.printError("not done, left alone: \(skipped.joined(separator: ", "))") }
            return skipped.isEmpty ? .success : .failure
        }
    }

    private static func commandSpec(_ name: String) -> CommandSpec? { [star, reject, unrate].first { $0.name == name } }
}
