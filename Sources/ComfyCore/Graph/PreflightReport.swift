/// One job as pre-flight sees it: its graph, how its parameters address the graph, its items.
public struct PreflightJob: Sendable {
    public struct Item: Sendable {
        public var index: Int
        public var parameters: JSONObject
        /// The item's group for dispatch (its model key), when it is known.
        public var modelKey: ModelKey?

        public init(index: Int, parameters: JSONObject, modelKey: ModelKey? = nil) {
            self.index = index
            self.parameters = parameters
            self.modelKey = modelKey
        }
    }

    /// The job's file (or name) for messages.
    public var label: String
    /// The queue's id of the job (0 before it is added).
    public var id: Int64
    public var workflow: Workflow
    public var addresses: [String: ParameterAddress]
    public var items: [Item]

    public init(label: String, id: Int64 = 0, workflow: Workflow, addresses: [String: ParameterAddress], items: [Item]) {
        self.label = label
        self.id = id
        self.workflow = workflow
        self.addresses = addresses
        self.items = items
    }
}

/// Every item of some jobs checked against every server's node definitions. An item some server
/// can run is fine (it goes only to those: `unrunnable` tells dispatch); an item no server can run
/// is an error. Findings are grouped: one line per distinct problem with the servers it holds on
/// and how many items it affects.
///
/// A job's items may come in several pieces (`add`, then `finish`): a queue of 100,000 items is
/// checked a page at a time, in the memory of one page.
public struct PreflightReport: Sendable {
    public struct Line: Sendable, Equatable, CustomStringConvertible {
        /// The job's file or name.
        public var job: String
        public var text: String
        public var description: String { "\(job): \(text)" }
    }

    /// Problems that stop the items they affect from running anywhere.
    public private(set) var errors: [Line] = []
    /// Items that only some servers can run, and why the others cannot.
    public private(set) var notes: [Line] = []
    /// Per server: the dispatch groups none of whose items it can run.
    public private(set) var unrunnable: [String: Set<DispatchPolicy.Group.ID>] = [:]
    /// Per job id: the items no server can run, by the first reason (one line) of each.
    public private(set) var blocked: [Int64: [String: [Int]]] = [:]
    public private(set) var checkedItems = 0

    private let servers: [(name: String, definitions: NodeDefinitions)]
    /// What is known of each job so far, in the order they came.
    private var tallies: [Int64: Tally] = [:]
    private var order: [Int64] = []

    /// A job's findings over the pieces of it seen so far.
    private struct Tally {
        var label: String
        var items = 0
        /// Per finding: the servers it holds on, and the items (that no server can run / that some can).
        var failing: [PreflightFinding: (servers: Set<Int>, items: Set<Int>)] = [:]
        var failingOrder: [PreflightFinding] = []
        var limited: [PreflightFinding: (servers: Set<Int>, items: Set<Int>, runners: Set<Int>)] = [:]
        var limitedOrder: [PreflightFinding] = []
        /// Per dispatch group: its items, and per server how many of them it cannot run.
        var groups: [DispatchPolicy.Group.ID: (items: Int, unrunnable: [Int])] = [:]
        /// Value checks already made (server, address, value).
        var cache: [String: PreflightFinding?] = [:]
    }

    public init(jobs: [PreflightJob], servers: [(name: String, definitions: NodeDefinitions)]) {
        self.init(servers: servers)
        for job in jobs { add(job) }
        finish()
    }

    /// A report to `add` jobs (or pieces of them) to, then `finish`.
    public init(servers: [(name: String, definitions: NodeDefinitions)]) {
        self.servers = servers
    }

    /// Checks `job`'s items (all of them, or a piece: pieces of one job share its `id`).
    public mutating func add(_ job: PreflightJob) {
        guard !servers.isEmpty else { return }
        if tallies[job.id] == nil {
            tallies[job.id] = Tally(label: job.label)
            order.append(job.id)
        }
        var tally = tallies[job.id]!
        defer { tallies[job.id] = tally }
        let addressed = Set(job.addresses.values.map { ParameterKey($0.nodeID, $0.input) })
        let base = servers.map { Preflight.check(job.workflow, against: $0.definitions, skipping: addressed) }
        func names(_ offsets: Set<Int>) -> String { Self.names(offsets.sorted().map { servers[$0].name }, "or") }
        for item in job.items {
            checkedItems += 1
            tally.items += 1
            var findings = base
            for (written, value) in item.parameters {
                guard let address = job.addresses[written], let node = job.workflow[address.nodeID] else { continue }
                for (offset, server) in servers.enumerated() {
                    let key = "\(offset)\u{1}\(written)\u{1}\(value.serialized())"
                    let finding: PreflightFinding?
                    if let cached = tally.cache[key] {
                        finding = cached
                    } else {
                        var applied = node
                        applied.inputs[address.input] = value
                        finding = Preflight.check(value: value, node: applied, input: address.input, in: job.workflow, against: server.definitions)
                        // Bounded: a sweep of 100,000 seeds or prompts repeats no value.
                        if tally.cache.count >= 10_000 { tally.cache.removeAll(keepingCapacity: true) }
                        tally.cache[key] = finding
                    }
                    if let finding { findings[offset].append(finding) }
                }
            }
            let runners = Set(servers.indices.filter { findings[$0].isEmpty })
            let group = DispatchPolicy.Group.ID(jobID: job.id, modelKey: item.modelKey)
            tally.groups[group, default: (0, Array(repeating: 0, count: servers.count))].items += 1
            for offset in servers.indices where !runners.contains(offset) { tally.groups[group]!.unrunnable[offset] += 1 }
            guard runners.count < servers.count else { continue }
            if runners.isEmpty, let first = findings.lazy.compactMap(\.first).first {
                blocked[job.id, default: [:]][first.message(on: names(Set(servers.indices.filter { findings[$0].contains(first) }))), default: []].append(item.index)
            }
            for (offset, list) in findings.enumerated() {
                for finding in list {
                    if runners.isEmpty {
                        if tally.failing[finding] == nil { tally.failingOrder.append(finding) }
                        tally.failing[finding, default: ([], [])].servers.insert(offset)
                        tally.failing[finding]!.items.insert(item.index)
                    } else {
                        if tally.limited[finding] == nil { tally.limitedOrder.append(finding) }
                        tally.limited[finding, default: ([], [], [])].servers.insert(offset)
                        tally.limited[finding]!.items.insert(item.index)
                        tally.limited[finding]!.runners.formUnion(runners)
                    }
                }
            }
        }
    }

    /// Turns what was added into `errors`, `notes` and `unrunnable`.
    public mutating func finish() {
        errors = []
        notes = []
        unrunnable = [:]
        for id in order {
            guard let tally = tallies[id] else { continue }
            func names(_ offsets: Set<Int>, _ conjunction: String = "or") -> String { Self.names(offsets.sorted().map { servers[$0].name }, conjunction) }
            func count(_ items: Set<Int>) -> String {
                items.count == tally.items && items.count > 1 ? "all \(items.count) items" : "\(items.count) item\(items.count == 1 ? "" : "s")"
            }
            for finding in tally.failingOrder {
                let entry = tally.failing[finding]!
                errors.append(Line(job: tally.label, text: "\(finding.message(on: names(entry.servers))) (\(count(entry.items)))"))
            }
            for finding in tally.limitedOrder {
                let entry = tally.limited[finding]!
                notes.append(
                    Line(
                        job: tally.label,
                        text:
                            "\(finding.message(on: names(entry.servers), suggest: false)): \(count(entry.items)) \(entry.items.count == 1 ? "goes" : "go") only to \(names(entry.runners, "and")) instead"
                    ))
            }
            for (group, counts) in tally.groups {
                for (offset, server) in servers.enumerated() where counts.unrunnable[offset] == counts.items {
                    unrunnable[server.name, default: []].insert(group)
                }
            }
        }
    }

    /// `a`, `a or b`, `a, b or c`.
    static func names(_ list: [String], _ conjunction: String) -> String {
        list.count <= 1 ? list.joined() : list.dropLast().joined(separator: ", ") + " \(conjunction) " + list.last!
    }
}
