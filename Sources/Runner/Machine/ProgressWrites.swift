/// When a prompt's progress goes to the queue, for `status` and `serve`. Events and hooks hear
/// every change as it happens; the queue hears a phase change at once unless the last write
/// was under `phaseInterval` ago, and then from the clock a tick later (unless the prompt ends
/// first and its end says it all); steps every `stepInterval`. A prompt that runs in a blink
/// (a cached graph, a fast GPU) costs a commit or two, not one per phase.
enum ProgressWrites {
    static let phaseInterval = 0.25
    static let stepInterval = 0.5

    enum Decision: Equatable {
        /// Write the latest progress now.
        case write
        /// A phase change too soon after the last write: the clock writes it.
        case leaveToClock
        /// A step: the next write carries it.
        case skip
    }

    static func decide(sinceLastWrite: Double, phaseChanged: Bool) -> Decision {
        if sinceLastWrite >= stepInterval || (phaseChanged && sinceLastWrite >= phaseInterval) { return .write }
        return phaseChanged ? .leaveToClock : .skip
    }
}
