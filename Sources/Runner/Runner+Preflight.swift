import ComfyClient
import ComfyCore
import Foundation
import QueueStore

/// Where a server stands with pre-flight in this run.
enum ServerPreflight {
    /// Its node definitions are not known yet: it gets nothing until they are.
    case waiting
    /// Its definitions; the jobs judged against them so far, each with the model keys (dispatch
    /// groups) of it that this server cannot run.
    case checked(NodeDefinitionsSource, unrunnable: [Int64: Set<ModelKey?>])
    /// Its definitions could not be had (why): it runs whatever it is given, as without pre-flight.
    case skipped(String)
}

extension Runner {
    /// Pre-flight is on, and this server's definitions are still to be fetched.
    func needsDefinitions(_ index: Int) -> Bool {
        guard options.preflight != nil, case .waiting = servers[index].preflight else { return false }
        return true
    }

    /// The cache to fetch the server's definitions through, when the next probe should.
    func definitionsCache(for index: Int) -> ObjectInfoCache? { needsDefinitions(index) ? options.preflight : nil }

    /// The definitions a probe brought (or why it could not).
    func received(_ definitions: Result<NodeDefinitionsSource, ComfyAPIError>, on index: Int) {
        guard case .waiting = servers[index].preflight else { return }
        switch definitions {
        case .success(let source):
            servers[index].preflight = .checked(source, unrunnable: [:])
            continuation.yield(.message("\(servers[index].name): \(source.definitions.count) node types known (pre-flight)"))
        case .failure(let error):
            servers[index].preflight = .skipped("\(error)")
            continuation.yield(.message("\(servers[index].name): pre-flight skipped: \(error)"))
        }
    }

    /// The check at the start of a run, over every pending item and every server whose
    /// definitions are known: lines for the problems no server gets past (the run then submits
    /// nothing), and notes for items only some servers can run, which dispatch then keeps off
    /// the others.
    func preflightAtStart() -> [String] {
        let checked = servers.indices.compactMap { index -> (Int, NodeDefinitionsSource)? in
            guard case .checked(let source, _) = servers[index].preflight else { return nil }
            return (index, source)
        }
        guard !checked.isEmpty else { return [] }
        let jobs: [PreflightJob]
        do {
            jobs = try pendingJobs()
        } catch {
            queueFailed(error, doing: "read")
            return []
        }
        let report = PreflightReport(jobs: jobs, servers: checked.map { (servers[$0.0].name, $0.1.definitions) })
        for note in report.notes { continuation.yield(.message("pre-flight: \(note)")) }
        for (index, source) in checked {
            var unrunnable: [Int64: Set<ModelKey?>] = [:]
            for job in jobs { unrunnable[job.id] = [] }
            for group in report.unrunnable[servers[index].name] ?? [] { unrunnable[group.jobID, default: []].insert(group.modelKey) }
            servers[index].preflight = .checked(source, unrunnable: unrunnable)
        }
        if report.errors.isEmpty, report.checkedItems > 0 {
            continuation.yield(.message("pre-flight: \(report.checkedItems) pending items checked against \(checked.map { servers[$0.0].name }.joined(separator: ", "))"))
        }
        // A server still to come up may run what these cannot (its own check decides then), and
        // one whose definitions could not be had is given them: neither is "no server".
        let undecided = servers.indices.filter { index in
            if needsDefinitions(index) { return true }
            if case .skipped = servers[index].preflight { return true }
            return false
        }.map { servers[$0].name }
        guard undecided.isEmpty else {
            for error in report.errors {
                continuation.yield(.message("pre-flight: \(error) (left to \(undecided.joined(separator: ", ")), not checked yet)"))
            }
            return []
        }
        return report.errors.map(\.description)
    }

    /// The jobs with pending items (of this run's jobs), with those items.
    func pendingJobs(only jobID: Int64? = nil) throws -> [PreflightJob] {
        var jobs: [PreflightJob] = []
        for summary in try queue.jobs() where (jobID == nil || summary.id == jobID) && (options.jobIDs?.contains(summary.id) ?? true) {
            let items = try queue.items(states: [.pending], jobID: summary.id)
            guard !items.isEmpty, let stored = try queue.definition(jobID: summary.id) else { continue }
            // A job whose stored graph cannot be read fails its items when they are claimed, saying why.
            guard let json = try? JSONValue(parsing: stored.workflow), let workflow = try? Workflow(json: json),
                let settings = try? JobSettings(json: JSONValue(parsing: stored.spec))
            else { continue }
            jobs.append(
                PreflightJob(
                    label: summary.name, id: summary.id, workflow: workflow, addresses: settings.addresses,
                    items: items.compactMap { item in
                        // An item whose parameters cannot be read fails when it is claimed, saying why.
                        guard let parameters = (try? JSONValue(parsing: item.parameters))?.objectValue else { return nil }
                        return PreflightJob.Item(index: item.index, parameters: parameters, modelKey: item.modelKey.map(ModelKey.init))
                    }))
        }
        return jobs
    }

    /// The dispatch groups server `index` must not be given: those none of whose items its
    /// definitions accept. Jobs it has not judged yet are judged now (once each).
    func excludedGroups(_ groups: [DispatchPolicy.Group], for index: Int) -> Set<DispatchPolicy.Group.ID> {
        guard case .checked(let source, var unrunnable) = servers[index].preflight else { return [] }
        for jobID in Set(groups.map(\.jobID)) where unrunnable[jobID] == nil {
            do {
                let report = PreflightReport(jobs: try pendingJobs(only: jobID), servers: [(servers[index].name, source.definitions)])
                unrunnable[jobID] = Set((report.unrunnable[servers[index].name] ?? []).filter { $0.jobID == jobID }.map(\.modelKey))
                for line in report.errors + report.notes { continuation.yield(.message("pre-flight: \(servers[index].name): \(line)")) }
            } catch {
                queueFailed(error, doing: "read")
                unrunnable[jobID] = []
            }
        }
        servers[index].preflight = .checked(source, unrunnable: unrunnable)
        return Set(groups.filter { unrunnable[$0.jobID]?.contains($0.modelKey) ?? false }.map(\.id))
    }

    /// Every pending group is one no server can run, and every server has been judged: the
    /// items wait for a server that can (the run does not wait with them).
    func onlyUnrunnablePending() -> Bool {
        guard options.preflight != nil, !servers.isEmpty,
            servers.allSatisfy({ if case .checked = $0.preflight { true } else { false } })
        else { return false }
        let groups: [DispatchPolicy.Group]
        do { groups = try queue.pendingGroups(jobIDs: options.jobIDs) } catch { return false }
        guard !groups.isEmpty else { return false }
        let excluded = servers.indices.map { excludedGroups(groups, for: $0) }
        return groups.allSatisfy { group in excluded.allSatisfy { $0.contains(group.id) } }
    }
}
