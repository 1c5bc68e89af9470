import Foundation
import QueueStore
import Serve

/// The servers and runs as `status` and `servers` print them.
extension ServerView {
    /// The servers section of `status`: the servers a run is using now; and, of those no run is
    /// using, what happened to them in the last run that did (restarts, given up, poison prompts).
    static func section(_ servers: [ServerView], now: Double) -> String {
        let live = servers.filter(\.isLive)
        var out = ""
        if !live.isEmpty {
            out += "\nSERVER                   STATE        SINCE    IN FLIGHT  RESTARTS  REASON\n"
            for server in live { out += line(server, now: now) + "\n" }
        }
        let past = servers.filter { !$0.isLive && !$0.record.incidents.isEmpty }
        if !past.isEmpty {
            out += "\nLAST RUN'S INCIDENTS\n"
            for server in past {
                out += "\(server.record.name): \(server.lastRunSummary)\n"
                for incident in server.record.incidents.suffix(5) { out += "  \(Self.incidentLine(incident))\n" }
            }
        }
        return out
    }

    static func line(_ server: ServerView, now: Double) -> String {
        let record = server.record
        return "\(ProgressFormat.pad(record.name, 24)) \(ProgressFormat.pad(record.state, 12)) \(ProgressFormat.pad(QueueDocuments.duration(now - record.since), 8)) "
            + "\(ProgressFormat.pad(String(server.inFlight), 9, right: true))  \(ProgressFormat.pad(String(record.restarts), 8, right: true))  \(record.reason)"
    }

}

extension RunnerView {
    /// `PAUSED: run 4242 since 3m05s: …; resumes by itself once there is room in FOLDER`
    static func pausedLines(_ runners: [RunnerView], now: Double) -> String {
        var out = ""
        for runner in runners where runner.isLive {
            guard let reason = runner.record.pausedReason else { continue }
            let since = runner.record.pausedSince.map { " since \(QueueDocuments.duration(now - $0))" } ?? ""
            out += "PAUSED: run \(runner.record.pid)\(since): \(reason); resumes by itself once there is room in \(runner.record.pausedFolder ?? "?")\n"
        }
        return out
    }

    /// `RUNS` and a line per live run, when more than one shares the queue (one is the usual case).
    static func section(_ runners: [RunnerView], now: Double) -> String {
        let live = runners.filter(\.isLive)
        guard live.count > 1 else { return "" }
        var out = "\nRUNS\n"
        for runner in live {
            let version = runner.record.version.map { " comfyq \($0)," } ?? ""
            out += "  \(runner.record.host) pid \(runner.record.pid):\(version) up \(QueueDocuments.duration(now - runner.record.startedAt)), beat \(QueueDocuments.duration(max(0, now - runner.record.heartbeatAt))) ago\n"
        }
        return out
    }

}
