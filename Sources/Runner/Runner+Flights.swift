import ComfyClient
import ComfyCore
import Foundation
import Hooks
import QueueStore

/// The shell of the flight machine: submitting a prompt down its server's lane, running what
/// `FlightMachine` decides, and settling what a stop takes off the servers.
extension Runner {
    // MARK: Submitting

    /// Submits one prompt, for its server's lane: `on_submit` hooks, then the POST. The item may
    /// stop being wanted at every await (Ctrl-C twice, a crash putting it back), so it is asked
    /// again after each, right before the POST, and after it: a prompt that got through for an
    /// item no longer wanted is taken off the server rather than left to run unrecorded.
    func submit(_ promptID: String, on server: Int) async {
        guard flights.handle(.laneTook(promptID)) == [.prepare(promptID)], let flight = inFlight[promptID] else { return }
        var workflow = flight.workflow
        if let hooks = options.hooks, hooks.wants(.submit) {
            let resolver = AddressResolver(workflow: workflow)
            let decision = await hooks.submit(.prompt(.submit, hookPrompt(flight), elapsed: 0)) { Self.problem(in: $0, resolver: resolver) }
            if let script = decision.skippedBy {
                skip(promptID, by: script)  // (nothing, if Ctrl-C took it back meanwhile)
                return
            }
            if !decision.overrides.isEmpty {
                var merged = JSONObject()
                for override in decision.overrides { for (key, value) in override.values { merged[key] = value } }
                workflow = workflow.applying(.object(merged), addresses: [:])
                overridden(promptID, decision: decision, merged: merged, resolver: resolver, workflow: workflow)
            }
        }
        if !InputFile.all(in: inFlight[promptID]?.parameters ?? [:]).isEmpty {
            guard case .ready(let uploaded) = await uploadInputs(promptID, workflow: workflow, on: server) else { return }
            workflow = uploaded
        }
        let slot = servers[server]
        await slot.connection.track(promptID, plan: PromptPlan(workflow))
        // Still wanted after the hooks and the tracking? Asked right before the POST.
        let next = flights.handle(.prepared(promptID, server: server))
        guard next == [.post(promptID)] else {
            apply(next)
            return
        }
        posting.insert(promptID)
        defer { posting.remove(promptID) }
        do {
            _ = try await slot.api.submit(workflow, promptID: promptID, clientID: slot.connection.clientID)
        } catch {
            if submitFailed(promptID, error) { await perform(flights.handle(.postUncertain(promptID))) }
            return
        }
        // Accepted, or (taken back during the POST) taken off the server again.
        await perform(flights.handle(.posted(promptID, server: server)))
    }

    /// Runs what the flight machine decided, but for the cancels, which it returns: they await
    /// the server (`perform` runs them).
    @discardableResult
    func apply(_ actions: [FlightMachine.Action]) -> [(ids: [String], server: Int)] {
        var cancels: [(ids: [String], server: Int)] = []
        for action in actions {
            switch action {
            case .enqueue(let promptID, let server):
                servers[server].lane.yield(promptID)
            case .prepare, .post:
                break  // the submission goes on: it asked
            case .markRunning(let promptID, let server):
                connectionCommands.yield(.confirm(promptID, servers[server].connection))
                submitted(promptID)
            case .forget(let promptID, let server):
                connectionCommands.yield(.forget(promptID, servers[server].connection))
            case .putBack(let promptIDs):
                for promptID in promptIDs {
                    guard let flight = inFlight.removeValue(forKey: promptID) else { continue }
                    record { try queue.requeue(flight.itemID, promptID: promptID, error: StopReason.stoppedByUser.description, now: wallClock) }
                }
            case .submitAgain(let promptID, let reason):
                guard let flight = inFlight.removeValue(forKey: promptID) else { continue }
                requeue(flight, reason: "\(flight.uncertain ?? "the submission failed"): \(reason); submitting again")
            case .cancel(let promptIDs, let server):
                cancels.append((promptIDs, server))
            case .collect(let promptID, let server):
                let api = servers[server].api
                spawn { await self.collect(promptID, api: api) }
            case .endStalled(let promptID):
                guard let flight = inFlight[promptID] else { continue }
                end(promptID, .stalled(seconds: Int(flight.stallTimeout), server: servers[flight.server].name))
            case .endCancelled(let promptID):
                // The queue already says cancelled.
                guard let flight = removeFlight(promptID) else { continue }
                continuation.yield(.message("\(flight.label): cancelled; taken off \(servers[flight.server].name)"))
            case .leaveForReconcile(let promptID):
                guard let flight = inFlight.removeValue(forKey: promptID) else { continue }
                connectionCommands.yield(.forget(promptID, servers[flight.server].connection))
                continuation.yield(
                    .message("\(flight.label): left in flight on \(servers[flight.server].name) as the run stopped; the next run asks it what became of the prompt"))
            }
        }
        return cancels
    }

    /// `apply`, then the cancels, each settled.
    func perform(_ actions: [FlightMachine.Action]) async {
        for cancel in apply(actions) {
            await settle(cancel.ids, on: cancel.server, why: stopped ? StopReason.stoppedByUser.description : "it got through after it was taken back")
        }
    }

    /// Takes prompts off their server, then asks whether each finished there first, once it has
    /// left the server's queue: that answer (or none) goes to the machine. Every call is bounded
    /// by the server's short probe timeout, so a server that hangs cannot hold the stop.
    func settle(_ promptIDs: [String], on server: Int, why: String) async {
        let api = servers[server].probeAPI
        await cancelOnServer(promptIDs, on: server, api: api, why: why)
        for promptID in promptIDs {
            var finished: Bool?
            do {
                for attempt in 0..<20 where finished == nil {
                    switch try await api.state(of: promptID, jobs: servers[server].jobs) {
                    case .ended(.success): finished = true
                    case .ended, .unknown: finished = false
                    case .queued, .running: if attempt < 19 { try? await Task.sleep(for: .milliseconds(100)) }
                    }
                }
            } catch {
                finished = nil  // no answer: the next run asks
            }
            apply(flights.handle(.settled(promptID, finished: finished)))
        }
        refill()
        checkFinished()
    }

    /// Takes prompts off a server: one `POST /api/jobs/cancel` where it has the jobs API (atomic:
    /// no other prompt can be hit), else out of its queue first (so none can start), then an
    /// interrupt aimed at each. One way for Ctrl-C, stalls and late submissions.
    func cancelOnServer(_ promptIDs: [String], on server: Int, api: ComfyAPI, why: String) async {
        do {
            try await api.cancel(promptIDs, jobs: servers[server].jobs)
        } catch {
            continuation.yield(.message("\(api.name): could not cancel \(promptIDs.count) prompt\(promptIDs.count == 1 ? "" : "s") (\(why)): \(error)"))
        }
    }

    /// Records what `on_submit` changed. An override replaces the item's own parameter for the
    /// same input however either was written (`KSampler.seed` and `3.seed` are one input), so
    /// the sidecar, `{seed}` and the template show what was really submitted.
    func overridden(_ promptID: String, decision: SubmitDecision, merged: JSONObject, resolver: AddressResolver, workflow: Workflow) {
        guard var flight = inFlight[promptID] else { return }
        func input(_ written: String) -> String? {
            guard case .success(let address) = resolver.resolve(written) else { return nil }
            return address.nodeID + "\u{0}" + address.input
        }
        let replaced = Set(merged.keys.compactMap(input))
        var parameters = JSONObject()
        for (key, value) in flight.parameters.objectValue ?? JSONObject() where input(key).map({ !replaced.contains($0) }) ?? true {
            parameters[key] = value
        }
        for (key, value) in merged { parameters[key] = value }
        flight.parameters = .object(parameters)
        flight.workflow = workflow
        flight.modelKey = ModelKey(workflow)  // a hook may have changed what it loads
        flight.hookOverrides = decision.record
        inFlight[promptID] = flight
    }

    /// `on_submit` returned false: the item is cancelled with the script's name, not run.
    func skip(_ promptID: String, by script: String) {
        guard let flight = removeFlight(promptID) else { return }
        let settled = settle(flight) {
            try queue.finish(flight.itemID, promptID: promptID, state: .cancelled, error: "skipped by \(script) (on_submit returned false)", now: wallClock)
        }
        if settled != .notOurs {
            skipped += 1
            continuation.yield(.skipped(item: flight.label, by: script))
        }
        refill()
        checkFinished()
    }

    func submitted(_ promptID: String) {
        guard let flight = inFlight[promptID] else { return }
        record { try queue.markRunning(flight.itemID, promptID: promptID, now: wallClock) }
    }

    /// A POST that failed; returns whether it failed at the connection (the server may have it).
    func submitFailed(_ promptID: String, _ error: ComfyAPIError) -> Bool {
        guard let flight = inFlight[promptID] else { return false }
        connectionCommands.yield(.forget(promptID, servers[flight.server].connection))
        switch error.kind {
        case .rejected:
            // Validation errors fail at once: retrying the same prompt cannot help, unless the
            // server lost the input files we uploaded to it.
            if lostInputs(promptID, error) { return false }
            end(promptID, .rejected(error))
            return false
        case .connectionRefused, .hostNotFound, .timedOut, .transport:
            // The POST may or may not have reached the server (it can die, or the answer be
            // lost, after it queued the prompt). Ask it once it answers again (`verifySubmissions`);
            // if its process dies first, the prompt goes back to the queue with everything else
            // that was there. Either way no retry is spent: the server went away, not the item.
            inFlight[promptID]?.uncertain = "\(error)"
            servers[flight.server].health.submissionFailed(at: now, attempts: flight.attempts)
            servers[flight.server].probes.yield()
            return true
        default:
            // 5xx and the like: cool the server down a little and try again, while retries last.
            servers[flight.server].health.submissionFailed(at: now, attempts: flight.attempts)
            end(promptID, .serverError(error))
        }
        return false
    }
}
