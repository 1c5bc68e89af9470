import ComfyCore
import Foundation
import QueueStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server as `status` and `servers` show it: what the run that uses it last wrote, and
/// whether that run is still there to keep it true.
package struct ServerView {
    package var record: ServerRecord
    /// A live run wrote it within the last 15 s (it writes every 5 s).
    package var isLive: Bool
    /// Items in flight there, from the queue.
    package var inFlight: Int

    package static func read(_ queue: Queue, now: Double) throws -> [ServerView] {
        let counts = try queue.inFlightCounts()
        return try queue.serverRecords().map { record in
            let alive = record.runnerPID.map(isAlive) ?? false
            return ServerView(record: record, isLive: alive && now - record.updatedAt < 15, inFlight: counts[record.name] ?? 0)
        }
    }

    /// A run is going, and none of its servers is up.
    package static func waitingForAServer(_ servers: [ServerView]) -> Bool {
        let live = servers.filter(\.isLive)
        return !live.isEmpty && !live.contains { $0.record.state == "up" }
    }

    /// `stopped by the run host/pid#1 at 2026-12-06 23:14:05` (nil unless it was stopped on purpose).
    package var stoppedBy: String? {
        guard !isLive, record.state == ServerState.stopped.rawValue else { return nil }
        return "stopped by the run \(record.run ?? "pid \(record.runnerPID ?? 0)") at \(Self.clock(record.since))"
    }

    /// `the run host/pid#1 (last seen 2026-12-06 23:14): 1 restart, 1 poison prompt`
    package var lastRunSummary: String {
        var counts: [String] = []
        for kind in [ServerIncident.Kind.restart, .givenUp, .poison] {
            let count = record.incidents.filter { $0.kind == kind }.count
            guard count > 0 else { continue }
            switch kind {
            case .restart: counts.append("\(count) restart\(count == 1 ? "" : "s")")
            case .givenUp: counts.append("given up \(count == 1 ? "once" : "\(count) times")")
            case .poison: counts.append("\(count) poison prompt\(count == 1 ? "" : "s")")
            }
        }
        return "the run \(record.run ?? "pid \(record.runnerPID ?? 0)") (last seen \(Self.clock(record.updatedAt))): "
            + (counts.isEmpty ? "no incidents" : counts.joined(separator: ", "))
    }

    package static func incidentLine(_ incident: ServerIncident) -> String {
        "\(clock(incident.at)) \(incident.kind.rawValue)\(incident.item.map { " \($0)" } ?? ""): \(incident.reason)"
    }

    /// A Unix time as local `yyyy-MM-dd HH:mm:ss`.
    package static func clock(_ time: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    /// The last run's incidents, its name and, when it stopped the server, when (for `--json`).
    package var lastRunJSON: JSONObject {
        [
            "run": record.run.map { .string($0) } ?? .null, "incidents": .array(record.incidents.map(\.json)),
            "stopped_by": stoppedBy == nil ? .null : record.run.map { .string($0) } ?? .null,
            "stopped_at": stoppedBy == nil ? .null : .double(record.since),
        ]
    }

    package var json: JSONValue {
        var object: JSONObject = [
            "name": .string(record.name), "url": .string(record.url), "state": .string(isLive ? record.state : "unknown"),
            "last_state": .string(record.state), "since": .double(record.since), "reason": .string(record.reason),
            "restarts": .int(record.restarts), "supervised": .bool(record.supervised), "log": record.log.map { .string($0) } ?? .null,
            "version": record.version.map { .string($0) } ?? .null, "gpu": record.gpu.map { .string($0) } ?? .null,
            "vram_total": record.vramTotal.map { .int(Int($0)) } ?? .null, "vram_free": record.vramFree.map { .int(Int($0)) } ?? .null,
            "in_flight": .int(inFlight), "live": .bool(isLive), "updated_at": .double(record.updatedAt),
        ]
        for (key, value) in lastRunJSON { object[key] = value }
        return .object(object)
    }
}

/// A `comfyq run` as `status` shows it: live or not, paused or not.
package struct RunnerView {
    package var record: RunnerRecord
    package var isLive: Bool

    package static func read(_ queue: Queue, now: Double) throws -> [RunnerView] {
        let host = ProcessInfo.processInfo.hostName
        return try queue.runnerRecords().map { record in
            // A run on this machine is live while its process is; elsewhere, while it beats.
            let alive = record.host != host || isAlive(record.pid)
            return RunnerView(record: record, isLive: alive && now - record.heartbeatAt < 15)
        }
    }

    package var json: JSONValue {
        [
            "pid": .int(record.pid), "host": .string(record.host), "version": record.version.map { .string($0) } ?? .null, "started_at": .double(record.startedAt), "heartbeat_at": .double(record.heartbeatAt),
            "live": .bool(isLive), "paused": .bool(record.pausedReason != nil), "paused_reason": record.pausedReason.map { .string($0) } ?? .null,
            "paused_folder": record.pausedFolder.map { .string($0) } ?? .null, "paused_since": record.pausedSince.map { .double($0) } ?? .null,
        ]
    }
}

/// Whether process `pid` on this machine still exists.
package func isAlive(_ pid: Int) -> Bool { kill(pid_t(pid), 0) == 0 || errno == EPERM }
