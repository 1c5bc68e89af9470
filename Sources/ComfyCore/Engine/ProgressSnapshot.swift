/// A node as shown to users. Immutable and shared: the plan makes one per graph node, so a
/// snapshot carries a reference rather than copies of three strings.
public final class NodeRef: Sendable, Equatable, CustomStringConvertible {
    public let id: String
    public let classType: String?
    public let title: String?

    public init(id: String, classType: String? = nil, title: String? = nil) {
        self.id = id
        self.classType = classType
        self.title = title
    }

    public static func == (lhs: NodeRef, rhs: NodeRef) -> Bool {
        lhs === rhs || (lhs.id == rhs.id && lhs.classType == rhs.classType && lhs.title == rhs.title)
    }

    public var description: String { "NodeRef(\(id), \(classType ?? "-"), \(title ?? "-"))" }
}

/// How a prompt ended.
public enum Outcome: Sendable, Equatable {
    case success
    /// Boxed: failures are rare and large, and every snapshot carries an `Outcome?`.
    indirect case failed(ExecutionFailure)
    case interrupted(node: NodeRef?)
    case cancelled
}

/// Everything a display, the store or a hook needs to know about one prompt at one moment.
public struct ProgressSnapshot: Sendable, Equatable {
    public var promptID: String
    public var phase: Phase
    /// The node executing now (or last), when known.
    public var node: NodeRef?
    /// Which sampler is running, 1-based (0 before the first), and how many this prompt will run.
    public var sampler: Int
    public var samplers: Int
    /// The current (or last) sampler's step and step count; 0/0 before sampling.
    public var step: Int
    public var steps: Int
    /// Overall progress 0…1, weighted by phase; never decreases, 1 only when done.
    public var fraction: Double
    /// Set for terminal phases.
    public var outcome: Outcome?
    /// When the prompt was tracked, started executing (nil while queued), and entered its phase.
    public var queuedAt: Double
    public var startedAt: Double?
    public var phaseSince: Double

    public init(
        promptID: String, phase: Phase, node: NodeRef? = nil, sampler: Int = 0, samplers: Int = 0, step: Int = 0, steps: Int = 0,
        fraction: Double = 0, outcome: Outcome? = nil, queuedAt: Double = 0, startedAt: Double? = nil, phaseSince: Double = 0
    ) {
        self.promptID = promptID
        self.phase = phase
        self.node = node
        self.sampler = sampler
        self.samplers = samplers
        self.step = step
        self.steps = steps
        self.fraction = fraction
        self.outcome = outcome
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.phaseSince = phaseSince
    }

    /// `fraction` as a whole percentage, rounded down (so 99.6% never prints as 100).
    public var percent: Int { Int((fraction * 100).rounded(.down)) }
}

/// A change of phase, for hooks, the store and logs.
public struct Transition: Sendable, Equatable {
    public var from: Phase
    public var to: Phase
    public var at: Double
    /// How long the prompt spent in `from`.
    public var duration: Double

    public init(from: Phase, to: Phase, at: Double, duration: Double) {
        self.from = from
        self.to = to
        self.at = at
        self.duration = duration
    }
}

/// What one input changed for one prompt.
public struct ProgressUpdate: Sendable, Equatable {
    public var snapshot: ProgressSnapshot
    /// Set when the phase changed.
    public var transition: Transition?
}
