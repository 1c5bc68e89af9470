import ComfyClient
import ComfyCore
import Foundation

/// The runner's clock: what `Watchdog` finds to do each tick (verify, collect again, stall,
/// cancel), server supervision and the pause, then refilling.
extension Runner {
    func tick() async {
        guard !ended else { return }
        if silentTooLong { dropTakenOver() }
        refreshDefinitionsIfDue()
        awaitingServer.formIntersection(inFlight.keys)
        // Items cancelled with `comfyq cancel` while their server runs them.
        let running = inFlight.keys.filter { flights.stage(of: $0) == .accepted }.sorted()
        var cancelled: Set<String> = []
        do {
            cancelled = try queue.cancelled(among: running)
        } catch {
            queueFailed(error, doing: "read")
        }
        let prompts = inFlight.values.map { flight in
            Watchdog.Prompt(
                id: flight.promptID, server: flight.server, lastHeard: flight.lastHeard, stallTimeout: flight.stallTimeout,
                collecting: flight.collecting, uncertain: flight.uncertain != nil, awaitingServer: awaitingServer.contains(flight.promptID),
                cancelled: cancelled.contains(flight.promptID))
        }
        let serverUp = servers.map { $0.health.state == .up }
        for action in Watchdog.tick(prompts, serverUp: { serverUp[$0] }, paused: paused != nil, now: now) {
            // Each action is checked against the state as it is now: earlier ones awaited.
            switch action {
            case .verify(let promptID):
                guard let flight = inFlight[promptID], flight.uncertain != nil, servers[flight.server].health.state == .up else { continue }
                await verify(promptID, api: servers[flight.server].api)
            case .collectAgain(let promptID):
                guard let flight = inFlight[promptID], awaitingServer.contains(promptID), servers[flight.server].health.state == .up, paused == nil
                else { continue }
                awaitingServer.remove(promptID)
                await collect(promptID, api: servers[flight.server].api)
            case .cancel(let promptID):
                guard let flight = inFlight[promptID], flights.stage(of: promptID) == .accepted else { continue }
                let slot = servers[flight.server]
                connectionCommands.yield(.forget(promptID, slot.connection))
                removeFlight(promptID)  // the queue already says cancelled
                await cancelOnServer([promptID], on: flight.server, api: slot.api, why: "cancelled")
                continuation.yield(.message("\(flight.label): cancelled; taken off \(slot.name)"))
                refill()
                checkFinished()
            case .stalled(let promptID):
                guard var flight = inFlight[promptID], !flight.collecting, flight.uncertain == nil, !awaitingServer.contains(promptID),
                    now - flight.lastHeard > flight.stallTimeout
                else { continue }
                flight.interruptedByUs = true
                inFlight[promptID] = flight
                let api = servers[flight.server].api
                connectionCommands.yield(.forget(promptID, servers[flight.server].connection))
                await cancelOnServer([promptID], on: flight.server, api: api, why: "stalled")
                end(promptID, .stalled(seconds: Int(flight.stallTimeout), server: api.name))
                // Two stalls in a row: the server is wedged (a supervised one is restarted).
                perform(servers[flight.server].health.promptStalled(at: now), on: flight.server)
            }
        }
        writeUnwrittenProgress()
        superviseServers()
        await checkPause()
        await adoptIfDue()
        refill()
        checkFinished()
    }

    /// A submission whose POST failed at the connection, its server answering again: is the
    /// prompt there (follow it) or not (submit it again, with no retry spent)?
    private func verify(_ promptID: String, api: ComfyAPI) async {
        let present: Bool
        do {
            present = try await api.state(of: promptID, jobs: inFlight[promptID].map { servers[$0.server].jobs } ?? false) != .unknown
        } catch {
            return  // not answering after all: the next tick asks again
        }
        // The state may have moved while we asked (a crash put it back, Ctrl-C stopped it):
        // the machine knows, and ignores an answer that no longer applies.
        if present { inFlight[promptID]?.uncertain = nil }
        apply(flights.handle(.verified(promptID, onServer: present)))
    }
}
