/// Which pending item goes to which server: a pure decision, fed what waits, what each server
/// has free and has loaded, and the time; it returns assignments and does nothing itself.
///
/// What waits is given as **groups**: the pending items of one job that load the same models
/// (one `ModelKey`), with their count, the index of the first and how long it has waited. Items
/// within a group go in job order, so a group is all the policy needs to know about them, and
/// its cost does not grow with the number of items (100,000 items in 50 groups are 50 groups).
///
/// The rules, in order:
/// 1. **Priority first.** Only the highest priority that has waiting work is looked at: a
///    higher-priority item is never held back for affinity.
/// 2. **No starvation.** A group whose first item has waited `maxDefer` or longer (the job's
///    own `max_defer`, else the run's) goes before any other of its priority, the longest-waiting
///    first, whatever the server has loaded.
/// 3. **Affinity.** A server takes, among what waits, the oldest group whose key is what it has
///    loaded (its last prompt's key): no load at all.
/// 4. **A new load goes where it pays.** Otherwise the server loads the model whose waiting work
///    per server is largest: a key's waiting items divided by one more than the number of other
///    servers that have it loaded. So two servers load two different models while there are
///    two; a second server joins a model already loaded elsewhere only when nothing else waits or
///    that model has more than twice the work of any other left. Ties go to the oldest group.
///    A server with a free slot never stays idle while something waits: an idle GPU costs more
///    than a load.
/// 5. **Strict order.** A job with `order: "strict"` offers only its first pending item, and
///    with `Order.strict` (`--order strict`) every job does and jobs go in queue order
///    (priority, then age): exactly the order the queue was written in.
///
/// Each server's assignments are in the order they were chosen, which is the order its
/// submission lane sends them.
public struct DispatchPolicy: Sendable, Equatable {
    public enum Order: String, Sendable, Equatable, CaseIterable {
        /// Group by model (the default).
        case models
        /// Exact queue order.
        case strict
    }

    /// The pending items of one job with one model key.
    public struct Group: Sendable, Equatable, Hashable {
        public var jobID: Int64
        public var priority: Int
        public var modelKey: ModelKey?
        /// Pending items in the group.
        public var waiting: Int
        /// The index (within its job) of the group's first pending item.
        public var firstIndex: Int
        /// When the first pending item was added (seconds, on the same clock as `now`).
        public var waitingSince: Double
        /// The job's own `max_defer` (seconds), when it sets one.
        public var maxDefer: Double?
        /// The job was added with `order: "strict"`.
        public var strict: Bool

        public init(
            jobID: Int64, priority: Int = 0, modelKey: ModelKey?, waiting: Int, firstIndex: Int, waitingSince: Double, maxDefer: Double? = nil,
            strict: Bool = false
        ) {
            self.jobID = jobID
            self.priority = priority
            self.modelKey = modelKey
            self.waiting = waiting
            self.firstIndex = firstIndex
            self.waitingSince = waitingSince
            self.maxDefer = maxDefer
            self.strict = strict
        }

        /// Which group: a job and a key.
        public var id: ID { ID(jobID: jobID, modelKey: modelKey) }

        public struct ID: Sendable, Hashable {
            public var jobID: Int64
            public var modelKey: ModelKey?
            public init(jobID: Int64, modelKey: ModelKey?) {
                self.jobID = jobID
                self.modelKey = modelKey
            }
        }

        /// Queue order: older job first, then item order.
        fileprivate func isBefore(_ other: Group) -> Bool { (jobID, firstIndex) < (other.jobID, other.firstIndex) }
    }

    /// A server as dispatch sees it.
    public struct Server: Sendable, Equatable {
        /// Prompts it may take now (zero when it is down, paused or full).
        public var freeSlots: Int
        /// The key of the last prompt sent to it (nil: nothing yet, or it restarted).
        public var loaded: ModelKey?
        /// Groups it cannot run (its node definitions lack a model, a node, a value: pre-flight).
        public var excluded: Set<Group.ID>

        public init(freeSlots: Int, loaded: ModelKey?, excluded: Set<Group.ID> = []) {
            self.freeSlots = freeSlots
            self.loaded = loaded
            self.excluded = excluded
        }
    }

    /// One item of `group` to `server` (an index into the servers given).
    public struct Assignment: Sendable, Equatable, CustomStringConvertible {
        public var server: Int
        public var group: Group.ID

        public init(server: Int, group: Group.ID) {
            self.server = server
            self.group = group
        }

        public var description: String { "\(server) ← job \(group.jobID) [\(group.modelKey?.description ?? "?")]" }
    }

    public var order: Order
    /// How long an item may be overtaken for affinity (seconds; default 10 minutes).
    public var maxDefer: Double

    public static let defaultMaxDefer: Double = 600

    public init(order: Order = .models, maxDefer: Double = DispatchPolicy.defaultMaxDefer) {
        self.order = order
        self.maxDefer = maxDefer
    }

    /// Fills every free slot it can: the server with the most free slots chooses first (the
    /// first of them on a tie), one item at a time, each choice seeing the ones before it.
    /// Returns the assignments in the order they were made. `servers` are updated as the
    /// assignments would leave them (slots taken, keys loaded).
    public func plan(groups: [Group], servers: inout [Server], now: Double) -> [Assignment] {
        var waiting = groups.filter { $0.waiting > 0 }
        // A strict job offers one item per plan: after it, which item comes next is unknown.
        var strictJobsTaken: Set<Int64> = []
        var assignments: [Assignment] = []
        // Servers with slots left but nothing they can run.
        var done: Set<Int> = []
        while true {
            guard let server = servers.indices.filter({ servers[$0].freeSlots > 0 && !done.contains($0) }).max(by: { servers[$0].freeSlots < servers[$1].freeSlots || (servers[$0].freeSlots == servers[$1].freeSlots && $0 > $1) }) else { break }
            let offered = offers(waiting, strictJobsTaken: strictJobsTaken).filter { !servers[server].excluded.contains($0.id) }
            guard let chosen = choose(from: offered, for: server, servers: servers, now: now) else {
                // Nothing this one may run: the others may still take something.
                done.insert(server)
                continue
            }
            assignments.append(Assignment(server: server, group: chosen.id))
            servers[server].freeSlots -= 1
            servers[server].loaded = chosen.modelKey
            if order == .strict || chosen.strict { strictJobsTaken.insert(chosen.jobID) }
            if let position = waiting.firstIndex(where: { $0.id == chosen.id }) {
                waiting[position].waiting -= 1
                if waiting[position].waiting == 0 { waiting.remove(at: position) }
            }
        }
        return assignments
    }

    /// The groups that may go now: all of them, except that a strict job offers only its group
    /// with the first pending item, and only once per plan.
    func offers(_ groups: [Group], strictJobsTaken: Set<Int64>) -> [Group] {
        var firstOfJob: [Int64: Group] = [:]
        var offered: [Group] = []
        for group in groups {
            if order == .strict || group.strict {
                guard !strictJobsTaken.contains(group.jobID) else { continue }
                if let current = firstOfJob[group.jobID], current.firstIndex <= group.firstIndex { continue }
                firstOfJob[group.jobID] = group
            } else {
                offered.append(group)
            }
        }
        return offered + firstOfJob.values
    }

    /// The group `server` takes next, by the rules above; nil when nothing waits.
    func choose(from groups: [Group], for server: Int, servers: [Server], now: Double) -> Group? {
        guard let top = groups.map(\.priority).max() else { return nil }
        let candidates = groups.filter { $0.priority == top }
        let oldest: (Group, Group) -> Bool = { $0.isBefore($1) }
        if order == .strict { return candidates.min(by: oldest) }
        // 2. Waited too long: the longest-waiting first.
        let overdue = candidates.filter { now - $0.waitingSince >= ($0.maxDefer ?? maxDefer) }
        if let first = overdue.min(by: { ($0.waitingSince, $0.jobID, $0.firstIndex) < ($1.waitingSince, $1.jobID, $1.firstIndex) }) {
            return first
        }
        // 3. What it has loaded.
        if let loaded = servers[server].loaded, let match = candidates.filter({ $0.modelKey == loaded }).min(by: oldest) {
            return match
        }
        // 4. The key with the most waiting work per server that would run it.
        var work: [ModelKey?: (waiting: Int, first: Group)] = [:]
        for group in candidates {
            let entry = work[group.modelKey]
            work[group.modelKey] = ((entry?.waiting ?? 0) + group.waiting, entry.map { oldest($0.first, group) ? $0.first : group } ?? group)
        }
        let best = work.max { left, right in
            let a = Double(left.value.waiting) / Double(1 + loadedElsewhere(left.key, besides: server, servers: servers))
            let b = Double(right.value.waiting) / Double(1 + loadedElsewhere(right.key, besides: server, servers: servers))
            return a < b || (a == b && oldest(right.value.first, left.value.first))
        }
        return best?.value.first
    }

    private func loadedElsewhere(_ key: ModelKey?, besides server: Int, servers: [Server]) -> Int {
        guard let key else { return 0 }
        return servers.indices.filter { $0 != server && servers[$0].loaded == key }.count
    }
}
