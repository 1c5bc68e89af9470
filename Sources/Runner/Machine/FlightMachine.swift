/// Where each prompt of the run stands between its claim and its end, and what the runner must
/// do when something happens to it: a value fed inputs that returns actions, with no I/O. The
/// runner (the shell) runs the actions and feeds back what they found, so after every await the
/// question "is this prompt still wanted, and what now?" is answered here, in one place.
///
/// Taking a prompt off its server is where this matters: a stop, a stall, `comfyq cancel`.
/// The stop path: Ctrl-C twice while prompts are between claim and POST,
/// in the POST, queued or running on a server, or done there and being collected:
/// - not posted yet → back to the queue at once; the submission, when it wakes, does nothing;
/// - in the POST → when it answers, taken off the server (it got through) and settled;
/// - on the server → taken off it, then **settled**: the server is asked whether it finished
///   first. Finished → its outputs are collected (it ran: it must not run again); not finished →
///   back to the queue; no answer → left in flight in the queue for the next run to reconcile
///   with the server. Nothing runs twice, and nothing runs that the queue does not know about.
///
/// A stall or `comfyq cancel` takes one running prompt off the same way (**withdrawing**), and
/// asks the same question: finished first → collected (once: it ran, so it must not run again
/// as a retry); not finished → ended as stalled (a retry, while they last) or as cancelled; no
/// answer → the same (a stalled server's history dies with its restart; a cancelled item is
/// not run again).
struct FlightMachine: Sendable {
    enum Stage: Sendable, Equatable {
        /// Claimed, waiting in its server's submission lane.
        case claimed
        /// Its lane took it: `on_submit` hooks and tracking are under way.
        case preparing
        /// The POST is under way.
        case posting
        /// The POST failed at the connection: whether the server has it is asked once it answers.
        case uncertain
        /// The server has it: followed until it ends.
        case accepted
        /// Done on its server: its outputs are being collected.
        case collecting
        /// Done on its server, its outputs not read yet: the server stopped answering (collected
        /// again once it is up).
        case awaitingServer
        /// Done on its server, its outputs not saved yet: the run is paused (a full disk, a queue
        /// that cannot be written); collected again on resuming.
        case parked
        /// The run stopped while the server had it (or may have): taken off the server, waiting
        /// to hear whether it finished there first.
        case settling
        /// Taken off its server while the run goes on (why), waiting to hear whether it finished
        /// there first.
        case withdrawing(Withdrawal)
    }

    /// What a collection that cannot go on now waits for.
    enum CollectWait: Sendable, Equatable {
        case server
        case pause
    }

    /// Why a running prompt is taken off its server while the run goes on.
    enum Withdrawal: Sendable, Equatable {
        /// Nothing heard of it for longer than its stall timeout.
        case stalled
        /// `comfyq cancel`: the queue already says cancelled.
        case cancelled
    }

    enum Mode: Sendable, Equatable {
        case running
        /// Ctrl-C once: what is in flight finishes, nothing new is claimed.
        case draining
        /// Ctrl-C twice.
        case stopping
    }

    enum Input: Sendable, Equatable {
        case claimed(String, server: Int)
        /// Found in flight by reconciliation: on its server (or done there, to collect).
        case adopted(String, server: Int, finished: Bool)
        /// Its server's lane took it.
        case laneTook(String)
        /// `on_submit` ran (and did not skip it) and the connection follows it.
        case prepared(String, server: Int)
        /// The server answered the POST: it has the prompt.
        case posted(String, server: Int)
        /// The POST failed at the connection: the server may or may not have it.
        case postUncertain(String)
        /// After an uncertain POST, the server answered whether it has the prompt.
        case verified(String, onServer: Bool)
        /// The server says it finished (success).
        case finishedOnServer(String)
        /// Its collection cannot go on now: it waits for its server, or for the pause to end.
        case collectLater(String, CollectWait)
        /// Its server is up again, or the pause is over: collect it now.
        case collectAgain(String)
        /// Nothing heard of it for longer than its stall timeout (the clock).
        case stalled(String)
        /// The queue says cancelled (`comfyq cancel`) while its server runs it.
        case cancelledInQueue(String)
        /// After a cancel, what the server said: it had finished first, it had not, or no answer.
        case settled(String, finished: Bool?)
        /// The shell ended it (done, failed, requeued, skipped): forgotten.
        case ended(String)
        case drain
        case stop
    }

    enum Action: Sendable, Equatable {
        /// Send it down its server's lane.
        case enqueue(String, server: Int)
        /// Run `on_submit` and start following it.
        case prepare(String)
        case post(String)
        /// Record that the server has it.
        case markRunning(String, server: Int)
        /// Stop following it on its server's connection.
        case forget(String, server: Int)
        /// Back to the queue as the run stops, no attempt spent.
        case putBack([String])
        /// Back to the queue to be submitted again (no attempt spent: the server lost it).
        case submitAgain(String, reason: String)
        /// Take off the server (out of its queue, then an interrupt), then ask whether it finished
        /// first and feed `settled`.
        case cancel([String], server: Int)
        case collect(String, server: Int)
        /// Leave it in flight in the queue: the next run asks its server what became of it.
        case leaveForReconcile(String)
        /// Taken off its server after a stall, not finished there: it ends as stalled (retried
        /// while retries last).
        case endStalled(String)
        /// Taken off its server after `comfyq cancel`, not finished there: it ends cancelled.
        case endCancelled(String)
    }

    /// The prompts in flight: each one's stage and server (an index into the run's servers).
    /// Nothing is kept once a prompt ends: a run of weeks holds only what is in flight.
    private(set) var flights: [String: (stage: Stage, server: Int)] = [:]
    private(set) var mode: Mode = .running

    func stage(of promptID: String) -> Stage? { flights[promptID]?.stage }

    /// Whether new work may be claimed.
    var claims: Bool { mode == .running }

    /// Prompts the run must wait for before it ends: a POST under way, a prompt being taken off
    /// its server, an output download.
    var unsettled: [String] {
        flights.filter { [.posting, .settling, .collecting].contains($0.value.stage) || $0.value.stage.isWithdrawing }.map(\.key).sorted()
    }

    /// Prompts waiting for the pause to end, to be collected.
    var parked: [String] { flights.filter { $0.value.stage == .parked }.map(\.key).sorted() }

    /// Whether the engine's part is over: it is being collected, or waits to be.
    func isPastTheEngine(_ promptID: String) -> Bool {
        guard let stage = stage(of: promptID) else { return false }
        return [.collecting, .awaitingServer, .parked].contains(stage)
    }

    /// Whether it is being taken off its server (a stop, a stall, a cancel): an interrupt the
    /// server reports for it is the answer to that, not a failure.
    func isBeingTakenOff(_ promptID: String) -> Bool {
        guard let stage = stage(of: promptID) else { return false }
        return stage == .settling || stage.isWithdrawing
    }

    private mutating func move(_ id: String, to stage: Stage) { flights[id]?.stage = stage }

    mutating func handle(_ input: Input) -> [Action] {
        switch input {
        case .claimed(let id, let server):
            guard mode == .running, flights[id] == nil else { return [] }
            flights[id] = (.claimed, server)
            return [.enqueue(id, server: server)]

        case .adopted(let id, let server, let finished):
            guard flights[id] == nil else { return [] }
            guard mode != .stopping else { return [.leaveForReconcile(id)] }
            flights[id] = (finished ? .collecting : .accepted, server)
            return finished ? [.collect(id, server: server)] : []

        case .laneTook(let id):
            guard stage(of: id) == .claimed else { return [] }  // stopped (or ended) while it waited
            move(id, to: .preparing)
            return [.prepare(id)]

        case .prepared(let id, let server):
            switch stage(of: id) {
            case .preparing?:
                move(id, to: .posting)
                return [.post(id)]
            case nil:
                return [.forget(id, server: server)]  // taken back while its hooks ran
            default:
                return []
            }

        case .posted(let id, let server):
            switch stage(of: id) {
            case .posting?:
                move(id, to: .accepted)
                return [.markRunning(id, server: server)]
            case .settling?:
                // It got through as the run stopped.
                return [.cancel([id], server: server)]
            case nil:
                // Taken back while the POST was under way (its server went away and it was put
                // back): it must not run unrecorded.
                return [.forget(id, server: server), .cancel([id], server: server)]
            default:
                return []
            }

        case .postUncertain(let id):
            switch flights[id] {
            case (.posting, _)?:
                move(id, to: .uncertain)
                return []
            case (.settling, let server)?:
                return [.cancel([id], server: server)]
            default:
                return []
            }

        case .verified(let id, let onServer):
            guard let flight = flights[id], flight.stage == .uncertain else { return [] }
            if onServer {
                move(id, to: .accepted)
                return [.markRunning(id, server: flight.server)]
            }
            flights[id] = nil
            return [.forget(id, server: flight.server), .submitAgain(id, reason: "not on the server")]

        case .finishedOnServer(let id):
            guard let flight = flights[id], [.accepted, .uncertain, .settling, .posting].contains(flight.stage) || flight.stage.isWithdrawing
            else { return [] }
            move(id, to: .collecting)
            return [.collect(id, server: flight.server)]

        case .collectLater(let id, let wait):
            guard stage(of: id) == .collecting else { return [] }
            guard mode != .stopping else {
                // The run is stopping: the next run collects it.
                flights[id] = nil
                return [.leaveForReconcile(id)]
            }
            move(id, to: wait == .server ? .awaitingServer : .parked)
            return []

        case .collectAgain(let id):
            guard let flight = flights[id], [.awaitingServer, .parked].contains(flight.stage) else { return [] }
            move(id, to: .collecting)
            return [.collect(id, server: flight.server)]

        case .stalled(let id), .cancelledInQueue(let id):
            guard let flight = flights[id], flight.stage == .accepted, mode != .stopping else { return [] }
            if case .stalled = input { move(id, to: .withdrawing(.stalled)) } else { move(id, to: .withdrawing(.cancelled)) }
            return [.forget(id, server: flight.server), .cancel([id], server: flight.server)]

        case .settled(let id, let finished):
            guard let flight = flights[id] else { return [] }
            switch (flight.stage, finished) {
            case (.settling, true?), (.withdrawing, true?):
                move(id, to: .collecting)
                return [.collect(id, server: flight.server)]
            case (.settling, false?):
                flights[id] = nil
                return [.putBack([id])]
            case (.settling, nil):
                flights[id] = nil
                return [.leaveForReconcile(id)]
            case (.withdrawing(let why), _):
                flights[id] = nil
                return [why == .stalled ? .endStalled(id) : .endCancelled(id)]
            default:
                return []
            }

        case .ended(let id):
            flights[id] = nil
            return []

        case .drain:
            if mode == .running { mode = .draining }
            return []

        case .stop:
            guard mode != .stopping else { return [] }
            mode = .stopping
            var actions: [Action] = []
            var back: [String] = []
            var cancel: [Int: [String]] = [:]
            for (id, flight) in flights.sorted(by: { $0.key < $1.key }) {
                switch flight.stage {
                case .claimed, .preparing:
                    flights[id] = nil
                    back.append(id)
                    actions.append(.forget(id, server: flight.server))
                case .posting:
                    move(id, to: .settling)  // the POST's answer decides
                case .accepted, .uncertain:
                    move(id, to: .settling)
                    cancel[flight.server, default: []].append(id)
                case .collecting, .settling, .withdrawing:
                    break  // already on their way
                case .awaitingServer, .parked:
                    // Done on the server, nothing under way here: the next run collects it.
                    flights[id] = nil
                    actions.append(.leaveForReconcile(id))
                }
            }
            if !back.isEmpty { actions.append(.putBack(back)) }
            for (server, ids) in cancel.sorted(by: { $0.key < $1.key }) { actions.append(.cancel(ids, server: server)) }
            return actions
        }
    }
}

extension FlightMachine.Stage {
    var isWithdrawing: Bool {
        if case .withdrawing = self { return true }
        return false
    }
}
