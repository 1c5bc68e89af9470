/// What the runner's clock finds to do about the prompts it holds, and what a server going away
/// means for each of them: pure decisions over what the runner knows, fed the time, with no I/O.
/// The runner (the shell) gathers the facts, asks, and runs the answers.
struct Watchdog: Sendable {
    /// What the clock needs to know of one prompt in flight.
    struct Prompt: Sendable, Equatable {
        var id: String
        var server: Int
        /// When anything was last heard of it.
        var lastHeard: Double
        /// How long silence may last before it counts as stalled.
        var stallTimeout: Double
        /// Its outputs are being collected: the engine's part is over.
        var collecting = false
        /// Its POST failed at the connection: whether the server has it is not known yet.
        var uncertain = false
        /// Done on its server, but its outputs could not be read as the server went away.
        var awaitingServer = false
        /// Its item was cancelled (`comfyq cancel`) while the server has it.
        var cancelled = false
    }

    enum Action: Sendable, Equatable {
        /// Ask its server whether it has the prompt (queued, running or in its history).
        case verify(String)
        /// Read its history and save its outputs again: its server answers again.
        case collectAgain(String)
        /// Nothing heard for too long: take it off its server and end it as stalled.
        case stalled(String)
        /// Its item was cancelled: take it off its server and forget it.
        case cancel(String)
    }

    /// One tick: in this order, prompts whose item was cancelled are taken off their server,
    /// uncertain POSTs whose server is up are verified, outputs left behind by a server that went
    /// away are collected once it is up (not while paused), and prompts silent past their stall
    /// timeout are stalled. A prompt being collected, awaiting its server or not known to be on
    /// the server is never stalled: silence is expected there. (The shell marks `cancelled` only
    /// on prompts the server has accepted and still runs.)
    static func tick(_ prompts: [Prompt], serverUp: (Int) -> Bool, paused: Bool, now: Double) -> [Action] {
        let ordered = prompts.sorted { $0.id < $1.id }
        var actions: [Action] = ordered.filter(\.cancelled).map { .cancel($0.id) }
        let prompts = ordered.filter { !$0.cancelled }
        for prompt in prompts where prompt.uncertain && serverUp(prompt.server) { actions.append(.verify(prompt.id)) }
        if !paused {
            for prompt in prompts where prompt.awaitingServer && serverUp(prompt.server) { actions.append(.collectAgain(prompt.id)) }
        }
        for prompt in prompts
        where !prompt.collecting && !prompt.uncertain && !prompt.awaitingServer && now - prompt.lastHeard > prompt.stallTimeout {
            actions.append(.stalled(prompt.id))
        }
        return actions
    }

    // MARK: History after success

    /// What to do after one read of a finished prompt's history.
    enum HistoryStep: Sendable, Equatable {
        /// Its outcome is there: save the outputs.
        case collect
        /// Not written yet (ComfyUI writes it just before the end message): read again after this long.
        case readAgain(after: Double)
        /// The server stopped answering with the outputs on it: collected again once it is up.
        case awaitServer
        /// The server answers but has no outcome for it: the item fails (no history).
        case noHistory
    }

    /// How many times a finished prompt's history is read before giving up.
    static let historyReads = 20

    /// `attempt` counts from 0; `hasOutcome`: the history holds the prompt's outcome;
    /// `answered`: the server answered the last read.
    static func afterHistoryRead(attempt: Int, hasOutcome: Bool, answered: Bool) -> HistoryStep {
        if hasOutcome { return .collect }
        if attempt + 1 < historyReads { return .readAgain(after: min(1, Double(attempt + 1) / 20)) }
        return answered ? .noHistory : .awaitServer
    }

    // MARK: Crashes

    /// Per item: the server crashes it was running at.
    private(set) var crashes: [Int64: Int] = [:]

    /// What is on a server that went away, as the runner knows it.
    struct Stranded: Sendable, Equatable {
        var id: String
        var itemID: Int64
        var startedAt: Double
        /// The server said it began running it (any phase past queued).
        var started: Bool
        var collecting: Bool
    }

    enum Verdict: Sendable, Equatable {
        /// Back to the queue, no retry spent: a server going away is no fault of the item.
        case submitAgain(String)
        /// It was running at its server's second crash: it fails, and does not crash-loop the server.
        case poison(String)
    }

    /// A server went away with these prompts (`crashed`: its process died or was killed as
    /// wedged, not stopped by us). The one it was running, if it crashed, counts a crash: the one
    /// it said it had started, else the oldest (ComfyUI runs its queue in order, and a crash can
    /// come before any message about the prompt gets out); prompts being collected are not
    /// suspects. At an item's second crash it is a poison prompt. Verdicts in start order.
    mutating func serverWentAway(_ prompts: [Stranded], crashed: Bool) -> [Verdict] {
        let ordered = prompts.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        let suspects = ordered.filter { !$0.collecting }
        let culprit = crashed ? (suspects.first(where: \.started) ?? suspects.first)?.id : nil
        return ordered.map { prompt in
            guard prompt.id == culprit else { return .submitAgain(prompt.id) }
            crashes[prompt.itemID, default: 0] += 1
            return crashes[prompt.itemID, default: 0] >= 2 ? .poison(prompt.id) : .submitAgain(prompt.id)
        }
    }
}
