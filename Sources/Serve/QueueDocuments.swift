import ComfyCore
import Foundation
import QueueStore

/// The queue as JSON documents: what `status --json` prints, what `/api/status` serves and what
/// the pages and scripts read.
package enum QueueDocuments {
    /// `42s`, `3m05s`, `2h14m`.
    package static func duration(_ seconds: Double) -> String {
        let total = Int(max(0, seconds).rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h\(String(format: "%02d", (total % 3600) / 60))m"
    }

    /// `status --json` (also `/api/status` of `comfyq serve`).
    package static func status(_ queue: Queue, job selected: JobSummary?, states filter: [ItemState]) throws -> JSONValue {
        let jobs = try selected.map { [$0] } ?? queue.jobs()
        let now = Date().timeIntervalSince1970
        let groups = Dictionary(grouping: try queue.pendingGroups(), by: \.jobID)
        let held = try queue.held()
        let jobValues: [JSONValue] = jobs.map { job in
            let models: [JSONValue] = (groups[job.id] ?? []).sorted { $0.firstIndex < $1.firstIndex }.map {
                ["model_key": $0.modelKey.map { .string($0.description) } ?? .null, "pending": .int($0.waiting)]
            }
            var counts = JSONObject()
            for state in ItemState.allCases { counts[state.rawValue] = .int(job.counts[state] ?? 0) }
            let remaining = (job.counts[.pending] ?? 0) + job.running
            return [
                "id": .int(Int(job.id)), "name": .string(job.name), "file": .string(job.file), "priority": .int(job.priority),
                "total": .int(job.total), "counts": .object(counts),
                "fraction": .double(job.total == 0 ? 0 : Double(job.finished) / Double(job.total)),
                "eta_seconds": job.averageItemSeconds.map { .double($0 * Double(remaining)) } ?? .null,
                "model_groups": .array(models),
                "held": held[job.id].map { ["items": .int($0.count), "reason": .string($0.reason)] } ?? .null,
                "from": (try? queue.settings(of: job))?.from?.json ?? .null,  // (unreadable settings: `run` says so)
            ]
        }
        let items: [ItemRow]
        if let selected {
            items = try queue.items(states: filter, jobID: selected.id)
        } else {
            items = try queue.items(states: filter.isEmpty ? [.submitting, .running, .failed] : filter)
        }
        let itemValues: [JSONValue] = items.map { item in
            [
                "job": .string(item.jobName), "job_id": .int(Int(item.jobID)), "index": .int(item.index), "state": .string(item.state.rawValue),
                "phase": item.phase.map { .string($0) } ?? .null, "step": item.step.map { .int($0) } ?? .null,
                "steps": item.steps.map { .int($0) } ?? .null, "fraction": item.fraction.map { .double($0) } ?? .null,
                "attempts": .int(item.attempts), "server": item.server.map { .string($0) } ?? .null,
                "prompt_id": item.promptID.map { .string($0) } ?? .null, "error": item.error.map { .string($0) } ?? .null,
                "elapsed_seconds": item.startedAt.map { .double((item.finishedAt ?? now) - $0) } ?? .null,
                "parameters": (try? JSONValue(parsing: item.parameters)) ?? [:],
                "model_key": item.modelKey.map { .string($0) } ?? .null,
                "rating": item.rating.map { .string($0.rawValue) } ?? .null,
            ]
        }
        let servers = try ServerView.read(queue, now: now)
        let waiting = ServerView.waitingForAServer(servers)
        let runners = try RunnerView.read(queue, now: now).filter(\.isLive)
        return [
            "schema": 1, "jobs": .array(jobValues), "items": .array(itemValues), "servers": .array(servers.map(\.json)),
            "runners": .array(runners.map(\.json)), "waiting_for_a_server": .bool(waiting),
            "paused": .bool(runners.contains { $0.record.pausedReason != nil }),
        ]
    }
}

/// A stored setting that cannot be read: the job's name and why.
package struct UnreadableSettings: Error, CustomStringConvertible {
    package let description: String
}

extension Queue {
    /// The job's settings as stored when it was added (its output folder, its matrix axes, its
    /// follow-ups and where it came from).
    package func settings(of job: JobSummary) throws -> JobSettings {
        guard let stored = try definition(jobID: job.id) else { throw UnreadableSettings(description: "no job #\(job.id)") }
        do {
            return try JobSettings(json: JSONValue(parsing: stored.spec))
        } catch {
            throw UnreadableSettings(description: "\(job.name): its stored settings cannot be read (\(error))")
        }
    }
}
