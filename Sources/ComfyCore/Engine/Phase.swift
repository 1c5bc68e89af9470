/// Where a prompt is in its life. Non-terminal phases only move forward.
public enum Phase: String, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    case queued
    /// Loaders, text encoders and everything before the first sampler step, including the silent
    /// seconds inside a sampler while the model moves to the device.
    case setup
    /// Sampler k of n, step x of y.
    case sampling
    /// After sampling: VAE decode, upscales.
    case decoding
    /// Output nodes: SaveImage, PreviewImage and the like.
    case saving
    case done
    case failed
    case interrupted
    case cancelled

    public var isTerminal: Bool { rank == Phase.done.rank }

    /// Order of the non-terminal phases; all terminal phases share the last rank.
    public var rank: Int {
        switch self {
        case .queued: 0
        case .setup: 1
        case .sampling: 2
        case .decoding: 3
        case .saving: 4
        case .done, .failed, .interrupted, .cancelled: 5
        }
    }

    public var description: String { rawValue }

    /// The phases that carry a share of a prompt's work.
    public static let working: [Phase] = [.setup, .sampling, .decoding, .saving]
}

/// How much of a prompt's wall time each working phase takes, used to turn phase progress into
/// one overall fraction.
///
/// The defaults come from `txt2img-gpu-warm.jsonl` (SD 1.5, 512², 20 steps on an H100, model
/// loaded): setup 0.11 s incl. the sampler's warm-up, sampling 0.95 s, VAE decode 0.03 s, save
/// 0.06 s, i.e. roughly 10 / 80 / 5 / 5 %. A runner that has timed earlier items of the same job
/// passes `learned(from:)` instead, so a job dominated by model loads shows it.
public struct PhaseWeights: Sendable, Equatable {
    public var setup: Double
    public var sampling: Double
    public var decoding: Double
    public var saving: Double

    public init(setup: Double, sampling: Double, decoding: Double, saving: Double) {
        self.setup = setup
        self.sampling = sampling
        self.decoding = decoding
        self.saving = saving
    }

    public static let `default` = PhaseWeights(setup: 0.10, sampling: 0.80, decoding: 0.05, saving: 0.05)

    /// The share of `phase` (0 for non-working phases).
    public subscript(phase: Phase) -> Double {
        switch phase {
        case .setup: setup
        case .sampling: sampling
        case .decoding: decoding
        case .saving: saving
        default: 0
        }
    }

    /// Weights from measured phase durations (seconds) of earlier items: their average share of
    /// the time, or `default` when there is nothing usable to learn from.
    public static func learned(from samples: [[Phase: Double]]) -> PhaseWeights {
        var totals = [Double](repeating: 0, count: Phase.working.count)
        for sample in samples {
            let sum = Phase.working.reduce(0) { $0 + max(0, sample[$1] ?? 0) }
            guard sum > 0 else { continue }
            for (offset, phase) in Phase.working.enumerated() { totals[offset] += max(0, sample[phase] ?? 0) / sum }
        }
        let sum = totals.reduce(0, +)
        guard sum > 0 else { return .default }
        return PhaseWeights(
            setup: totals[0] / sum, sampling: totals[1] / sum, decoding: totals[2] / sum, saving: totals[3] / sum)
    }

    /// The same weights with the shares of phases this plan cannot have set to zero, rescaled to 1.
    func fitted(to plan: PromptPlan) -> PhaseWeights {
        var fitted = self
        if plan.count(.sampler) == 0 { fitted.sampling = 0 }
        if plan.count(.decoding) == 0 { fitted.decoding = 0 }
        if plan.count(.output) == 0 { fitted.saving = 0 }
        let sum = fitted.setup + fitted.sampling + fitted.decoding + fitted.saving
        guard sum > 0 else { return PhaseWeights(setup: 1, sampling: 0, decoding: 0, saving: 0) }
        return PhaseWeights(
            setup: fitted.setup / sum, sampling: fitted.sampling / sum, decoding: fitted.decoding / sum,
            saving: fitted.saving / sum)
    }

    /// Where `phase`'s band starts in the overall fraction.
    func base(of phase: Phase) -> Double {
        switch phase {
        case .queued, .setup: 0
        case .sampling: setup
        case .decoding: setup + sampling
        case .saving: setup + sampling + decoding
        default: 1
        }
    }
}
