import ComfyCore

/// An item taken from the queue to run, with what is needed to build its prompt.
public struct ClaimedItem: Sendable, Equatable {
    public var item: ItemRow
    /// The job's API-format graph and its stored settings (output, retries, addresses…), as JSON.
    public var workflow: String
    public var spec: String

    public init(item: ItemRow, workflow: String, spec: String) {
        self.item = item
        self.workflow = workflow
        self.spec = spec
    }
}

/// The item transitions the runner makes. Each is one transaction (`BEGIN IMMEDIATE` on SQLite;
/// on PostgreSQL the rows it claims are locked, and others skip them) guarded by the state it
/// expects, so an item can never be claimed twice or finished twice, whichever process asks.
extension Queue {
    /// Takes the next pending item (highest priority, then oldest job, then item order), marks it
    /// `submitting` on `server` with `promptID` and one more attempt, and returns it. Nil when
    /// nothing is pending (in `jobIDs`, when given).
    public func claimNext(server: String, promptID: String, now: Double, jobIDs: Set<Int64>? = nil) throws -> ClaimedItem? {
        pendingCache = nil
        return try database.transaction {
            // One indexed look per job (a correlated LIMIT 1), not a semi-join over every pending item.
            let candidates = try database.query(
                """
                SELECT id FROM jobs WHERE (SELECT 1 FROM items WHERE items.state = 'pending' AND items.job_id = jobs.id ORDER BY items.idx LIMIT 1) IS NOT NULL
                ORDER BY priority DESC, id
                """)
            guard let jobID = candidates.compactMap({ $0[0].int }).first(where: { jobIDs?.contains($0) ?? true }) else { return nil }
            guard let itemID = try database.query(
                "SELECT id FROM items WHERE state = 'pending' AND job_id = ? ORDER BY idx LIMIT 1\(database.dialect.skipLocked)", [.integer(jobID)]
            ).first?.first?.int else { return nil }
            return try claim(itemID, server: server, promptID: promptID, now: now)
        }
    }

    /// Marks a pending item `submitting` on `server` and returns it (inside a transaction).
    func claim(_ itemID: Int64, server: String, promptID: String, now: Double) throws -> ClaimedItem? {
        let claimed = try database.query(
            """
            UPDATE items SET state = 'submitting', server = ?, prompt_id = ?, attempts = attempts + 1, error = NULL,
                phase = 'queued', step = NULL, steps = NULL, fraction = 0, started_at = ?, finished_at = NULL, updated_at = ?, runner = ?
            WHERE id = ? AND state = 'pending' RETURNING id
            """, [.text(server), .text(promptID), .real(now), .real(now), SQLValue(owner), .integer(itemID)])
        guard claimed.count == 1 else { return nil }
        return try claimedItem(itemID)
    }

    /// An item with its job's graph and settings, as a claim returns it (nil when it is gone).
    public func claimedItem(_ itemID: Int64) throws -> ClaimedItem? {
        let rows = try database.query(
            "SELECT \(Self.itemColumns), jobs.workflow, jobs.spec FROM items JOIN jobs ON jobs.id = items.job_id WHERE items.id = ?",
            [.integer(itemID)])
        return rows.first.map { ClaimedItem(item: Self.itemRow($0), workflow: $0[19].text ?? "{}", spec: $0[20].text ?? "{}") }
    }

    /// The server accepted the prompt.
    @discardableResult
    public func markRunning(_ itemID: Int64, promptID: String, now: Double) throws -> Bool {
        try change(itemID, promptID: promptID, from: [.submitting], set: "state = 'running', updated_at = ?", [.real(now)])
    }

    /// Progress for the live view and `status` (only while the item is in flight).
    @discardableResult
    public func recordProgress(
        _ itemID: Int64, promptID: String, phase: String, step: Int?, steps: Int?, fraction: Double, now: Double
    ) throws -> Bool {
        try change(
            itemID, promptID: promptID, from: [.submitting, .running],
            set: "phase = ?, step = ?, steps = ?, fraction = ?, updated_at = ?",
            [.text(phase), SQLValue(step), SQLValue(steps), .real(fraction), .real(now)])
    }

    /// The item ended: `done` with its outputs, or `failed` with its error. Only an item still in
    /// flight with this prompt id can end, and only once. An item cancelled while its prompt
    /// ran (`comfyq cancel`) can still end `done`: its prompt finished before the cancel reached
    /// the server, so it ran, and its outputs are kept rather than lost.
    @discardableResult
    public func finish(
        _ itemID: Int64, promptID: String, state: ItemState, error: String? = nil, outputs: JSONValue = [], timings: JSONValue = [:],
        now: Double
    ) throws -> Bool {
        precondition(state.isFinished, "finish ends an item as done, failed or cancelled (skipped by a hook)")
        return try change(
            itemID, promptID: promptID, from: state == .done ? [.submitting, .running, .cancelled] : [.submitting, .running],
            set: "state = ?, error = ?, outputs = ?, timings = ?, fraction = ?, phase = ?, finished_at = ?, updated_at = ?",
            [.text(state.rawValue), SQLValue(error), .text(outputs.serialized()), .text(timings.serialized()),
             .real(state == .done ? 1 : 0), .text(state.rawValue), .real(now), .real(now)])
    }

    /// Back to pending for another attempt (a transient failure, a prompt the server lost).
    @discardableResult
    public func requeue(_ itemID: Int64, promptID: String, error: String, now: Double) throws -> Bool {
        pendingCache = nil
        return try change(
            itemID, promptID: promptID, from: [.submitting, .running],
            set: "state = 'pending', error = ?, server = NULL, prompt_id = NULL, phase = NULL, step = NULL, steps = NULL, fraction = NULL, updated_at = ?",
            [.text(error), .real(now)])
    }

    /// Where an item a run submitted under `promptID` stands now, as that run sees it.
    public enum Standing: Sendable, Equatable {
        /// In flight under this prompt, held by this run.
        case held
        /// Another run holds it (or ended it) now: it took the item over while this one was silent.
        case takenOver(by: String)
        /// No longer in flight under this prompt, and no other run's (cancelled, removed, ended).
        case ended(String)
    }

    /// Where the item stands for this queue's run (`owner`).
    public func standing(of itemID: Int64, promptID: String) throws -> Standing {
        guard let row = try database.query("SELECT runner, state, prompt_id FROM items WHERE id = ?", [.integer(itemID)]).first else {
            return .ended("removed")
        }
        let runner = row[0].text
        let state = row[1].text ?? "?"
        if let runner, let owner, runner != owner { return .takenOver(by: runner) }
        guard row[2].text == promptID else { return .ended(state) }
        // (Cancelled under this prompt: still this run's to take off its server, or to collect
        // if it finished first.)
        return [ItemState.submitting, .running, .cancelled].map(\.rawValue).contains(state) ? .held : .ended(state)
    }

    /// Whether any item (of `jobIDs`, when given) waits to run: one indexed lookup, not a count.
    public func hasPending(jobIDs: Set<Int64>? = nil) throws -> Bool {
        var sql = "SELECT 1 FROM items WHERE state = 'pending'"
        if let jobIDs { sql += " AND job_id IN (\(jobIDs.map(String.init).joined(separator: ", ")))" }
        return try !database.query(sql + " LIMIT 1").isEmpty
    }

    /// Items a previous run left in flight, to reconcile with their servers.
    public func inFlight() throws -> [ItemRow] { try items(states: [.submitting, .running]) }

    /// Takes over the items in flight whose run is gone: no run of that name in the queue (it
    /// ended, or is from before runs were recorded), or one whose heartbeat is older than
    /// `lease` seconds, or one `isAlive` says is dead (a process on this machine that is gone).
    /// Each is taken by one run only (the change is guarded by the owner it had). Returns them,
    /// now owned by `owner`, for the caller to reconcile with their servers.
    /// `local` decides for runs of this very process (nil: not one of them), which share its
    /// `runners` row.
    public func adoptOrphans(
        lease: Double, now: Double, isAlive: (RunnerRecord) -> Bool, local: (String) -> Bool? = { _ in nil }
    ) throws -> [ItemRow] {
        guard let owner else { return [] }
        let live = try liveOwners(since: now - lease, isAlive: isAlive)
        var adopted: [ItemRow] = []
        for item in try inFlight() where item.runner != owner && !(item.runner.map { local($0) ?? live.contains(Self.process(of: $0)) } ?? false) {
            let taken = try database.query(
                "UPDATE items SET runner = ? WHERE id = ? AND \(database.dialect.same("runner")) AND state IN ('submitting', 'running') RETURNING id",
                [.text(owner), .integer(item.id), SQLValue(item.runner)])
            if taken.count == 1 {
                var mine = item
                mine.runner = owner
                adopted.append(mine)
            }
        }
        return adopted
    }

    /// Whether another run's items are in flight while that run looks gone (no heartbeat for
    /// `quiet` seconds) but its lease has not run out: a run waits for them rather than end.
    public func hasOrphansSoon(quiet: Double, now: Double, isAlive: (RunnerRecord) -> Bool, local: (String) -> Bool? = { _ in nil }) throws -> Bool {
        let beating = try liveOwners(since: now - quiet, isAlive: isAlive)
        return try inFlight().contains { $0.runner != owner && !($0.runner.map { local($0) ?? beating.contains(Self.process(of: $0)) } ?? false) }
    }

    /// The process part of an item's run, `host/pid` (what the `runners` row speaks for).
    static func process(of owner: String) -> String {
        owner.firstIndex(of: "#").map { String(owner[..<$0]) } ?? owner
    }

    /// `host/pid` of each run whose heartbeat is newer than `since` and that `isAlive` accepts.
    func liveOwners(since: Double, isAlive: (RunnerRecord) -> Bool) throws -> Set<String> {
        Set(try runnerRecords().filter { $0.heartbeatAt >= since && isAlive($0) }.map(\.owner))
    }

    /// Which of these prompts' items were cancelled (`comfyq cancel`) while they ran.
    public func cancelled(among promptIDs: [String]) throws -> Set<String> {
        guard !promptIDs.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: promptIDs.count).joined(separator: ", ")
        let rows = try database.query("SELECT prompt_id FROM items WHERE state = 'cancelled' AND prompt_id IN (\(marks))", promptIDs.map { .text($0) })
        return Set(rows.compactMap { $0.first?.text })
    }

    /// One guarded UPDATE: atomic on its own on both backends (no transaction around it, which
    /// on PostgreSQL would cost two more round trips a transition). A run (`owner` set) changes
    /// only the items it holds: once another run has taken one over, its writes are refused.
    private func change(_ itemID: Int64, promptID: String, from states: [ItemState], set: String, _ parameters: [SQLValue]) throws -> Bool {
        let allowed = states.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let held = owner == nil ? "" : " AND runner = ?"
        return try database.query(
            "UPDATE items SET \(set) WHERE id = ? AND prompt_id = ? AND state IN (\(allowed))\(held) RETURNING id",
            parameters + [.integer(itemID), .text(promptID)] + (owner.map { [SQLValue.text($0)] } ?? [])
        ).count == 1
    }
}

/// A job's held items: how many, and why no server can run the first of them.
public struct HeldItems: Sendable, Equatable {
    public var job: String
    public var count: Int
    public var reason: String
}

/// Items no server can run (pre-flight): held out of the queue's way, with the reason, until a
/// server can run them or `comfyq retry` puts them back.
extension Queue {
    /// Holds these pending items of a job with `reason`; returns how many it held.
    @discardableResult
    public func hold(jobID: Int64, indices: [Int], reason: String, now: Double) throws -> Int {
        try move(jobID: jobID, indices: indices, from: .pending, to: .held, error: reason, now: now)
    }

    /// Puts these held items of a job back to pending; returns how many it released.
    @discardableResult
    public func release(jobID: Int64, indices: [Int], now: Double) throws -> Int {
        try move(jobID: jobID, indices: indices, from: .held, to: .pending, error: nil, now: now)
    }

    /// Per job with held items: its name, how many, and the reason of its first one.
    public func held() throws -> [Int64: HeldItems] {
        var result: [Int64: HeldItems] = [:]
        let rows = try database.query(
            """
            SELECT items.job_id, jobs.name, count(*),
                (SELECT error FROM items first WHERE first.job_id = items.job_id AND first.state = 'held' ORDER BY idx LIMIT 1)
            FROM items JOIN jobs ON jobs.id = items.job_id WHERE items.state = 'held' GROUP BY items.job_id, jobs.name
            """)
        for row in rows {
            guard let job = row[0].int, let count = row[2].int else { continue }
            result[job] = HeldItems(job: row[1].text ?? "#\(job)", count: Int(count), reason: row[3].text ?? "")
        }
        return result
    }

    private func move(jobID: Int64, indices: [Int], from: ItemState, to: ItemState, error: String?, now: Double) throws -> Int {
        guard !indices.isEmpty else { return 0 }
        pendingCache = nil
        var moved = 0
        // In slices: a statement's parameters are bounded (SQLite allows 32,766).
        for start in stride(from: 0, to: indices.count, by: 500) {
            let slice = indices[start..<min(start + 500, indices.count)]
            let marks = Array(repeating: "?", count: slice.count).joined(separator: ", ")
            moved += try database.query(
                "UPDATE items SET state = ?, error = ?, updated_at = ? WHERE job_id = ? AND state = ? AND idx IN (\(marks)) RETURNING id",
                [.text(to.rawValue), SQLValue(error), .real(now), .integer(jobID), .text(from.rawValue)] + slice.map { .integer(Int64($0)) }
            ).count
        }
        return moved
    }
}
