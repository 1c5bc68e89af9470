import ComfyCore
import Testing

@Suite struct DispatchPolicyTests {
    typealias Group = DispatchPolicy.Group
    typealias Server = DispatchPolicy.Server

    static let a = ModelKey("ckpt_name=a.safetensors")
    static let b = ModelKey("ckpt_name=b.safetensors")
    static let c = ModelKey("ckpt_name=c.safetensors")

    static func group(
        _ job: Int64, _ key: ModelKey?, waiting: Int = 5, first: Int = 0, since: Double = 0, priority: Int = 0, maxDefer: Double? = nil,
        strict: Bool = false
    ) -> Group {
        Group(jobID: job, priority: priority, modelKey: key, waiting: waiting, firstIndex: first, waitingSince: since, maxDefer: maxDefer, strict: strict)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var policy = DispatchPolicy()
        var groups: [Group]
        var servers: [Server]
        var now: Double = 0
        /// Per assignment: server, job and key.
        var expected: [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "1. priority first: a higher priority is never held back for what is loaded",
            groups: [group(1, a, waiting: 9), group(2, b, waiting: 1, priority: 5)],
            servers: [Server(freeSlots: 2, loaded: a)],
            expected: ["0 ← job 2 [ckpt_name=b.safetensors]", "0 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "2. affinity: the loaded key, even when another group is older and larger",
            groups: [group(1, a, waiting: 9), group(2, b, waiting: 2)],
            servers: [Server(freeSlots: 1, loaded: b)],
            expected: ["0 ← job 2 [ckpt_name=b.safetensors]"]),
        Case(
            name: "2. nothing loaded matches: the key with the most waiting work, across jobs",
            groups: [group(1, a, waiting: 4), group(2, b, waiting: 3), group(3, b, waiting: 3)],
            servers: [Server(freeSlots: 1, loaded: c)],
            expected: ["0 ← job 2 [ckpt_name=b.safetensors]"]),
        Case(
            name: "2. ties of work go to the oldest group",
            groups: [group(2, b, waiting: 5), group(1, a, waiting: 5, first: 3), group(1, c, waiting: 5, first: 1)],
            servers: [Server(freeSlots: 1, loaded: nil)],
            expected: ["0 ← job 1 [ckpt_name=c.safetensors]"]),
        Case(
            name: "2. one server fills its slots from one group while it lasts, then the next",
            groups: [group(1, a, waiting: 2, first: 0), group(1, b, waiting: 2, first: 1)],
            servers: [Server(freeSlots: 4, loaded: nil)],
            expected: [
                "0 ← job 1 [ckpt_name=a.safetensors]", "0 ← job 1 [ckpt_name=a.safetensors]", "0 ← job 1 [ckpt_name=b.safetensors]",
                "0 ← job 1 [ckpt_name=b.safetensors]",
            ]),
        Case(
            name: "3. two servers take two different models",
            groups: [group(1, a, waiting: 20, first: 0), group(1, b, waiting: 20, first: 1), group(1, c, waiting: 20, first: 2)],
            servers: [Server(freeSlots: 2, loaded: nil), Server(freeSlots: 2, loaded: nil)],
            expected: [
                "0 ← job 1 [ckpt_name=a.safetensors]", "1 ← job 1 [ckpt_name=b.safetensors]", "0 ← job 1 [ckpt_name=a.safetensors]",
                "1 ← job 1 [ckpt_name=b.safetensors]",
            ]),
        Case(
            name: "3. a second server joins a loaded model when it has more than twice the work of any other",
            groups: [group(1, a, waiting: 21), group(1, b, waiting: 10, first: 1)],
            servers: [Server(freeSlots: 0, loaded: a), Server(freeSlots: 1, loaded: nil)],
            expected: ["1 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "3. … and not at exactly twice (a tie goes to the oldest, and b is the unloaded one)",
            groups: [group(1, a, waiting: 20, first: 5), group(1, b, waiting: 10, first: 1)],
            servers: [Server(freeSlots: 0, loaded: a), Server(freeSlots: 1, loaded: nil)],
            expected: ["1 ← job 1 [ckpt_name=b.safetensors]"]),
        Case(
            name: "3. a free server never idles while something waits, even if it means a second load",
            groups: [group(1, a, waiting: 1)],
            servers: [Server(freeSlots: 0, loaded: a), Server(freeSlots: 1, loaded: b)],
            expected: ["1 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "4. an item overtaken for max_defer goes first, whatever is loaded",
            groups: [group(1, a, waiting: 9, since: 500), group(2, b, waiting: 1, since: 0)],
            servers: [Server(freeSlots: 2, loaded: a)], now: 600,
            expected: ["0 ← job 2 [ckpt_name=b.safetensors]", "0 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "4. … not a second before",
            groups: [group(1, a, waiting: 9, since: 500), group(2, b, waiting: 1, since: 0.5)],
            servers: [Server(freeSlots: 1, loaded: a)], now: 600,
            expected: ["0 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "4. a job's own max_defer, and the run's",
            policy: DispatchPolicy(maxDefer: 60),
            groups: [group(1, a, waiting: 9, since: 90), group(2, b, waiting: 1, since: 50, maxDefer: 5), group(3, c, waiting: 1, since: 30)],
            servers: [Server(freeSlots: 3, loaded: a)], now: 100,
            expected: ["0 ← job 3 [ckpt_name=c.safetensors]", "0 ← job 2 [ckpt_name=b.safetensors]", "0 ← job 1 [ckpt_name=a.safetensors]"]),
        Case(
            name: "4. overdue does not beat priority",
            groups: [group(1, a, waiting: 1, since: 0), group(2, b, waiting: 1, since: 999, priority: 1)],
            servers: [Server(freeSlots: 1, loaded: a)], now: 1000,
            expected: ["0 ← job 2 [ckpt_name=b.safetensors]"]),
        Case(
            name: "5. --order strict: queue order, one item per job per plan",
            policy: DispatchPolicy(order: .strict),
            groups: [group(1, a, waiting: 3, first: 1), group(1, b, waiting: 3, first: 0), group(2, a, waiting: 3, first: 0)],
            servers: [Server(freeSlots: 3, loaded: a)],
            expected: ["0 ← job 1 [ckpt_name=b.safetensors]", "0 ← job 2 [ckpt_name=a.safetensors]"]),
        Case(
            name: "5. a strict job offers only its first item; the others still group",
            groups: [group(1, a, waiting: 3, first: 1, strict: true), group(1, b, waiting: 3, first: 0, strict: true), group(2, a, waiting: 3)],
            servers: [Server(freeSlots: 3, loaded: a)],
            expected: ["0 ← job 2 [ckpt_name=a.safetensors]", "0 ← job 2 [ckpt_name=a.safetensors]", "0 ← job 2 [ckpt_name=a.safetensors]"]),
        Case(
            name: "items added before keys were stored form a group of their own",
            groups: [group(1, nil, waiting: 3), group(2, a, waiting: 1)],
            servers: [Server(freeSlots: 1, loaded: nil)],
            expected: ["0 ← job 1 [?]"]),
        Case(
            name: "6. pre-flight: a server never gets a group it cannot run; the others take it",
            groups: [group(1, a, waiting: 1), group(1, b, waiting: 2, first: 1)],
            servers: [
                Server(freeSlots: 2, loaded: nil, excluded: [Group.ID(jobID: 1, modelKey: b)]),
                Server(freeSlots: 1, loaded: b),
            ],
            expected: ["0 ← job 1 [ckpt_name=a.safetensors]", "1 ← job 1 [ckpt_name=b.safetensors]"]),
        Case(
            name: "6. … and a server with nothing it can run stays free while the others go on",
            groups: [group(1, b, waiting: 3)],
            servers: [
                Server(freeSlots: 2, loaded: nil, excluded: [Group.ID(jobID: 1, modelKey: b)]),
                Server(freeSlots: 1, loaded: a),
            ],
            expected: ["1 ← job 1 [ckpt_name=b.safetensors]"]),
        Case(
            name: "no free slot, or nothing waiting: nothing",
            groups: [group(1, a, waiting: 0)],
            servers: [Server(freeSlots: 2, loaded: nil), Server(freeSlots: 0, loaded: a)],
            expected: []),
    ]

    @Test(arguments: cases) func rules(_ example: Case) {
        var servers = example.servers
        let plan = example.policy.plan(groups: example.groups, servers: &servers, now: example.now)
        #expect(plan.map(\.description) == example.expected)
    }

    // MARK: Whole sweeps

    /// A sweep played through the policy: each server runs its prompts in the order it got them,
    /// one at a time (`slots` in flight, like a server's queue), and the test counts loads.
    struct Sweep {
        var groups: [Group]
        var servers: [Server]
        var policy = DispatchPolicy()
        var queues: [[ModelKey?]]
        var loads: [Int]
        var running: [ModelKey?]
        var busyTicks: [Int]
        var ticks = 0

        init(groups: [Group], servers: Int, slots: Int, policy: DispatchPolicy = DispatchPolicy()) {
            self.groups = groups
            self.servers = Array(repeating: Server(freeSlots: slots, loaded: nil), count: servers)
            self.policy = policy
            queues = Array(repeating: [], count: servers)
            loads = Array(repeating: 0, count: servers)
            running = Array(repeating: nil, count: servers)
            busyTicks = Array(repeating: 0, count: servers)
        }

        /// Runs to the end; each prompt takes one tick, and a load takes `loadTicks` more.
        mutating func run(loadTicks: Int = 3) {
            var remaining = Array(repeating: 0, count: servers.count)
            while groups.contains(where: { $0.waiting > 0 }) || queues.contains(where: { !$0.isEmpty }) || remaining.contains(where: { $0 > 0 }) {
                for assignment in policy.plan(groups: groups, servers: &servers, now: Double(ticks)) {
                    let position = groups.firstIndex { $0.id == assignment.group }!
                    groups[position].waiting -= 1
                    groups[position].firstIndex += 1
                    queues[assignment.server].append(assignment.group.modelKey)
                }
                for server in servers.indices {
                    if remaining[server] == 0, !queues[server].isEmpty {
                        let key = queues[server].removeFirst()
                        remaining[server] = 1
                        if key != running[server] {
                            loads[server] += 1
                            remaining[server] += loadTicks
                        }
                        running[server] = key
                    }
                    if remaining[server] > 0 {
                        busyTicks[server] += 1
                        remaining[server] -= 1
                        if remaining[server] == 0 { self.servers[server].freeSlots += 1 }
                    }
                }
                ticks += 1
            }
        }
    }

    /// 3 checkpoints × 20 seeds with the checkpoint as the inner axis: the items interleave
    /// (a, b, c, a, b, c…), which queue order would load 60 times.
    static func interleaved(keys: [ModelKey] = [a, b, c], seeds: Int = 20) -> [Group] {
        keys.enumerated().map { group(1, $1, waiting: seeds, first: $0) }
    }

    @Test func threeCheckpointsOnOneServerLoadThreeTimes() {
        var sweep = Sweep(groups: Self.interleaved(), servers: 1, slots: 2)
        sweep.run()
        #expect(sweep.loads == [3])
        var strict = Sweep(groups: Self.interleaved(), servers: 1, slots: 2, policy: DispatchPolicy(order: .strict))
        strict.groups = (0..<60).map { Self.group(Int64($0 + 1), [Self.a, Self.b, Self.c][$0 % 3], waiting: 1) }
        strict.run()
        #expect(strict.loads == [60], "strict order keeps the interleaving, and its loads")
    }

    @Test func threeCheckpointsOnTwoServersLoadAtMostFourTimesAndKeepBothBusy() {
        var sweep = Sweep(groups: Self.interleaved(), servers: 2, slots: 2)
        sweep.run()
        #expect(sweep.loads.reduce(0, +) <= 4, "\(sweep.loads)")
        for busy in sweep.busyTicks { #expect(Double(busy) >= 0.9 * Double(sweep.ticks), "busy \(sweep.busyTicks) of \(sweep.ticks)") }
    }

    @Test func aLoraSweepCountsLoadsTheSameWay() {
        let loras = (1...4).map { ModelKey("ckpt_name=sd15.safetensors + lora_name=style\($0).safetensors@1/1") }
        var sweep = Sweep(groups: Self.interleaved(keys: loras, seeds: 10), servers: 1, slots: 2)
        sweep.run()
        #expect(sweep.loads == [4])
    }
}
