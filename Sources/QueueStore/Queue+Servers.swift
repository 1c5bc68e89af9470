import ComfyCore

/// A server as the run that uses it last reported it.
public struct ServerRecord: Sendable, Equatable {
    public var name: String
    public var url: String
    /// A `ServerState` raw value: up, starting, down, restarting, given up, stopped, checking.
    public var state: String
    public var since: Double
    public var reason: String
    public var restarts: Int
    public var supervised: Bool
    public var log: String?
    public var version: String?
    public var gpu: String?
    public var vramTotal: Int64?
    public var vramFree: Int64?
    /// The `comfyq run` process that reports it.
    public var runnerPID: Int?
    /// When the run last wrote it (every few seconds while it runs).
    public var updatedAt: Double
    /// The run that wrote it (`host/pid#N`): the one that uses it now, or used it last.
    public var run: String? = nil
    /// What happened to it in that run (oldest first, at most the last 50).
    public var incidents: [ServerIncident] = []

    public init(
        name: String, url: String, state: String, since: Double, reason: String = "", restarts: Int = 0, supervised: Bool = false,
        log: String? = nil, version: String? = nil, gpu: String? = nil, vramTotal: Int64? = nil, vramFree: Int64? = nil,
        runnerPID: Int? = nil, updatedAt: Double
    ) {
        self.name = name
        self.url = url
        self.state = state
        self.since = since
        self.reason = reason
        self.restarts = restarts
        self.supervised = supervised
        self.log = log
        self.version = version
        self.gpu = gpu
        self.vramTotal = vramTotal
        self.vramFree = vramFree
        self.runnerPID = runnerPID
        self.updatedAt = updatedAt
    }
}

/// Something that happened to a server in a run: a restart, being given up, a poison prompt.
public struct ServerIncident: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case restart
        case givenUp = "given up"
        /// A prompt that crashed it twice: failed, with the end of its log.
        case poison
    }
    public var at: Double
    public var kind: Kind
    public var reason: String
    /// The item, for a poison prompt (`job/index`).
    public var item: String?

    public init(at: Double, kind: Kind, reason: String, item: String? = nil) {
        self.at = at
        self.kind = kind
        self.reason = reason
        self.item = item
    }

    public var json: JSONValue {
        ["at": .double(at), "kind": .string(kind.rawValue), "reason": .string(reason), "item": item.map { .string($0) } ?? .null]
    }

    init?(json: JSONValue) {
        guard let at = json["at"]?.numberValue?.double, let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)) else { return nil }
        self.init(at: at, kind: kind, reason: json["reason"]?.stringValue ?? "", item: json["item"]?.stringValue)
    }
}

/// A `comfyq run` as it last reported itself.
public struct RunnerRecord: Sendable, Equatable {
    public var pid: Int
    public var host: String
    public var startedAt: Double
    public var heartbeatAt: Double
    /// Set while the run is paused (a full disk).
    public var pausedReason: String?
    public var pausedFolder: String?
    public var pausedSince: Double?
    /// The comfyq version the run is.
    public var version: String?

    /// How the run's items name it: `host/pid`.
    public var owner: String { "\(host)/\(pid)" }

    public init(
        pid: Int, host: String, startedAt: Double, heartbeatAt: Double, pausedReason: String? = nil, pausedFolder: String? = nil,
        pausedSince: Double? = nil, version: String? = nil
    ) {
        self.version = version
        self.pid = pid
        self.host = host
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.pausedReason = pausedReason
        self.pausedFolder = pausedFolder
        self.pausedSince = pausedSince
    }
}

extension Queue {
    /// Writes a run's heartbeat (and whether it is paused).
    public func record(_ runner: RunnerRecord) throws {
        try database.query(
            """
            INSERT INTO runners (host, pid, started_at, heartbeat_at, paused_reason, paused_folder, paused_since, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (host, pid) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, paused_reason = excluded.paused_reason,
                paused_folder = excluded.paused_folder, paused_since = excluded.paused_since, version = excluded.version
            """,
            [
                .text(runner.host), .integer(Int64(runner.pid)), .real(runner.startedAt), .real(runner.heartbeatAt), SQLValue(runner.pausedReason),
                SQLValue(runner.pausedFolder), SQLValue(runner.pausedSince), SQLValue(runner.version),
            ])
    }

    /// Asks every run whose heartbeat is newer than `since` to drain: finish what is in flight,
    /// submit nothing new. Returns how many runs were asked.
    @discardableResult
    public func requestDrain(aliveSince since: Double, now: Double) throws -> Int {
        try database.query("UPDATE runners SET drain_requested_at = ? WHERE heartbeat_at >= ? RETURNING pid", [.real(now), .real(since)]).count
    }

    /// Whether this run was asked to drain (the request is taken: it is answered once).
    public func takeDrainRequest(host: String, pid: Int) throws -> Bool {
        let key: [SQLValue] = [.text(host), .integer(Int64(pid))]
        guard try !database.query("SELECT 1 FROM runners WHERE host = ? AND pid = ? AND drain_requested_at IS NOT NULL", key).isEmpty else { return false }
        try database.query("UPDATE runners SET drain_requested_at = NULL WHERE host = ? AND pid = ?", key)
        return true
    }

    /// Forgets a run that has ended.
    public func removeRunner(host: String, pid: Int) throws {
        try database.query("DELETE FROM runners WHERE host = ? AND pid = ?", [.text(host), .integer(Int64(pid))])
    }

    /// Every run that has reported itself (live or not: see `heartbeatAt`).
    public func runnerRecords() throws -> [RunnerRecord] {
        try database.query("SELECT pid, host, started_at, heartbeat_at, paused_reason, paused_folder, paused_since, version FROM runners ORDER BY started_at")
            .map { row in
                RunnerRecord(
                    pid: Int(row[0].int ?? 0), host: row[1].text ?? "", startedAt: row[2].double ?? 0, heartbeatAt: row[3].double ?? 0,
                    pausedReason: row[4].text, pausedFolder: row[5].text, pausedSince: row[6].double, version: row[7].text)
            }
    }

    /// Writes what a run knows of a server (one row per server name).
    public func record(_ server: ServerRecord) throws {
        try database.query(
            """
            INSERT INTO servers (name, url, state, since, reason, restarts, supervised, log, version, gpu, vram_total, vram_free, runner_pid, updated_at, run, incidents)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET url = excluded.url, state = excluded.state, since = excluded.since, reason = excluded.reason,
                restarts = excluded.restarts, supervised = excluded.supervised, log = excluded.log,
                version = COALESCE(excluded.version, servers.version), gpu = COALESCE(excluded.gpu, servers.gpu),
                vram_total = COALESCE(excluded.vram_total, servers.vram_total), vram_free = COALESCE(excluded.vram_free, servers.vram_free),
                runner_pid = excluded.runner_pid, updated_at = excluded.updated_at, run = excluded.run, incidents = excluded.incidents
            """,
            [
                .text(server.name), .text(server.url), .text(server.state), .real(server.since), .text(server.reason), .integer(Int64(server.restarts)),
                .integer(server.supervised ? 1 : 0), SQLValue(server.log), SQLValue(server.version), SQLValue(server.gpu),
                server.vramTotal.map { .integer($0) } ?? .null, server.vramFree.map { .integer($0) } ?? .null, SQLValue(server.runnerPID),
                .real(server.updatedAt), SQLValue(server.run), .text(JSONValue.array(server.incidents.map(\.json)).serialized()),
            ])
    }

    /// Every server a run has reported, by name.
    public func serverRecords() throws -> [ServerRecord] {
        try database.query(
            """
            SELECT name, url, state, since, reason, restarts, supervised, log, version, gpu, vram_total, vram_free, runner_pid, updated_at, run, incidents
            FROM servers ORDER BY name
            """
        ).map { row in
            var record = ServerRecord(
                name: row[0].text ?? "", url: row[1].text ?? "", state: row[2].text ?? "", since: row[3].double ?? 0, reason: row[4].text ?? "",
                restarts: Int(row[5].int ?? 0), supervised: row[6].int == 1, log: row[7].text, version: row[8].text, gpu: row[9].text,
                vramTotal: row[10].int, vramFree: row[11].int, runnerPID: row[12].int.map(Int.init), updatedAt: row[13].double ?? 0)
            record.run = row[14].text
            // Written by comfyq itself; a row it cannot read (hand-edited) shows no incidents.
            if let text = row[15].text, let list = (try? JSONValue(parsing: text))?.arrayValue {
                record.incidents = list.compactMap(ServerIncident.init(json:))
            }
            return record
        }
    }

    /// In-flight items per server (submitted or running there), for `servers` and `status`.
    public func inFlightCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try database.query("SELECT server, COUNT(*) FROM items WHERE state IN ('submitting', 'running') AND server IS NOT NULL GROUP BY server") {
            if let name = row[0].text { counts[name] = Int(row[1].int ?? 0) }
        }
        return counts
    }

    /// Asks the run that supervises `name` to `start`, `stop` or `restart` it.
    public func requestServer(_ name: String, action: String, now: Double) throws -> Int64 {
        try database.query(
            "INSERT INTO server_requests (name, action, created_at) VALUES (?, ?, ?) RETURNING id", [.text(name), .text(action), .real(now)]
        ).first?.first?.int ?? 0
    }

    /// Whether a request is still waiting for its run.
    public func isRequestPending(_ id: Int64) throws -> Bool {
        try !database.query("SELECT 1 FROM server_requests WHERE id = ?", [.integer(id)]).isEmpty
    }

    /// Takes (and deletes) the requests for these servers, oldest first.
    public func takeServerRequests(for names: [String]) throws -> [(name: String, action: String)] {
        guard !names.isEmpty else { return [] }
        return try database.transaction {
            let marks = Array(repeating: "?", count: names.count).joined(separator: ", ")
            let rows = try database.query(
                "SELECT id, name, action FROM server_requests WHERE name IN (\(marks)) ORDER BY id", names.map { .text($0) })
            guard !rows.isEmpty else { return [] }
            try database.query(
                "DELETE FROM server_requests WHERE id IN (\(rows.map { _ in "?" }.joined(separator: ", ")))", rows.map { $0[0] })
            return rows.map { ($0[1].text ?? "", $0[2].text ?? "") }
        }
    }
}
