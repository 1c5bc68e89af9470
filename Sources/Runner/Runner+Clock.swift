import ComfyClient
import ComfyCore
import Foundation

/// The runner's clock: what `Watchdog` finds to do each tick (verify, collect again, stall,
/// cancel), server supervision and the heartbeat, the pause, then refilling.
///
/// The clock only decides: what needs the network (asking a server, cancelling on it, collecting,
/// taking over another run's items) is returned as `ClockWork` and run beside the clock by the
/// run's task group, so the next tick, and with it the heartbeat, is never behind a request
/// (a hung server answering nothing for a minute must not make a live run look gone). A prompt
/// has at most one piece of clock work under way; each checks the state again after its await.
/// Stalls and cancels go through the flight machine, which takes the prompt off its server and
/// asks whether it finished first (see `FlightMachine.Withdrawal`).
extension Runner {
    /// Network work the clock decided on, run beside it.
    enum ClockWork: Sendable {
        case verify(String)
        /// Taken off its server (a stall, `comfyq cancel`), then settled: collected if it
        /// finished first, else ended as stalled or cancelled.
        case withdraw(String, server: Int, FlightMachine.Withdrawal)
        /// The pause is over: what waited is collected.
        case resume(Pause)
        /// Items of runs that have gone are taken over.
        case adopt

        /// The prompt it is about, if any (at most one piece of work a prompt).
        var promptID: String? {
            switch self {
            case .verify(let id), .withdraw(let id, _, _): id
            case .resume, .adopt: nil
            }
        }
    }

    func tick() -> [ClockWork] {
        guard phase < .ended else { return [] }
        // The heartbeat first: nothing below waits on a server.
        superviseServers()
        if silentTooLong { dropTakenOver() }
        refreshDefinitionsIfDue()
        // Items cancelled with `comfyq cancel` while their server runs them.
        let running = inFlight.keys.filter { flights.stage(of: $0) == .accepted }.sorted()
        var cancelled: Set<String> = []
        do {
            cancelled = try queue.cancelled(among: running)
        } catch {
            queueFailed(error, doing: "read")
        }
        let prompts = inFlight.values.filter { !clockBusy.contains($0.promptID) }.map { flight in
            Watchdog.Prompt(
                id: flight.promptID, server: flight.server, lastHeard: flight.lastHeard, stallTimeout: flight.stallTimeout,
                collecting: flights.stage(of: flight.promptID) != .awaitingServer && isCollecting(flight.promptID), uncertain: flight.uncertain != nil,
                awaitingServer: flights.stage(of: flight.promptID) == .awaitingServer,
                cancelled: cancelled.contains(flight.promptID))
        }
        let serverUp = servers.map { $0.health.state == .up }
        var work: [ClockWork] = []
        for action in Watchdog.tick(prompts, serverUp: { serverUp[$0] }, paused: paused != nil, now: now) {
            switch action {
            case .verify(let promptID):
                guard let flight = inFlight[promptID], flight.uncertain != nil, servers[flight.server].health.state == .up else { continue }
                work.append(.verify(promptID))
            case .collectAgain(let promptID):
                guard let flight = inFlight[promptID], servers[flight.server].health.state == .up, paused == nil else { continue }
                apply(flights.handle(.collectAgain(promptID)))  // a child of the run collects it
            case .cancel(let promptID):
                for cancel in apply(flights.handle(.cancelledInQueue(promptID))) {
                    work += cancel.ids.map { .withdraw($0, server: cancel.server, .cancelled) }
                }
            case .stalled(let promptID):
                guard let flight = inFlight[promptID], now - flight.lastHeard > flight.stallTimeout else { continue }
                for cancel in apply(flights.handle(.stalled(promptID))) {
                    work += cancel.ids.map { .withdraw($0, server: cancel.server, .stalled) }
                }
            }
        }
        for item in work {
            if let promptID = item.promptID { clockBusy.insert(promptID) }
        }
        writeUnwrittenProgress()
        if let resumed = pauseIsOver() { work.append(.resume(resumed)) }
        if adoptionIsDue() { work.append(.adopt) }
        refill()
        checkFinished()
        return work
    }

    /// Runs one piece of clock work (from the tick loop's task group).
    func perform(_ work: ClockWork) async {
        defer { if let promptID = work.promptID { clockBusy.remove(promptID) } }
        switch work {
        case .verify(let promptID):
            guard let flight = inFlight[promptID] else { return }
            await verify(promptID, api: servers[flight.server].probeAPI)
        case .withdraw(let promptID, let server, let why):
            // Off the server, then settled by the machine (with the short probing timeout: a
            // hung server does not hold it for a minute).
            await settle([promptID], on: server, why: why == .stalled ? "stalled" : "cancelled")
            // Two stalls in a row: the server is wedged (a supervised one is restarted), whether
            // or not the prompt had finished.
            if why == .stalled { perform(servers[server].health.promptStalled(at: now), on: server) }
        case .resume(let pause):
            await resume(after: pause)
        case .adopt:
            await reconcile()
            adopting = false
        }
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
