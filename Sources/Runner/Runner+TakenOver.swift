import ComfyCore
import Foundation
import QueueStore

/// A run that was silent past its lease (a stopped process, a suspended machine) may find on
/// waking that another run took its items over. Those items are the other run's: this one says
/// once that it lost each, and reports nothing else of it (no done, failed or retried, no hook,
/// no output). The queue refuses its writes to them (`Queue.change` is guarded by the run),
/// and a run checks what it holds whenever its heartbeat is overdue.
extension Runner {
    /// How recording a prompt's end went.
    enum Settled: Equatable {
        case written
        /// The queue could not be written (the run pauses; see `queueFailed`).
        case unwritten
        /// The item is not this run's any more: let go (see `letGo`), nothing else to report.
        case notOurs
    }

    /// Records how a prompt this run held ended (done, failed, back to the queue). A write the
    /// queue refuses means the item is no longer this run's: it is let go, said once.
    func settle(_ flight: InFlight, _ write: () throws -> Bool) -> Settled {
        do {
            if try write() { return .written }
        } catch {
            queueFailed(error, doing: "written")
            return .unwritten
        }
        letGo(flight)
        return .notOurs
    }

    /// Whether the item of this flight is still this run's; when it is not, it is let go.
    /// (A queue that cannot be read answers "still ours": the write that follows is guarded.)
    func stillHeld(_ flight: InFlight) -> Bool {
        let standing: Queue.Standing
        do {
            standing = try queue.standing(of: flight.itemID, promptID: flight.promptID)
        } catch {
            queueFailed(error, doing: "read")
            return true
        }
        if case .held = standing { return true }
        letGo(flight, standing: standing)
        return false
    }

    /// The heartbeat is overdue by more than half a lease: another run may have taken this
    /// one's items over meanwhile.
    var silentTooLong: Bool { !inFlight.isEmpty && now - lastServerWrite > max(options.lease / 2, min(5, options.lease / 3) + 1) }

    /// After a silence (see `silentTooLong`): lets go of every item another run holds now.
    func dropTakenOver() {
        var lost = false
        for flight in inFlight.values.sorted(by: { $0.itemID < $1.itemID }) where inFlight[flight.promptID] != nil {
            if !stillHeld(flight) { lost = true }
        }
        guard lost else { return }
        refill()
        checkFinished()
    }

    /// Forgets a prompt whose item another run holds (or that ended without this run), saying
    /// so once and by whom (`standing`, when already read); the server keeps running it for the
    /// run that holds it now.
    func letGo(_ flight: InFlight, standing known: Queue.Standing? = nil) {
        let why: String
        do {
            switch try known ?? queue.standing(of: flight.itemID, promptID: flight.promptID) {
            case .takenOver(let holder): why = "taken over by the run \(holder) while this run was silent"
            case .ended(let state): why = "no longer this run's in the queue (\(state))"
            case .held: why = "no longer this run's in the queue"
            }
        } catch {
            why = "no longer this run's in the queue"
        }
        connectionCommands.yield(.forget(flight.promptID, servers[flight.server].connection))
        removeFlight(flight.promptID)
        continuation.yield(.message("\(flight.label): \(why); this run reports nothing more of it"))
    }
}
