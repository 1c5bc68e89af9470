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
    /// Per job id, the items no server can run, each with the first reason (one line).
    public private(set) var blocked: [Int64: [Int: String]] = [:]
    public private(set) var checkedItems = 0

    public init(jobs: [PreflightJob], servers: [(name: String, definitions: NodeDefinitions)]) {
        guard !servers.isEmpty else { return }
        for job in jobs { check(job, servers: servers) }
    }

    private mutating func check(_ job: PreflightJob, servers: [(name: String, definitions: NodeDefinitions)]) {
        let addressed = Set(job.addresses.values.map { ParameterKey($0.nodeID, $0.input) })
        let base = servers.map { Preflight.check(job.workflow, against: $0.definitions, skipping: addressed) }
        var cache: [String: PreflightFinding?] = [:]
        // Per finding: the servers it holds on, and the items (that no server can run / that some can).
        var failing: [PreflightFinding: (servers: Set<Int>, items: Set<Int>)] = [:]
        var failingOrder: [PreflightFinding] = []
        var limited: [PreflightFinding: (servers: Set<Int>, items: Set<Int>, runners: Set<Int>)] = [:]
        var limitedOrder: [PreflightFinding] = []
        var groups: [DispatchPolicy.Group.ID: (items: Int, unrunnable: [Int])] = [:]
        func names(_ offsets: Set<Int>, _ conjunction: String = "or") -> String {
            let list = offsets.sorted().map { servers[$0].name }
            return list.count <= 1 ? list.joined() : list.dropLast().joined(separator: ", ") + " \(conjunction) " + list.last!
        }
        for item in job.items {
            checkedItems += 1
            var findings = base
            for (written, value) in item.parameters {
                guard let address = job.addresses[written], let node = job.workflow[address.nodeID] else { continue }
                for (offset, server) in servers.enumerated() {
                    let key = "\(offset)\u{1}\(written)\u{1}\(value.serialized())"
                    let finding: PreflightFinding?
                    if let cached = cache[key] {
                        finding = cached
                    } else {
                        var applied = node
                        applied.inputs[address.input] = value
                        finding = Preflight.check(value: value, node: applied, input: address.input, in: job.workflow, against: server.definitions)
                        cache[key] = finding
                    }
                    if let finding { findings[offset].append(finding) }
                }
            }
            let runners = Set(servers.indices.filter { findings[$0].isEmpty })
            let group = DispatchPolicy.Group.ID(jobID: job.id, modelKey: item.modelKey)
            groups[group, default: (0, Array(repeating: 0, count: servers.count))].items += 1
            for offset in servers.indices where !runners.contains(offset) { groups[group]!.unrunnable[offset] += 1 }
            guard runners.count < servers.count else { continue }
            if runners.isEmpty, let first = findings.lazy.compactMap(\.first).first {
                blocked[job.id, default: [:]][item.index] = first.message(on: names(Set(servers.indices.filter { findings[$0].contains(first) })))
            }
            for (offset, list) in findings.enumerated() {
                for finding in list {
                    if runners.isEmpty {
                        if failing[finding] == nil { failingOrder.append(finding) }
                        failing[finding, default: ([], [])].servers.insert(offset)
                        failing[finding]!.items.insert(item.index)
                    } else {
                        if limited[finding] == nil { limitedOrder.append(finding) }
                        limited[finding, default: ([], [], [])].servers.insert(offset)
                        limited[finding]!.items.insert(item.index)
                        limited[finding]!.runners.formUnion(runners)
                    }
                }
            }
        }
        func count(_ items: Set<Int>) -> String {
            items.count == job.items.count && items.count > 1 ? "all \(items.count) items" : "\(items.count) item\(items.count == 1 ? "" : "s")"
        }
        for finding in failingOrder {
            let entry = failing[finding]!
            errors.append(Line(job: job.label, text: "\(finding.message(on: names(entry.servers))) (\(count(entry.items)))"))
        }
        for finding in limitedOrder {
            let entry = limited[finding]!
            notes.append(
                Line(
                    job: job.label,
                    text:
                        "\(finding.message(on: names(entry.servers), suggest: false)): \(count(entry.items)) \(entry.items.count == 1 ? "goes" : "go") only to \(names(entry.runners, "and")) instead"
                ))
        }
        for (group, tally) in groups {
            for (offset, server) in servers.enumerated() where tally.unrunnable[offset] == tally.items {
                unrunnable[server.name, default: []].insert(group)
            }
        }
    }
}
