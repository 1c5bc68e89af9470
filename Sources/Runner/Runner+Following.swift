import ComfyClient
import ComfyCore
import Foundation

/// Following prompts: what each server's connection says (connected, lost, progress,
/// previews), the engine's updates turned into events, hooks and the queue's progress columns,
/// and a prompt's end on its server handed to the flight machine.
extension Runner {
    func handle(_ event: ConnectionEvent, server: Int) async {
        // Waking from a silence: what another run took over meanwhile is its to report.
        if silentTooLong { dropTakenOver() }
        switch event {
        case .connected:
            servers[server].health.socket(open: true)
            continuation.yield(.serverState(server: servers[server].name, state: "connected"))
            refill()
        case .disconnected(let reason, let retryIn):
            servers[server].health.socket(open: false)
            // While a server is not up, its health line says why; the socket's retries are noise.
            guard servers[server].health.state == .up else { return }
            continuation.yield(.serverState(server: servers[server].name, state: "disconnected (\(reason)); reconnecting in \(String(format: "%.1f", retryIn)) s"))
        case .lost(let promptID):
            // The server restarted and lost its queue: no fault of the item, so no retry is spent.
            putBackUnspent(promptID, reason: "\(servers[server].name) no longer knows the prompt (did it restart?): submitting again")
        case .progress(let update):
            await progress(update, server: server)
        case .preview(let promptID, _, let mimeType, let image):
            await keepPreview(promptID, mimeType: mimeType, image: image)
        }
    }

    func progress(_ update: ProgressUpdate, server: Int) async {
        let promptID = update.snapshot.promptID
        guard var flight = inFlight[promptID], !isCollecting(promptID) else { return }
        flight.lastHeard = now
        flight.lastSnapshot = update.snapshot
        if let transition = update.transition {
            flight.timings[transition.from.rawValue, default: 0] += transition.duration
            flight.phaseSince = now
            continuation.yield(.transition(item: flight.label, server: servers[server].name, update: update))
            if let hooks = options.hooks, hooks.wants(.phase) {
                hooks.deliver(.prompt(.phase, hookPrompt(flight), snapshot: update.snapshot, previous: transition.from, elapsed: now - flight.startedAt, timings: flight.timings))
            }
        } else {
            continuation.yield(.progress(item: flight.label, server: servers[server].name, update: update))
            if let hooks = options.hooks, hooks.wants(.progress) {
                hooks.deliver(.prompt(.progress, hookPrompt(flight), snapshot: update.snapshot, elapsed: now - flight.startedAt))
            }
        }
        let snapshot = update.snapshot
        switch ProgressWrites.decide(sinceLastWrite: now - flight.lastProgressWrite, phaseChanged: update.transition != nil) {
        case .write: writeProgress(&flight)
        case .leaveToClock: flight.progressUnwritten = true
        case .skip: break
        }
        inFlight[promptID] = flight
        let takenOff = flights.isBeingTakenOff(promptID)
        switch snapshot.outcome {
        case .success?:
            apply(flights.handle(.finishedOnServer(promptID)))
            refill()  // the GPU is free: the next prompt may already be waiting there
        case .interrupted? where takenOff, .cancelled? where takenOff:
            // Taken off the server (a stop, a stall, a cancel) before it finished.
            apply(flights.handle(.settled(promptID, finished: false)))
            refill()
            checkFinished()
        case .failed(let failure)?:
            end(promptID, .execution(failure))
        case .interrupted?:
            end(promptID, .interrupted)
        case .cancelled?:
            end(promptID, .removedFromQueue)
        case nil:
            break
        }
    }

    /// Writes the prompt's latest progress to the queue (when, `ProgressWrites` decides).
    func writeProgress(_ flight: inout InFlight) {
        guard let snapshot = flight.lastSnapshot else { return }
        flight.lastProgressWrite = now
        flight.progressUnwritten = false
        record {
            try queue.recordProgress(
                flight.itemID, promptID: flight.promptID, phase: snapshot.phase.rawValue, step: snapshot.steps > 0 ? snapshot.step : nil,
                steps: snapshot.steps > 0 ? snapshot.steps : nil, fraction: snapshot.fraction, now: wallClock)
        }
    }

    /// Writes the progress the engine has moved on to since the last write (each tick).
    func writeUnwrittenProgress() {
        for var flight in inFlight.values where flight.progressUnwritten && !isCollecting(flight.promptID) {
            writeProgress(&flight)
            inFlight[flight.promptID] = flight
        }
    }
}
