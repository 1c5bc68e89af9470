/// Follows every prompt submitted through one server connection, from queued to a terminal phase.
///
/// Pure: it is given each prompt's plan, then typed server events and the time they arrived, and
/// returns what changed. It never reads a clock, touches the network or parses JSON.
///
/// The rules it keeps:
/// - progress is per node, never the sum of the `progress_state` map, so a setup where every
///   finished node reports 1/1 never looks complete;
/// - a prompt is done only when ComfyUI says so (`execution_success`, `executing` with node null
///   for that prompt, or a successful history record), never from a percentage;
/// - phases and the overall fraction never go backwards;
/// - prompts it does not track are ignored (other clients share the server), as is anything said
///   about a prompt after it ended: its state is dropped with its final snapshot.
public struct ProgressEngine: Sendable {
    private var prompts: [String: PromptProgress] = [:]
    /// The prompt of the previous event and its slot: consecutive events nearly always concern
    /// the same prompt, and a string comparison is cheaper than hashing a 36-character id.
    /// Any insertion or removal invalidates dictionary indices, so those clear it.
    private var lastLookup: (id: String, slot: Dictionary<String, PromptProgress>.Index)?
    /// The prompt executing on the server now, for `executing` messages that carry no prompt id
    /// (the server replays one after a WebSocket reconnect).
    public private(set) var runningPromptID: String?

    public init() {}

    /// How many prompts are being followed.
    public var trackedCount: Int { prompts.count }

    /// The ids of the prompts being followed.
    public var trackedPromptIDs: [String] { Array(prompts.keys) }

    /// Whether `promptID` is being followed.
    public func isTracking(_ promptID: String) -> Bool { prompts[promptID] != nil }

    /// Starts following a submitted prompt. Returns its first snapshot (phase `queued`).
    @discardableResult
    public mutating func track(
        _ promptID: String, plan: PromptPlan, weights: PhaseWeights = .default, at time: Double
    ) -> ProgressSnapshot {
        let progress = PromptProgress(plan: plan, weights: weights, at: time)
        lastLookup = nil
        prompts[promptID] = progress
        return progress.snapshot(promptID: promptID)
    }

    /// The current snapshot of a followed prompt.
    public func snapshot(of promptID: String) -> ProgressSnapshot? {
        prompts[promptID]?.snapshot(promptID: promptID)
    }

    /// Stops following a prompt without a terminal event (for example when the runner gives it up).
    public mutating func forget(_ promptID: String) {
        lastLookup = nil
        prompts[promptID] = nil
        if runningPromptID == promptID { runningPromptID = nil }
    }

    /// The prompt was removed from the server's queue before it ran.
    public mutating func cancel(_ promptID: String, at time: Double) -> ProgressUpdate? {
        end(promptID, .cancelled, at: time)
    }

    /// Feeds one event. Returns the prompt's new snapshot when something visible changed, with a
    /// transition when its phase changed; nil for events that change nothing.
    public mutating func receive(_ event: ServerEvent, at time: Double) -> ProgressUpdate? {
        switch event {
        case .status, .unknown:
            return nil

        case .executionStart(let id):
            return apply(id, at: time) { progress in progress.started(at: time) }

        case .executionCached(let id, let nodes):
            return apply(id, at: time) { progress in progress.cached(nodes, at: time) }

        case .executing(let id, let node, let display):
            guard let id = id ?? runningPromptID else { return nil }
            guard let node else { return end(id, .success, at: time) }
            return apply(id, at: time) { progress in
                let position = progress.position(of: node, display: display)
                progress.executing(position ?? PromptProgress.unlisted, unlistedID: display ?? node, at: time)
            }

        case .progress(let id, let node, let value, let max):
            guard let id = id ?? runningPromptID else { return nil }
            return apply(id, at: time) { progress in
                let position = progress.position(of: node) ?? progress.currentPosition
                progress.reported(position, value: value, max: max, at: time)
            }

        case .progressState(let id, let nodes):
            return apply(id, at: time) { progress in
                for entry in nodes {
                    let known = progress.position(of: entry.nodeID, display: entry.displayNodeID, real: entry.realNodeID)
                    switch entry.state {
                    case .finished:
                        if let known { progress.finished(known, at: time) }
                    case .running:
                        if let known { progress.running(known, at: time) }
                        if entry.max > 1 {
                            progress.reported(known ?? PromptProgress.unlisted, value: entry.value, max: entry.max, at: time)
                        }
                    case .pending, .error, .unknown:
                        break
                    }
                }
            }

        case .executed(let id, let node, _):
            return apply(id, at: time) { progress in
                if let position = progress.position(of: node), position != progress.currentPosition {
                    progress.executing(position, unlistedID: nil, at: time)
                }
            }

        case .executionSuccess(let id):
            return end(id, .success, at: time)

        case .executionError(let id, let failure):
            // An ExecutionBlocker message: the node was skipped and the prompt carries on.
            guard failure.exceptionType != "ExecutionBlocked" else { return nil }
            return end(id, .failed(failure), at: time)

        case .executionNodeError(let id, let failure):
            guard prompts[id] != nil else { return nil }
            prompts[id]?.nodeErrors.append(failure)
            return nil

        case .executionInterrupted(let id, let nodeID, let classType):
            let node = nodeID.map { NodeRef(id: $0, classType: classType, title: prompts[id]?.plan[$0]?.title) }
            return end(id, .interrupted(node: node), at: time)

        case .history(let id, let outcome):
            switch outcome {
            case .success: return end(id, .success, at: time)
            case .failed(let failure): return end(id, .failed(failure), at: time)
            case .interrupted(let nodeID, let classType):
                return end(id, .interrupted(node: nodeID.map { NodeRef(id: $0, classType: classType) }), at: time)
            }
        }
    }

    // MARK: Internals

    /// Mutates a followed prompt in place and reports the change, if any.
    private mutating func apply(
        _ id: String, at time: Double, _ body: (inout PromptProgress) -> Void
    ) -> ProgressUpdate? {
        // One hash lookup, then a single in-place access through the values view: reading the
        // state through a getter would copy it (and retain everything it holds) on every event.
        let slot: Dictionary<String, PromptProgress>.Index
        if let last = lastLookup, sameBytes(last.id, id) {
            slot = last.slot
        } else {
            guard let found = prompts.index(forKey: id) else { return nil }
            slot = found
            lastLookup = (id, found)
        }
        var started = false
        let update = Self.step(&prompts.values[slot], id: id, at: time, started: &started, body)
        if started && runningPromptID != id { runningPromptID = id }
        return update
    }

    private static func step(
        _ progress: inout PromptProgress, id: String, at time: Double, started: inout Bool,
        _ body: (inout PromptProgress) -> Void
    ) -> ProgressUpdate? {
        let before = progress.signature
        let since = progress.phaseSince
        body(&progress)
        let after = progress.signature
        started = after.phase != .queued
        guard after != before else { return nil }
        let transition =
            after.phase != before.phase
            ? Transition(from: before.phase, to: after.phase, at: time, duration: time - since) : nil
        return ProgressUpdate(snapshot: progress.snapshot(promptID: id), transition: transition)
    }

    /// Ends a followed prompt, returns its final snapshot, and drops its state.
    private mutating func end(_ id: String, _ outcome: Outcome, at time: Double) -> ProgressUpdate? {
        guard var progress = prompts.removeValue(forKey: id) else { return nil }
        // A "success" after node errors (partial execution) is a failure naming them.
        var outcome = outcome
        if outcome == .success, !progress.nodeErrors.isEmpty { outcome = .failed(.partial(progress.nodeErrors)) }
        lastLookup = nil
        if runningPromptID == id { runningPromptID = nil }
        let from = progress.phase
        let since = progress.phaseSince
        guard progress.end(outcome, at: time) else { return nil }
        return ProgressUpdate(
            snapshot: progress.snapshot(promptID: id, outcome: outcome),
            transition: Transition(from: from, to: progress.phase, at: time, duration: time - since))
    }
}

/// Whether two strings have the same UTF-8 bytes: a sufficient test for equality that skips the
/// standard library's Unicode-aware comparison (a miss just falls back to the hash lookup).
@inline(__always)
func sameBytes(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    guard a.utf8.count == b.utf8.count else { return false }
    return a.withUTF8 { x in
        b.withUTF8 { y in
            guard let p = x.baseAddress, let q = y.baseAddress else { return x.count == y.count }
            let left = UnsafeRawPointer(p)
            let right = UnsafeRawPointer(q)
            var offset = 0
            while offset + 8 <= x.count {
                if left.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                    != right.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                {
                    return false
                }
                offset += 8
            }
            while offset < x.count {
                if p[offset] != q[offset] { return false }
                offset += 1
            }
            return true
        }
    }
}
