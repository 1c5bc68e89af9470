import ComfyCore

/// What waits, summarised for `DispatchPolicy`, and the claim of a group's next item.
///
/// Reading the summary is one indexed scan of the pending items (about 100 ms for 100,000 on a
/// small machine), too much for every dispatch, so it is kept and adjusted: a claim through this
/// queue takes one from its group; a write through this queue that puts items back or adds them
/// drops the summary; a write by another process shows in SQLite's `data_version` (PostgreSQL's
/// notifications) and drops it too, unless the caller accepts a summary that old. So a run reads
/// it again only when something other than its own claims changed, and with many runs on one
/// queue, each committing all the time, at most every `othersMaxAge` seconds: a claim stays
/// exact (a group another run emptied claims nothing, and the summary is read again).
struct PendingCache {
    var dataVersion: String
    var jobIDs: Set<Int64>?
    var groups: [DispatchPolicy.Group]
    var readAt: ContinuousClock.Instant
}

extension Queue {
    /// The pending items by job and model key, with their jobs' priority and dispatch settings.
    /// `othersMaxAge`: how old (seconds) a summary may be that other processes' writes have
    /// made stale (its counts and new jobs; this queue's own writes are always in it).
    public func pendingGroups(jobIDs: Set<Int64>? = nil, othersMaxAge: Double = 0) throws -> [DispatchPolicy.Group] {
        let version = try database.othersChangeToken()
        if let cache = pendingCache, cache.jobIDs == jobIDs,
            cache.dataVersion == version || ContinuousClock.now - cache.readAt < .milliseconds(Int(othersMaxAge * 1000))
        {
            return cache.groups
        }
        let readAt = ContinuousClock.now
        var settings: [Int64: (priority: Int, maxDefer: Double?, strict: Bool)] = [:]
        for row in try database.query(
            "SELECT id, priority, spec FROM jobs WHERE (SELECT 1 FROM items WHERE items.state = 'pending' AND items.job_id = jobs.id ORDER BY items.idx LIMIT 1) IS NOT NULL")
        {
            guard let id = row[0].int else { continue }
            let stored: JobSettings?
            do {
                stored = try JobSettings(json: JSONValue(parsing: row[2].text ?? "{}"))
            } catch {
                // Unreadable settings do not hold the queue up: the job is dispatched with the
                // run's defaults, and claiming its item fails that item with the reason.
                stored = nil
            }
            settings[id] = (Int(row[1].int ?? 0), stored?.maxDefer, stored?.strictOrder ?? false)
        }
        var groups: [DispatchPolicy.Group] = []
        for row in try database.query(
            """
            SELECT job_id, model_key, COUNT(*), MIN(idx), MIN(created_at) FROM items WHERE state = 'pending'
            GROUP BY job_id, model_key ORDER BY job_id, MIN(idx)
            """)
        {
            guard let jobID = row[0].int, jobIDs?.contains(jobID) ?? true, let job = settings[jobID] else { continue }
            groups.append(
                DispatchPolicy.Group(
                    jobID: jobID, priority: job.priority, modelKey: row[1].text.map(ModelKey.init), waiting: Int(row[2].int ?? 0),
                    firstIndex: Int(row[3].int ?? 0), waitingSince: row[4].double ?? 0, maxDefer: job.maxDefer, strict: job.strict))
        }
        pendingCache = PendingCache(dataVersion: version, jobIDs: jobIDs, groups: groups, readAt: readAt)
        return groups
    }

    /// Claims the first pending item of a group (as `claimNext` does), or nil when the group has
    /// none left (another runner took them).
    public func claim(_ group: DispatchPolicy.Group.ID, server: String, promptID: String, now: Double) throws -> ClaimedItem? {
        // `= ?` or `IS NULL`, not a null-safe comparison: both backends use the index for these.
        let keyCondition = group.modelKey == nil ? "model_key IS NULL" : "model_key = ?"
        let keyParameters: [SQLValue] = group.modelKey.map { [.text($0.description)] } ?? []
        let (claimed, next) = try database.transaction {
            let itemID = try database.query(
                "SELECT id FROM items WHERE state = 'pending' AND job_id = ? AND \(keyCondition) ORDER BY idx LIMIT 1\(database.dialect.skipLocked)",
                [.integer(group.jobID)] + keyParameters
            ).first?.first?.int
            let claimed = try itemID.flatMap { try claim($0, server: server, promptID: promptID, now: now) }
            let next = try database.query(
                "SELECT MIN(idx) FROM items WHERE state = 'pending' AND job_id = ? AND \(keyCondition)", [.integer(group.jobID)] + keyParameters
            ).first?.first?.int
            return (claimed, next)
        }
        if let position = pendingCache?.groups.firstIndex(where: { $0.id == group }) {
            if claimed != nil, let next {
                pendingCache?.groups[position].waiting -= 1
                pendingCache?.groups[position].firstIndex = Int(next)
            } else if claimed != nil {
                pendingCache?.groups.remove(at: position)
            } else {
                pendingCache = nil
            }
        }
        return claimed
    }
}
