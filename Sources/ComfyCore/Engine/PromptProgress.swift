/// A fixed-size set of node positions.
struct NodeSet: Sendable {
    private var words: [UInt64]

    init(capacity: Int) { words = [UInt64](repeating: 0, count: (capacity + 63) / 64) }

    func contains(_ position: Int) -> Bool {
        words[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    /// Inserts and reports whether it was new.
    mutating func insert(_ position: Int) -> Bool {
        let mask: UInt64 = 1 << UInt64(position & 63)
        if words[position >> 6] & mask != 0 { return false }
        words[position >> 6] |= mask
        return true
    }
}

/// One prompt's progress: a small state machine fed what the server says about it.
///
/// Memory per prompt is this struct plus one bit per graph node; the graph itself lives once in
/// the shared `PromptPlan`.
struct PromptProgress: Sendable {
    /// Node position meaning "none yet".
    static let none: Int32 = -1
    /// Node position for a node the graph does not have (expanded nodes, custom nodes' helpers).
    static let unlisted: Int32 = -2

    let plan: PromptPlan
    let weights: PhaseWeights
    /// Nodes that failed while the prompt went on (partial execution): it ends failed.
    var nodeErrors: [ExecutionFailure] = []

    private(set) var phase: Phase = .queued
    private var settled: NodeSet
    /// Nodes seen running, so a map that still lists a node as running (ComfyUI resends the whole
    /// `progress_state` map) does not restart it.
    private var started: NodeSet
    /// Settled nodes of the roles that carry phase fractions.
    private var settledSetup: Int32 = 0
    private var settledDecoding: Int32 = 0
    private var settledOutputs: Int32 = 0

    private var current: Int32 = none
    private var unlistedNodeID: String?

    /// The sampler whose steps we are counting, its ordinal, and the prompt's sampler count.
    private var sampler: Int32 = none
    private var samplerOrdinal: Int32 = 0
    private var samplerCount: Int32
    private var samplersFinished: Int32 = 0
    private var samplerFinished = false
    private var step: Int32 = 0
    private var steps: Int32 = 0
    /// Steps of finished samplers, and of all samplers expected to run (expected counts replaced by
    /// real ones as samplers report them).
    private var stepsDone: Int32 = 0
    private var stepsTotal: Int32

    private(set) var fraction: Double = 0
    let queuedAt: Double
    private(set) var startedAt: Double?
    private(set) var phaseSince: Double

    init(plan: PromptPlan, weights: PhaseWeights, at time: Double) {
        self.plan = plan
        self.weights = weights.fitted(to: plan)
        settled = NodeSet(capacity: plan.nodes.count)
        started = NodeSet(capacity: plan.nodes.count)
        samplerCount = Int32(plan.count(.sampler))
        stepsTotal = Int32(clamping: plan.expectedSteps)
        queuedAt = time
        phaseSince = time
    }

    // MARK: Inputs

    /// The prompt began executing (`execution_start`, or the first sign of it).
    mutating func started(at time: Double) {
        if startedAt == nil { startedAt = time }
        advance(to: .setup, at: time)
    }

    /// These nodes will not run: their outputs are cached.
    mutating func cached(_ ids: [String], at time: Double) {
        started(at: time)
        for id in ids {
            guard let position = plan.index[id], settled.insert(position) else { continue }
            switch plan.nodes[position].role {
            case .sampler:
                samplerCount -= 1
                stepsTotal -= Int32(clamping: plan.nodes[position].expectedSteps)
            case .setup: settledSetup += 1
            case .decoding: settledDecoding += 1
            case .output: settledOutputs += 1
            case .intermediate: break
            }
        }
        update(at: time)
    }

    /// A `progress_state` entry says this node is running. Only the first such report moves the
    /// prompt to the node; later copies of the map repeat it.
    mutating func running(_ position: Int32, at time: Double) {
        guard position >= 0, started.insert(Int(position)), !settled.contains(Int(position)) else { return }
        executing(position, unlistedID: nil, at: time)
    }

    /// A node started executing (`executing`, or a `running` entry in `progress_state`).
    mutating func executing(_ position: Int32, unlistedID: String?, at time: Double) {
        if position >= 0 { _ = started.insert(Int(position)) }
        started(at: time)
        if position != current || position == Self.unlisted {
            // ComfyUI runs one node at a time: the previous one is done.
            if current >= 0 { settle(current) }
            current = position
            unlistedNodeID = position == Self.unlisted ? unlistedID : nil
        }
        update(at: time)
    }

    /// A node reported finishing.
    mutating func finished(_ position: Int32, at time: Double) {
        guard position >= 0, !settled.contains(Int(position)) else { return }
        settle(position)
        update(at: time)
    }

    /// A node reported `value` of `max` (a `progress` message or its `progress_state` entry).
    mutating func reported(_ position: Int32, value: Double, max: Double, at time: Double) {
        started(at: time)
        guard max > 1, value.isFinite, max.isFinite else { return }  // 0/1 and 1/1 are not steps
        if position >= 0 {
            let role = plan.nodes[Int(position)].role
            guard role != .output && role != .decoding else { return }
            if settled.contains(Int(position)) && position != sampler { return }
        }
        let maxSteps = Int32(clamping: Int(max.rounded()))
        let reportedStep = Swift.max(0, Swift.min(maxSteps, Int32(clamping: Int(value.rounded(.down)))))
        if position == sampler && (samplerFinished || (maxSteps == steps && reportedStep == step)) {
            return  // nothing new: a repeated map, or a late report from a finished sampler
        }
        if position != sampler {
            finishActiveSampler()
            sampler = position
            samplerOrdinal += 1
            samplerFinished = false
            let planned = position >= 0 && plan.nodes[Int(position)].role == .sampler
            if !planned { samplerCount += 1 }
            stepsTotal += maxSteps - (planned ? Int32(clamping: plan.nodes[Int(position)].expectedSteps) : 0)
            steps = maxSteps
            step = 0
        } else if maxSteps != steps {
            stepsTotal += maxSteps - steps
            steps = maxSteps
        }
        step = reportedStep
        if position != current, position >= 0 {
            if current >= 0 { settle(current) }
            current = position
        }
        update(at: time)
    }

    /// The prompt ended. Returns false if it already had.
    mutating func end(_ outcome: Outcome, at time: Double) -> Bool {
        guard !phase.isTerminal else { return false }
        let terminal: Phase
        switch outcome {
        case .success:
            terminal = .done
            fraction = 1
        case .failed: terminal = .failed
        case .interrupted: terminal = .interrupted
        case .cancelled: terminal = .cancelled
        }
        phase = terminal
        phaseSince = time
        return true
    }

    // MARK: Derived state

    private mutating func settle(_ position: Int32) {
        guard position >= 0, settled.insert(Int(position)) else { return }
        let node = plan.nodes[Int(position)]
        if position == sampler {
            finishActiveSampler()
        } else if node.role == .sampler {
            // A planned sampler that ended without reporting steps.
            samplersFinished += 1
            stepsDone += Int32(clamping: node.expectedSteps)
        }
        switch node.role {
        case .setup: settledSetup += 1
        case .decoding: settledDecoding += 1
        case .output: settledOutputs += 1
        case .sampler, .intermediate: break
        }
    }

    private mutating func finishActiveSampler() {
        guard sampler != Self.none, !samplerFinished else { return }
        samplerFinished = true
        samplersFinished += 1
        stepsDone += steps
        step = steps
    }

    private var samplingBegun: Bool { samplerOrdinal > 0 }

    /// The phase the current node implies (before the never-backwards rule is applied).
    private var impliedPhase: Phase {
        guard current != Self.none else { return startedAt == nil ? .queued : .setup }
        if current == sampler && !samplerFinished { return .sampling }
        guard current >= 0 else { return phase }
        let role = plan.nodes[Int(current)].role
        if role == .sampler { return samplingBegun ? .sampling : .setup }  // warm-up before step 1
        if samplingBegun && samplersFinished < samplerCount { return .sampling }
        switch role {
        case .output: return .saving
        case .decoding: return .decoding
        case .intermediate: return samplingBegun ? .sampling : .setup
        case .setup: return samplingBegun ? .decoding : .setup
        case .sampler: return .sampling
        }
    }

    /// How far the current phase is, 0…1.
    private var phaseFraction: Double {
        switch phase {
        case .setup:
            // One extra unit for the sampler's warm-up, which ends at its first step.
            let warmUp: Int32 = samplerCount > 0 ? 1 : 0
            let units = Int32(plan.count(.setup)) + warmUp
            let done = settledSetup + (samplingBegun ? warmUp : 0)
            return units > 0 ? Double(done) / Double(units) : 0
        case .sampling:
            guard stepsTotal > 0 else { return 0 }
            let active = samplerFinished ? 0 : step
            return Double(stepsDone + active) / Double(stepsTotal)
        case .decoding:
            let count = plan.count(.decoding)
            return count > 0 ? Double(settledDecoding) / Double(count) : 0
        case .saving:
            let count = plan.count(.output)
            return count > 0 ? Double(settledOutputs) / Double(count) : 0
        default:
            return 0
        }
    }

    private mutating func advance(to next: Phase, at time: Double) {
        guard !phase.isTerminal, next.rank > phase.rank else { return }
        phase = next
        phaseSince = time
    }

    private mutating func update(at time: Double) {
        advance(to: impliedPhase, at: time)
        guard !phase.isTerminal, phase != .queued else { return }
        let within = Swift.min(1, Swift.max(0, phaseFraction))
        let overall = weights.base(of: phase) + weights[phase] * within
        // Below 1 until ComfyUI says done; never backwards.
        fraction = Swift.max(fraction, Swift.min(overall, 0.99))
    }

    // MARK: Output

    /// The fields whose change is worth reporting.
    struct Signature: Equatable {
        var phase: Phase
        var current: Int32
        var sampler: Int32
        var samplers: Int32
        var step: Int32
        var steps: Int32
        var fraction: Double
    }

    var signature: Signature {
        Signature(
            phase: phase, current: current, sampler: samplerOrdinal, samplers: samplerCount, step: step,
            steps: steps, fraction: fraction)
    }

    var currentNode: NodeRef? {
        if current >= 0 { return plan.nodes[Int(current)].ref }
        return unlistedNodeID.map { NodeRef(id: $0) }
    }

    func snapshot(promptID: String, outcome: Outcome? = nil) -> ProgressSnapshot {
        var shownSampler = samplerOrdinal
        var shownStep = step
        var shownSteps = steps
        // A planned sampler warming up (before its first step) is shown as the next sampler at step 0.
        if current >= 0, current != sampler, plan.nodes[Int(current)].role == .sampler,
            !settled.contains(Int(current))
        {
            shownSampler += 1
            shownStep = 0
            shownSteps = Int32(clamping: plan.nodes[Int(current)].expectedSteps)
        }
        return ProgressSnapshot(
            promptID: promptID, phase: phase, node: currentNode, sampler: Int(shownSampler),
            samplers: Int(Swift.max(samplerCount, shownSampler)), step: Int(shownStep), steps: Int(shownSteps),
            fraction: fraction, outcome: outcome, queuedAt: queuedAt, startedAt: startedAt, phaseSince: phaseSince)
    }

    /// Resolves an id the server sent to a position in the plan, trying the display and real ids
    /// of expanded nodes.
    func position(of id: String?, display: String? = nil, real: String? = nil) -> Int32? {
        if let id, let position = plan.index[id] { return Int32(position) }
        if let display, display != id, let position = plan.index[display] { return Int32(position) }
        if let real, real != id, let position = plan.index[real] { return Int32(position) }
        return nil
    }

    var currentPosition: Int32 { current }
}
