import ComfyCore
import Foundation

/// An item's life in the queue.
public enum ItemState: String, Sendable, CaseIterable {
    /// `held`: pending, but no server can run it (pre-flight; the reason is its `error`). A run
    /// releases it when a server can, and so does `comfyq retry`.
    case pending, submitting, running, done, failed, cancelled, held

    public var isFinished: Bool { self == .done || self == .failed || self == .cancelled }
}

/// A job as `status` shows it.
public struct JobSummary: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var file: String
    public var priority: Int
    public var counts: [ItemState: Int]
    /// Seconds per finished item so far (nil before the first).
    public var averageItemSeconds: Double?

    public var total: Int { counts.values.reduce(0, +) }
    public var finished: Int { (counts[.done] ?? 0) + (counts[.failed] ?? 0) + (counts[.cancelled] ?? 0) }
    public var running: Int { (counts[.running] ?? 0) + (counts[.submitting] ?? 0) }
    public var isFinished: Bool { finished == total }

    public init(id: Int64, name: String, file: String, priority: Int = 0, counts: [ItemState: Int], averageItemSeconds: Double? = nil) {
        (self.id, self.name, self.file, self.priority, self.counts, self.averageItemSeconds) = (id, name, file, priority, counts, averageItemSeconds)
    }
}

/// One item as `status` shows it.
public struct ItemRow: Sendable, Equatable {
    public var id: Int64
    public var jobID: Int64
    public var jobName: String
    public var index: Int
    public var state: ItemState
    public var phase: String?
    public var step: Int?
    public var steps: Int?
    public var fraction: Double?
    public var attempts: Int
    public var server: String?
    public var promptID: String?
    public var error: String?
    public var parameters: String
    public var startedAt: Double?
    public var finishedAt: Double?
    /// What its graph loads (`ModelKey`); nil for items added before keys were stored.
    public var modelKey: String? = nil
    /// The run holding it while in flight (`host/pid`).
    public var runner: String? = nil
    /// Starred or rejected in the morning review (nil: not rated).
    public var rating: Rating? = nil

    public init(
        id: Int64 = 0, jobID: Int64, jobName: String, index: Int, state: ItemState, phase: String? = nil, step: Int? = nil, steps: Int? = nil,
        fraction: Double? = nil, attempts: Int = 0, server: String? = nil, promptID: String? = nil, error: String? = nil, parameters: String,
        startedAt: Double? = nil, finishedAt: Double? = nil, modelKey: String? = nil, runner: String? = nil, rating: Rating? = nil
    ) {
        (self.id, self.jobID, self.jobName, self.index, self.state, self.phase, self.step, self.steps) = (id, jobID, jobName, index, state, phase, step, steps)
        (self.fraction, self.attempts, self.server, self.promptID, self.error, self.parameters) = (fraction, attempts, server, promptID, error, parameters)
        (self.startedAt, self.finishedAt, self.modelKey, self.runner, self.rating) = (startedAt, finishedAt, modelKey, runner, rating)
    }
}

/// How a finished picture was judged (`comfyq star`, `reject`, the viewer).
public enum Rating: String, Sendable, Equatable, CaseIterable {
    case starred, rejected
}

/// Why a queue command cannot do what it was asked.
public struct QueueError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The durable queue: jobs and their items in SQLite (WAL, busy timeout, `BEGIN IMMEDIATE` for
/// every write) or PostgreSQL (a server several machines share), safe for `add` and `status` in
/// other processes, and for several runs, while `run` works.
public final class Queue {
    public let database: any Database
    /// What waits, by job and model key, as dispatch last read it (see `pendingGroups`).
    var pendingCache: PendingCache?
    /// The run this connection claims for (`host/pid#N`), recorded on each item it claims.
    public var owner: String?

    /// `$COMFYQ_DB`, else `$XDG_STATE_HOME/comfyq/queue.db`, else `~/.local/state/comfyq/queue.db`.
    public static func defaultPath(environment: [String: String], home: String) -> String {
        if let path = environment["COMFYQ_DB"], !path.isEmpty { return path }
        return UserFolders.state(environment: environment, home: home) + "/queue.db"
    }

    /// The folder of an SQLite queue's file (nil for PostgreSQL): where a full disk would stop it.
    public var folder: String? {
        database.dialect == .sqlite ? (database.path as NSString).deletingLastPathComponent : nil
    }

    /// Opens (creating and migrating) the queue at `path`: an SQLite file, or a PostgreSQL
    /// server given as `postgresql://user@host:port/database` (or `postgres://…`).
    public init(path: String) throws {
        if PostgresDatabase.isURL(path) {
            database = try PostgresDatabase(url: path)
            try Self.postgresMigrations.migrate(database)
        } else {
            database = try SQLiteDatabase(path: path)
            try Self.sqliteMigrations.migrate(database)
        }
    }

    // MARK: Adding

    /// Adds a job and all its items in one transaction; returns the job id.
    @discardableResult
    public func add(_ spec: JobSpec, items: [JobItem], now: Double) throws -> Int64 {
        pendingCache = nil
        let added = try database.transaction {
            let inserted = try database.query(
                "INSERT INTO jobs (name, file, workflow, spec, priority, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [.text(spec.name), .text(spec.file), .text(spec.workflow.json.serialized()), .text(spec.settings.json.serialized()),
                 .integer(Int64(spec.priority)), .real(now)])
            guard let jobID = inserted.first?.first?.int else { throw QueueError(message: "\(database.path): the job was not stored") }
            // Many rows a statement (a round trip each on PostgreSQL), well under either backend's
            // limit on parameters.
            let rows = Array(zip(items, spec.modelKeys(items)))
            for start in stride(from: 0, to: rows.count, by: 500) {
                let batch = rows[start..<min(rows.count, start + 500)]
                var parameters: [SQLValue] = []
                parameters.reserveCapacity(batch.count * 6)
                for (item, key) in batch {
                    parameters += [
                        .integer(jobID), .integer(Int64(item.index)), .text(item.parametersJSON.serialized()),
                        item.seed.map { .text(String($0)) } ?? .null, .real(now), .text(key.description),
                    ]
                }
                let values = Array(repeating: "(?, ?, ?, ?, ?, ?)", count: batch.count).joined(separator: ", ")
                try database.query("INSERT INTO items (job_id, idx, params, seed, created_at, model_key) VALUES \(values)", parameters)
            }
            return jobID
        }
        // PostgreSQL plans from statistics its autovacuum gathers later: after a large job,
        // gather them now, or the next claims scan the whole table.
        if database.dialect == .postgres && items.count >= 1_000 { try database.execute("ANALYZE items") }
        return added
    }

    // MARK: Reading

    /// The hook scripts named by jobs that still have work (pending, held or in flight), by job
    /// name; and a line for each such job whose stored settings cannot be read (its hooks are
    /// unknown: not "none"; its items fail when they are claimed, saying why).
    public func hooksOfUnfinishedJobs(jobIDs: Set<Int64>? = nil) throws -> (hooks: [(job: String, hooks: [HookReference])], unreadable: [String]) {
        let rows = try database.query(
            """
            SELECT id, name, spec FROM jobs WHERE EXISTS (
                SELECT 1 FROM items WHERE items.job_id = jobs.id AND items.state IN ('pending', 'submitting', 'running', 'held'))
            ORDER BY id
            """)
        var result: [(job: String, hooks: [HookReference])] = []
        var unreadable: [String] = []
        for row in rows {
            guard let id = row[0].int, jobIDs?.contains(id) ?? true, let name = row[1].text else { continue }
            let spec: JSONValue
            do {
                spec = try JSONValue(parsing: row[2].text ?? "")
            } catch {
                unreadable.append("job \(name) (#\(id)): its stored settings cannot be read (\(error)): its hooks are unknown, and its items fail when claimed")
                continue
            }
            let hooks = (spec["hooks"]?.arrayValue ?? []).compactMap(HookReference.init(json:))
            if !hooks.isEmpty { result.append((name, hooks)) }
        }
        return (result, unreadable)
    }

    /// Every job with its counts, in run order (priority, then age).

    public func jobs() throws -> [JobSummary] {
        var summaries: [Int64: JobSummary] = [:]
        var order: [Int64] = []
        for row in try database.query("SELECT id, name, file, priority FROM jobs ORDER BY priority DESC, id") {
            guard let id = row[0].int else { continue }
            order.append(id)
            summaries[id] = JobSummary(
                id: id, name: row[1].text ?? "", file: row[2].text ?? "", priority: Int(row[3].int ?? 0), counts: [:],
                averageItemSeconds: nil)
        }
        for row in try database.query("SELECT job_id, state, count(*) FROM items GROUP BY job_id, state") {
            guard let id = row[0].int, let state = row[1].text.flatMap(ItemState.init(rawValue:)) else { continue }
            summaries[id]?.counts[state] = Int(row[2].int ?? 0)
        }
        for row in try database.query(
            "SELECT job_id, avg(finished_at - started_at) FROM items WHERE state = 'done' AND started_at IS NOT NULL GROUP BY job_id")
        {
            guard let id = row[0].int else { continue }
            summaries[id]?.averageItemSeconds = row[1].double
        }
        return order.compactMap { summaries[$0] }
    }

    static let itemColumns = """
        items.id, items.job_id, jobs.name, items.idx, items.state, items.phase, items.step, items.steps, items.fraction,
        items.attempts, items.server, items.prompt_id, items.error, items.params, items.started_at, items.finished_at, items.model_key,
        items.runner, items.rating
        """

    /// Items in `states` (all when empty), optionally of one job (and of its items with an index
    /// in `indices`: a page of a large job), in job and item order.
    public func items(states: [ItemState] = [], jobID: Int64? = nil, indices: Range<Int>? = nil, limit: Int? = nil) throws -> [ItemRow] {
        var conditions: [String] = []
        var parameters: [SQLValue] = []
        if !states.isEmpty {
            conditions.append("items.state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
            parameters += states.map { .text($0.rawValue) }
        }
        if let jobID {
            conditions.append("items.job_id = ?")
            parameters.append(.integer(jobID))
        }
        if let indices {
            conditions.append("items.idx >= ? AND items.idx < ?")
            parameters += [.integer(Int64(indices.lowerBound)), .integer(Int64(indices.upperBound))]
        }
        var sql = "SELECT \(Self.itemColumns) FROM items JOIN jobs ON jobs.id = items.job_id"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY items.job_id, items.idx"
        if let limit { sql += " LIMIT \(limit)" }
        return try database.query(sql, parameters).map(Self.itemRow)
    }

    /// Each finished item's output files (paths as recorded), by item index (of the items with
    /// an index in `indices`, when given).
    public func outputs(jobID: Int64, indices: Range<Int>? = nil) throws -> [Int: [String]] {
        try details(jobID: jobID, indices: indices).mapValues(\.outputs)
    }

    /// Each finished item's output files and phase timings, by item index (of `indices`, when given).
    public func details(jobID: Int64, indices: Range<Int>? = nil) throws -> [Int: (outputs: [String], timings: JSONValue?)] {
        var result: [Int: (outputs: [String], timings: JSONValue?)] = [:]
        var sql = "SELECT idx, outputs, timings FROM items WHERE job_id = ? AND outputs IS NOT NULL"
        var parameters: [SQLValue] = [.integer(jobID)]
        if let indices {
            sql += " AND idx >= ? AND idx < ?"
            parameters += [.integer(Int64(indices.lowerBound)), .integer(Int64(indices.upperBound))]
        }
        for row in try database.query(sql, parameters) {
            guard let index = row[0].int else { continue }
            result[Int(index)] = (Self.outputPaths(row[1].text), row[2].text.flatMap { try? JSONValue(parsing: $0) })
        }
        return result
    }

    /// The most recently finished items that have outputs: job name, index, first output.
    public func recentOutputs(limit: Int) throws -> [(job: String, index: Int, path: String)] {
        let rows = try database.query(
            """
            SELECT jobs.name, items.idx, items.outputs FROM items JOIN jobs ON jobs.id = items.job_id
            WHERE items.state = 'done' AND items.outputs IS NOT NULL ORDER BY items.finished_at DESC LIMIT ?
            """, [.integer(Int64(limit))])
        return rows.compactMap { row in
            guard let job = row[0].text, let index = row[1].int, let path = Self.outputPaths(row[2].text).first else { return nil }
            return (job, Int(index), path)
        }
    }

    /// The paths in a stored `outputs` list (`[{"path", "size"}]`); none for a damaged one.
    static func outputPaths(_ stored: String?) -> [String] {
        guard let stored, let json = try? JSONValue(parsing: stored) else { return [] }
        return (json.arrayValue ?? []).compactMap { $0["path"]?.stringValue }
    }

    /// One item with its outputs and timings (nil: no such item).
    public func item(jobID: Int64, index: Int) throws -> (row: ItemRow, outputs: [String], timings: JSONValue?)? {
        let sql = "SELECT \(Self.itemColumns), items.outputs, items.timings FROM items JOIN jobs ON jobs.id = items.job_id WHERE items.job_id = ? AND items.idx = ?"
        guard let row = try database.query(sql, [.integer(jobID), .integer(Int64(index))]).first else { return nil }
        return (Self.itemRow(row), Self.outputPaths(row[19].text), row[20].text.flatMap { try? JSONValue(parsing: $0) })
    }

    /// Changes whenever the queue changes, in this process or another (`PRAGMA data_version`
    /// counts others' commits; `total_changes` this connection's).
    public func changeToken() throws -> String { try database.changeToken() }

    /// Waits up to `timeout` seconds for a change by another process; true when there was one.
    /// PostgreSQL wakes on its notification; SQLite is looked at every 100 ms.
    public func waitForChange(timeout: Double) throws -> Bool {
        if let postgres = database as? PostgresDatabase { return try postgres.waitForChange(timeout: timeout) }
        let before = try database.othersChangeToken()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: min(0.1, max(0, deadline.timeIntervalSinceNow)))
            if try database.othersChangeToken() != before { return true }
        }
        return false
    }

    static func itemRow(_ row: [SQLValue]) -> ItemRow {
        ItemRow(
            id: row[0].int ?? 0, jobID: row[1].int ?? 0, jobName: row[2].text ?? "", index: Int(row[3].int ?? 0),
            state: row[4].text.flatMap(ItemState.init(rawValue:)) ?? .pending, phase: row[5].text, step: row[6].int.map(Int.init),
            steps: row[7].int.map(Int.init), fraction: row[8].double, attempts: Int(row[9].int ?? 0), server: row[10].text,
            promptID: row[11].text, error: row[12].text, parameters: row[13].text ?? "{}", startedAt: row[14].double,
            finishedAt: row[15].double, modelKey: row[16].text, runner: row[17].text, rating: row[18].text.flatMap(Rating.init(rawValue:)))
    }

    /// The job's stored workflow (API format) and settings, as `add` stored them.
    public func definition(jobID: Int64) throws -> (workflow: String, spec: String)? {
        guard let row = try database.query("SELECT workflow, spec FROM jobs WHERE id = ?", [.integer(jobID)]).first else { return nil }
        return (row[0].text ?? "", row[1].text ?? "")
    }

    /// A job by id or name (the newest with that name).
    public func job(named reference: String) throws -> JobSummary {
        let all = try jobs()
        if let id = Int64(reference), let job = all.first(where: { $0.id == id }) { return job }
        if let job = all.filter({ $0.name == reference }).max(by: { $0.id < $1.id }) { return job }
        throw QueueError(message: "no job \"\(reference)\" (jobs: \(all.map { "\($0.name) (#\($0.id))" }.joined(separator: ", ")))")
    }

    // MARK: Changing

    /// What `cancel` and `retry` act on: a whole job, or one item written `JOB/INDEX`.
    public enum Target: Sendable, Equatable {
        case job(Int64)
        case item(job: Int64, index: Int)
    }

    public func target(_ reference: String) throws -> Target {
        if let slash = reference.lastIndex(of: "/"), let index = Int(reference[reference.index(after: slash)...]) {
            let job = try job(named: String(reference[..<slash]))
            guard index >= 0 && index < job.total else {
                throw QueueError(message: "job \(job.name) has items 0 to \(job.total - 1), not \(index)")
            }
            return .item(job: job.id, index: index)
        }
        return .job(try job(named: reference).id)
    }

    /// Cancels pending items (running ones are cancelled by the runner when it sees this).
    /// Returns how many items changed.
    @discardableResult
    public func cancel(_ target: Target, now: Double) throws -> Int {
        pendingCache = nil
        return try update(target, set: "state = 'cancelled', finished_at = ?, updated_at = ?", parameters: [.real(now), .real(now)],
                   from: [.pending, .submitting, .running, .held])
    }

    /// Puts failed, cancelled or held items back to pending. Returns how many items changed.
    @discardableResult
    public func retry(_ target: Target, now: Double) throws -> Int {
        pendingCache = nil
        return try update(
            target, set: "state = 'pending', error = NULL, phase = NULL, step = NULL, steps = NULL, fraction = NULL, server = NULL, prompt_id = NULL, started_at = NULL, finished_at = NULL, updated_at = ?",
            parameters: [.real(now)], from: [.failed, .cancelled, .held])
    }

    /// Deletes a finished job and its items.
    public func remove(jobID: Int64) throws {
        pendingCache = nil
        return try database.transaction {
            let open = try database.query(
                "SELECT count(*) FROM items WHERE job_id = ? AND state IN ('pending', 'submitting', 'running', 'held')", [.integer(jobID)])
            if let count = open.first?.first?.int, count > 0 {
                throw QueueError(message: "job #\(jobID) still has \(count) unfinished item\(count == 1 ? "" : "s"); cancel it first")
            }
            try database.query("DELETE FROM jobs WHERE id = ?", [.integer(jobID)])
        }
    }

    private func update(_ target: Target, set: String, parameters: [SQLValue], from states: [ItemState]) throws -> Int {
        try database.transaction {
            let allowed = states.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            switch target {
            case .job(let id):
                return try database.query("UPDATE items SET \(set) WHERE job_id = ? AND state IN (\(allowed)) RETURNING id", parameters + [.integer(id)]).count
            case .item(let job, let index):
                return try database.query(
                    "UPDATE items SET \(set) WHERE job_id = ? AND idx = ? AND state IN (\(allowed)) RETURNING id",
                    parameters + [.integer(job), .integer(Int64(index))]
                ).count
            }
        }
    }
}
