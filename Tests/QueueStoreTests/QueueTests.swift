import ComfyCore
import Foundation
import TestSupport
import QueueStore
import Testing

@Suite struct QueueTests {
    static func spec(name: String = "night", seeds: Int = 5, priority: Int = 0) throws -> JobSpec {
        let workflow = Workflow([
            WorkflowNode(id: "3", classType: "KSampler", inputs: ["seed": 1, "steps": 4, "latent_image": ["5", 0]]),
            WorkflowNode(id: "5", classType: "EmptyLatentImage", inputs: ["width": 64]),
            WorkflowNode(id: "9", classType: "SaveImage", inputs: ["images": ["3", 0]]),
        ])
        let text = #"{name: "\#(name)", workflow: "w.json", seeds: {start: 1, count: \#(seeds)}, priority: \#(priority)}"#
        let loader = JobLoader(readFile: { _ in workflow.json.serialized() }, fileExists: { _ in true })
        return try loader.load(text: text, path: "\(name).json")
    }

    static func temporaryPath() -> String {
        TestFolder.root.appendingPathComponent("comfyq-queue-\(UUID()).db").path
    }

    @Test(arguments: QueueBackend.all)
    func addListCancelRetryRemove(_ backend: QueueBackend) throws {
        let queue = try Queue(path: try backend.location())
        let night = try Self.spec()
        let id = try queue.add(night, items: night.expand(random: { 0 }), now: 100)
        let urgent = try Self.spec(name: "urgent", seeds: 2, priority: 9)
        try queue.add(urgent, items: urgent.expand(random: { 0 }), now: 101)

        let jobs = try queue.jobs()
        #expect(jobs.map(\.name) == ["urgent", "night"])  // priority first
        #expect(jobs.last?.counts == [.pending: 5])
        #expect(try queue.items(jobID: id).map(\.parameters).first == #"{"3.seed":1}"#)

        #expect(try queue.cancel(queue.target("night/2"), now: 102) == 1)
        #expect(try queue.cancel(queue.target("night"), now: 103) == 4)
        #expect(try queue.job(named: "night").counts == [.cancelled: 5])
        #expect(try queue.retry(queue.target("night/2"), now: 104) == 1)
        #expect(try queue.job(named: "night").counts == [.cancelled: 4, .pending: 1])
        #expect(throws: QueueError.self) { try queue.remove(jobID: id) }  // one item is pending again
        try queue.cancel(.job(id), now: 105)
        try queue.remove(jobID: id)
        #expect(try queue.jobs().map(\.name) == ["urgent"])
        #expect(try queue.items(jobID: id).isEmpty)
    }

    @Test(arguments: QueueBackend.all)
    func referencesNameWhatIsWrong(_ backend: QueueBackend) throws {
        let queue = try Queue(path: try backend.location())
        let night = try Self.spec()
        try queue.add(night, items: night.expand(random: { 0 }), now: 1)
        #expect(throws: QueueError(message: "no job \"day\" (jobs: night (#1))")) { try queue.target("day") }
        #expect(throws: QueueError(message: "job night has items 0 to 4, not 9")) { try queue.target("night/9") }
        #expect(try queue.target("1/4") == .item(job: 1, index: 4))
    }

    @Test(arguments: QueueBackend.all)
    func twoProcessesShareTheQueue(_ backend: QueueBackend) throws {
        // Two connections stand in for `add` and `status` running beside `run`.
        let path = try backend.location()
        let writer = try Queue(path: path)
        let reader = try Queue(path: path)
        let before = try reader.changeToken()
        let night = try Self.spec(seeds: 1000)
        try writer.add(night, items: night.expand(random: { 0 }), now: 1)
        #expect(try reader.jobs().first?.total == 1000)
        #expect(try reader.changeToken() != before, "the reader hears of the writer's commit")
        if backend == .sqlite { #expect(try reader.database.query("PRAGMA journal_mode") == [[.text("wal")]]) }
    }

    /// Dispatch's pending summary: this connection's claims keep it exact; other processes'
    /// writes are read as soon as they are heard of (SQLite's data_version at once, PostgreSQL's
    /// notification a moment later), or after `othersMaxAge` when the caller accepts that; a claim
    /// of a group another process emptied claims nothing and drops the summary.
    @Test(arguments: QueueBackend.all)
    func thePendingSummaryFollowsOtherProcesses(_ backend: QueueBackend) async throws {
        let path = try backend.location()
        let runner = try Queue(path: path)
        let other = try Queue(path: path)
        let night = try Self.spec(seeds: 3)
        try other.add(night, items: night.expand(random: { 0 }), now: 1)
        let groups = try runner.pendingGroups(othersMaxAge: 60)
        #expect(groups.map(\.waiting) == [3])
        #expect(try runner.claim(groups[0].id, server: "gpu0", promptID: "p1", now: 2) != nil)
        #expect(try runner.pendingGroups(othersMaxAge: 60).map(\.waiting) == [2], "its own claim, counted without a read")

        let urgent = try Self.spec(name: "urgent", seeds: 2, priority: 5)
        try other.add(urgent, items: urgent.expand(random: { 0 }), now: 3)
        #expect(try runner.pendingGroups(othersMaxAge: 60).map(\.waiting) == [2], "another's add, within the age accepted")
        // With no age accepted, as soon as the other's commit is heard of (PostgreSQL's
        // notification arrives a moment after the commit: waited for, up to 10 s).
        var seen = try runner.pendingGroups().map(\.waiting).sorted()
        if seen != [2, 2], try runner.waitForChange(timeout: 10) {
            seen = try runner.pendingGroups().map(\.waiting).sorted()
        }
        #expect(seen == [2, 2], "the other's add, read when no age is accepted")

        // Another process takes the last two: the claim finds nothing and the next read is fresh.
        let cached = try runner.pendingGroups(othersMaxAge: 60)
        let nightGroup = try #require(cached.first { $0.priority == 0 })
        while try other.claim(nightGroup.id, server: "gpu1", promptID: UUID().uuidString, now: 4) != nil {}
        #expect(try runner.pendingGroups(othersMaxAge: 60).contains { $0.id == nightGroup.id }, "stale, as accepted")
        #expect(try runner.claim(nightGroup.id, server: "gpu0", promptID: "p2", now: 5) == nil)
        #expect(try runner.pendingGroups(othersMaxAge: 60).map(\.priority) == [5])
    }

    /// Skipped, saying why, where PostgreSQL cannot be installed: the suites then run on SQLite only.
    @Test(.enabled(if: PostgresServer.available, Comment(rawValue: PostgresServer.missing)))
    func thePostgreSQLClusterStarts() throws {
        let queue = try Queue(path: try PostgresServer.database())
        #expect(queue.database.dialect == .postgres)
        #expect(try queue.database.schemaVersion() == Queue.postgresMigrations.migrations.count)
    }

    @Test func defaultPathFollowsTheEnvironment() {
        #expect(Queue.defaultPath(environment: ["COMFYQ_DB": "/x/q.db"], home: "/home/u") == "/x/q.db")
        #expect(Queue.defaultPath(environment: ["XDG_STATE_HOME": "/s"], home: "/home/u") == "/s/comfyq/queue.db")
        #expect(Queue.defaultPath(environment: [:], home: "/home/u") == "/home/u/.local/state/comfyq/queue.db")
    }
}
