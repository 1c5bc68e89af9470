import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore
import Synchronization

/// Reconciling what a previous run left in flight, and building what the runner keeps about a
/// claimed item.
extension Runner {
    // MARK: Reconciling

    /// Items a previous run left in flight (or this run, when a queue write was lost): ask their
    /// servers what became of them. Prompts this run follows are left alone.
    func reconcile() async {
        let left: [ItemRow]
        do {
            // What a gone run left (taken over now), and what this run holds in the queue but
            // not here (a write it could not confirm while the queue failed).
            let adopted = try queue.adoptOrphans(lease: options.lease, now: wallClock, isAlive: Self.isAlive, local: Self.isRunning)
            let taken = Set(adopted.map(\.id))
            let own = try queue.inFlight().filter { $0.runner == owner && !taken.contains($0.id) }
            left = (adopted + own).filter { $0.promptID.map { inFlight[$0] == nil } ?? true }
        } catch {
            continuation.yield(.message("queue: cannot read the items in flight: \(error)"))
            return
        }
        guard !left.isEmpty else { return }
        continuation.yield(.message("reconciling \(left.count) item\(left.count == 1 ? "" : "s") left in flight by a previous run"))
        // What each server has queued or running, asked once (one /api/jobs list on 0.38).
        var unfinished: [String: Set<String>] = [:]
        for item in left {
            guard let promptID = item.promptID else { continue }
            let index = servers.firstIndex { $0.name == item.server }
            let api = index.map { servers[$0].api } ?? item.server.flatMap { URL(string: $0) }.map { ComfyAPI(baseURL: $0) }
            guard let api else {
                record { try queue.requeue(item.id, promptID: promptID, error: "its server is unknown", now: wallClock) }
                continue
            }
            let found: PromptState
            do {
                let jobs = index.map { servers[$0].jobs } ?? false
                if unfinished[api.name] == nil { unfinished[api.name] = try await api.unfinished(jobs: jobs) }
                found = unfinished[api.name]?.contains(promptID) == true ? .running : try await api.state(of: promptID, jobs: jobs)
            } catch {
                // The server is not there: the prompt goes to whichever server can take it.
                record { try queue.requeue(item.id, promptID: promptID, error: "\(error)", now: wallClock) }
                continue
            }
            guard let index else {
                record { try queue.requeue(item.id, promptID: promptID, error: "its server is not one of this run's: submitting again", now: wallClock) }
                continue
            }
            let stored: ClaimedItem?
            do {
                stored = try queue.claimedItem(item.id)
            } catch {
                continuation.yield(.message("queue: cannot read \(item.jobName)/\(item.index): \(error)"))
                return
            }
            guard let claimed = stored else { continue }  // removed meanwhile
            switch found {
            case .ended(.success):
                // Finished while we were away: collect it, do not run it again.
                adopt(claimed, on: index, finished: true)
            case .ended(.failed(let failure)):
                record { try queue.finish(item.id, promptID: promptID, state: .failed, error: "\(failure)", now: wallClock) }
                failed += 1
            case .ended(.interrupted):
                record { try queue.requeue(item.id, promptID: promptID, error: "interrupted on the server", now: wallClock) }
            case .queued, .running:
                // Still queued or running there: follow it again.
                adopt(claimed, on: index, finished: false)
                let plan = inFlight[promptID].map { PromptPlan($0.workflow) }
                if let plan {
                    await servers[index].connection.track(promptID, plan: plan, expectsMessages: false)
                    await servers[index].connection.confirm(promptID)
                }
            case .unknown:
                record { try queue.requeue(item.id, promptID: promptID, error: "unknown to \(api.name): submitting again", now: wallClock) }
            }
        }
    }

    /// Takes over a prompt a previous run left on its server: followed again, or collected.
    private func adopt(_ claimed: ClaimedItem, on server: Int, finished: Bool) {
        guard let promptID = claimed.item.promptID else { return }
        var flight: InFlight
        do {
            flight = try makeInFlight(claimed, on: server)
        } catch {
            record { try queue.finish(claimed.item.id, promptID: promptID, state: .failed, error: error.description, now: wallClock) }
            failed += 1
            return
        }
        inFlight[promptID] = flight
        record { try queue.markRunning(claimed.item.id, promptID: promptID, now: wallClock) }
        apply(flights.handle(.adopted(promptID, server: server, finished: finished)))
    }

    /// What the runner keeps about a claimed item: its graph with the item's parameters applied,
    /// and the job's settings. Throws, saying what, when the stored job cannot be read.
    func makeInFlight(_ claimed: ClaimedItem, on server: Int) throws(StoredJobError) -> InFlight {
        let item = claimed.item
        guard let promptID = item.promptID else { throw StoredJobError(what: "the item", reason: "has no prompt id") }
        let graph: Workflow
        let settings: JobSettings
        let parameters: JSONValue
        do {
            graph = try Workflow(json: JSONValue(parsing: claimed.workflow))
        } catch {
            throw StoredJobError(what: "the stored workflow", reason: "\(error)")
        }
        do {
            settings = try JobSettings(json: JSONValue(parsing: claimed.spec))
        } catch {
            throw StoredJobError(what: "the job's stored settings", reason: "\(error)")
        }
        do {
            parameters = try JSONValue(parsing: item.parameters)
        } catch {
            throw StoredJobError(what: "the item's stored parameters", reason: "\(error)")
        }
        let workflow = graph.applying(parameters, addresses: settings.addresses)
        var flight = InFlight(
            itemID: item.id, promptID: promptID, label: "\(item.jobName)/\(item.index)", jobName: item.jobName, index: item.index,
            attempts: item.attempts, retries: settings.retries, server: server, parameters: parameters, outputFolder: settings.output.folder,
            template: settings.output.template, workflow: workflow, modelKey: ModelKey(workflow), startedAt: now, lastHeard: now,
            stallTimeout: settings.stallTimeout, phaseSince: now)
        flight.uiWorkflow = settings.uiWorkflow
        return flight
    }
}

/// A claimed item whose stored job cannot be read (a queue damaged or edited by hand): the item
/// fails with this, and the others go on.
struct StoredJobError: Error, CustomStringConvertible {
    var what: String
    var reason: String
    var description: String { "\(what) cannot be read: \(reason)" }
}

extension Runner {
    /// This process's runs so far (each run names its items `host/pid#N`), and those running now.
    static let registry = Mutex<(made: Int, running: Set<String>)>((0, []))
    static let processPrefix = "\(ProcessInfo.processInfo.hostName)/\(getpid())#"

    /// For an owner of this process: whether that run is still going (nil: another process's).
    static func isRunning(_ owner: String) -> Bool? {
        guard owner.hasPrefix(processPrefix) else { return nil }
        return registry.withLock { $0.running.contains(owner) }
    }

    static func setRunning(_ owner: String, _ on: Bool) {
        registry.withLock {
            if on { $0.running.insert(owner) } else { $0.running.remove(owner) }
        }
    }

    /// A new name for a run's items: `host/pid#N`. The process part is what the queue's
    /// `runners` row and its heartbeat speak for; `#N` keeps two runs in one process (tests,
    /// benchmarks) from taking each other's items for their own.
    static func newOwner() -> String {
        let number = registry.withLock {
            $0.made += 1
            return $0.made
        }
        return processPrefix + String(number)
    }

    /// A run silent this long may be gone: the others wait for its lease to run out before
    /// they end (its heartbeat comes every 5 s).
    static let quiet: Double = 15

    /// Whether a run recorded in the queue may still be working: one on this machine while its
    /// process exists; one elsewhere while it beats (the caller checks the heartbeat).
    static func isAlive(_ run: RunnerRecord) -> Bool {
        guard run.host == ProcessInfo.processInfo.hostName else { return true }
        return kill(pid_t(run.pid), 0) == 0 || errno == EPERM
    }

    /// Every 5 s: items of runs that have gone meanwhile are to be taken over and reconciled
    /// (one at a time: a reconcile still under way is not started again).
    func adoptionIsDue() -> Bool {
        guard now - lastAdoption >= 5, !adopting, !draining, queueBroken == nil, paused == nil else { return false }
        lastAdoption = now
        adopting = true
        return true
    }
}
