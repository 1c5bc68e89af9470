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

/// Pre-flight inside a run: each server's node definitions are fetched when it first answers
/// (and again while items are held, and when it comes back), dispatch keeps off a server what
/// it cannot run, and items no server can run are *held*: not submitted, not failed, shown with
/// their reason, and released as soon as a server can run them.
extension Runner {
    /// Pre-flight is on, and this server's definitions are still to be fetched (or fetched again).
    func needsDefinitions(_ index: Int) -> Bool {
        guard options.preflight != nil, case .waiting = servers[index].preflight else { return false }
        return true
    }

    /// The cache to fetch the server's definitions through, when the next probe should.
    func definitionsCache(for index: Int) -> ObjectInfoCache? {
        needsDefinitions(index) || servers[index].definitionsDue ? options.preflight : nil
    }

    /// The definitions a probe brought (or why it could not).
    func received(_ definitions: Result<NodeDefinitionsSource, ComfyAPIError>, on index: Int) {
        let again = servers[index].definitionsDue
        servers[index].definitionsDue = false
        switch (definitions, servers[index].preflight) {
        case (.success(let source), .checked(let old, _)) where again:
            // Fetched again: what it can run is judged afresh (a checkpoint copied in, a node installed).
            servers[index].preflight = .checked(source, unrunnable: [:])
            if source.definitions.count != old.definitions.count {
                continuation.yield(.message("\(servers[index].name): \(source.definitions.count) node types known now (pre-flight)"))
            }
            judgeHolds()
        case (.success(let source), .waiting):
            servers[index].preflight = .checked(source, unrunnable: [:])
            continuation.yield(.message("\(servers[index].name): \(source.definitions.count) node types known (pre-flight)"))
            judgeHolds()
        case (.failure(let error), .waiting):
            servers[index].preflight = .skipped("\(error)")
            continuation.yield(.message("\(servers[index].name): pre-flight skipped: \(error)"))
        default:
            break  // a failed refresh keeps what it had
        }
    }

    /// Every server's definitions are known: what no server can run can be told.
    var everyServerChecked: Bool {
        options.preflight != nil && !servers.isEmpty && servers.allSatisfy { if case .checked = $0.preflight { true } else { false } }
    }

    /// The check at the start of a run, over every pending and held item: what no server can
    /// run is held, what only some servers can run goes only to them (noted once).
    func preflightAtStart() {
        phase = max(phase, .running)  // from now on, new definitions judge what is held
        let checked = checkedServers()
        guard !checked.isEmpty else { return }
        if everyServerChecked {
            judgeHolds(atStart: true)
            return
        }
        let report: PreflightReport
        do {
            report = try check(states: [.pending], against: checked).report
        } catch {
            queueFailed(error, doing: "read")
            return
        }
        announce(report, checked: checked, evenWithErrors: false)
        // A server still to come up may run what these cannot (its own check decides then), and
        // one whose definitions could not be had is given them: neither is "no server".
        let undecided = servers.indices.filter { !checked.map(\.0).contains($0) }.map { servers[$0].name }
        for error in report.errors {
            continuation.yield(.message("pre-flight: \(error) (left to \(undecided.joined(separator: ", ")), not checked yet)"))
        }
    }

    /// The notes of the check at the start, and how many items it checked (when nothing was
    /// found that no server gets past, unless `evenWithErrors`: those are held and said so).
    private func announce(_ report: PreflightReport, checked: [(Int, NodeDefinitionsSource)], evenWithErrors: Bool) {
        for note in report.notes { continuation.yield(.message("pre-flight: \(note)")) }
        if report.errors.isEmpty || evenWithErrors, report.checkedItems > 0 {
            continuation.yield(.message("pre-flight: \(report.checkedItems) pending items checked against \(checked.map { servers[$0.0].name }.joined(separator: ", "))"))
        }
    }

    /// The servers whose definitions are known, with them.
    func checkedServers() -> [(Int, NodeDefinitionsSource)] {
        servers.indices.compactMap { index in
            guard case .checked(let source, _) = servers[index].preflight else { return nil }
            return (index, source)
        }
    }

    /// Once every server's definitions are known: holds the pending items (of `jobIDs`, else of
    /// every job of the run) that no server can run, with the first reason, and releases the
    /// held ones some server can run now. Each server's unrunnable groups of these jobs are set
    /// on the way. `atStart`: say what was checked.
    func judgeHolds(only jobIDs: Set<Int64>? = nil, atStart: Bool = false) {
        guard everyServerChecked, phase >= .running else { return }
        let checked = checkedServers()
        let checkedJobs: [(id: Int64, label: String)]
        let report: PreflightReport
        let held: [Int64: Set<Int>]
        do {
            (report, held, checkedJobs) = try check(states: [.pending, .held], only: jobIDs, against: checked)
        } catch {
            queueFailed(error, doing: "read")
            return
        }
        if atStart { announce(report, checked: checked, evenWithErrors: true) }
        for (index, source) in checked {
            guard case .checked(_, var unrunnable) = servers[index].preflight else { continue }
            for job in checkedJobs { unrunnable[job.id] = [] }
            for group in report.unrunnable[servers[index].name] ?? [] { unrunnable[group.jobID, default: []].insert(group.modelKey) }
            servers[index].preflight = .checked(source, unrunnable: unrunnable)
        }
        for job in checkedJobs {
            let blocked = report.blocked[job.id] ?? [:]
            let wasHeld = held[job.id] ?? []
            var stillBlocked = Set<Int>()
            for indices in blocked.values { stillBlocked.formUnion(indices) }
            let release = wasHeld.subtracting(stillBlocked).sorted()
            record {
                for (reason, indices) in blocked.sorted(by: { $0.value[0] < $1.value[0] }) {
                    let count = try queue.hold(jobID: job.id, indices: indices.filter { !wasHeld.contains($0) }, reason: reason, now: wallClock)
                    if count > 0 { continuation.yield(.held(job: job.label, items: count, reason: reason)) }
                }
                let count = try queue.release(jobID: job.id, indices: release, now: wallClock)
                if count > 0 { continuation.yield(.released(job: job.label, items: count)) }
                return true
            }
        }
        countHeld()
    }

    /// How many items of the run's jobs are held now (a run fetches definitions again while any are).
    func countHeld() {
        do {
            heldItems = try queue.held().filter { options.jobIDs?.contains($0.key) ?? true }.values.reduce(0) { $0 + $1.count }
        } catch {
            queueFailed(error, doing: "read")
        }
    }

    /// Each server's definitions are fetched again now and then: every `definitionsRefresh`
    /// while items are held (a checkpoint copied in, a custom node installed releases them),
    /// twenty times as seldom otherwise (a checkpoint renamed or deleted holds what needs it,
    /// instead of every such item failing at its submission).
    func refreshDefinitionsIfDue() {
        let interval = heldItems > 0 ? options.definitionsRefresh : options.definitionsRefresh * 20
        guard options.preflight != nil, now - lastDefinitionsRefresh >= interval else { return }
        lastDefinitionsRefresh = now
        for index in servers.indices where servers[index].health.state == .up {
            guard case .checked = servers[index].preflight else { continue }
            servers[index].definitionsDue = true
            servers[index].probes.yield()
        }
    }

    /// Checks the items in `states` of this run's jobs (or of `only`) against `servers`, a page
    /// of each job at a time (memory is one page's, whatever the queue holds). Returns the
    /// report, per job which of its items are held, and the jobs checked.
    func check(states: [ItemState], only jobIDs: Set<Int64>? = nil, against servers: [(Int, NodeDefinitionsSource)]) throws
        -> (report: PreflightReport, held: [Int64: Set<Int>], jobs: [(id: Int64, label: String)])
    {
        var report = PreflightReport(servers: servers.map { (self.servers[$0.0].name, $0.1.definitions) })
        var held: [Int64: Set<Int>] = [:]
        var jobs: [(id: Int64, label: String)] = []
        for summary in try queue.jobs() where (jobIDs?.contains(summary.id) ?? true) && (options.jobIDs?.contains(summary.id) ?? true) {
            guard states.contains(where: { (summary.counts[$0] ?? 0) > 0 }), let stored = try queue.definition(jobID: summary.id) else { continue }
            // A job whose stored graph cannot be read fails its items when they are claimed, saying why.
            guard let json = try? JSONValue(parsing: stored.workflow), let workflow = try? Workflow(json: json),
                let settings = try? JobSettings(json: JSONValue(parsing: stored.spec))
            else { continue }
            jobs.append((summary.id, summary.name))
            var first = 0
            while let page = try pageOfItems(states: states, jobID: summary.id, from: first) {
                first = page.next
                held[summary.id, default: []].formUnion(page.items.filter { $0.state == .held }.map(\.index))
                report.add(
                    PreflightJob(
                        label: summary.name, id: summary.id, workflow: workflow, addresses: settings.addresses,
                        items: page.items.compactMap { item in
                            // An item whose parameters cannot be read fails when it is claimed, saying why.
                            guard let parameters = (try? JSONValue(parsing: item.parameters))?.objectValue else { return nil }
                            return PreflightJob.Item(index: item.index, parameters: parameters, modelKey: item.modelKey.map(ModelKey.init))
                        }))
            }
        }
        report.finish()
        return (report, held, jobs)
    }

    /// The next (up to) 1,000 items in `states` of a job from index `first` on, and where the
    /// page after them starts; nil when there are none.
    private func pageOfItems(states: [ItemState], jobID: Int64, from first: Int) throws -> (items: [ItemRow], next: Int)? {
        let items = try queue.items(states: states, jobID: jobID, indices: first..<Int.max, limit: 1_000)
        guard let last = items.last else { return nil }
        return (items, last.index + 1)
    }

    /// The dispatch groups server `index` must not be given: those none of whose items its
    /// definitions accept. Jobs not judged yet are judged now (once each): against every server
    /// at once when all are known (holding what none can run), else against this one.
    func excludedGroups(_ groups: [DispatchPolicy.Group], for index: Int) -> Set<DispatchPolicy.Group.ID> {
        guard case .checked(_, let known) = servers[index].preflight else { return [] }
        let fresh = Set(groups.map(\.jobID)).filter { known[$0] == nil }
        if !fresh.isEmpty && everyServerChecked { judgeHolds(only: fresh) }
        guard case .checked(let source, var unrunnable) = servers[index].preflight else { return [] }
        for jobID in Set(groups.map(\.jobID)) where unrunnable[jobID] == nil {
            do {
                let report = try check(states: [.pending], only: [jobID], against: [(index, source)]).report
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
}
