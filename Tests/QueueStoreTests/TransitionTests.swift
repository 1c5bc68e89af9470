import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing

/// The runner's transitions: never the same item twice, never finished twice.
@Suite struct TransitionTests {
    @Test(arguments: QueueBackend.all)
    func claimsFollowPriorityThenJobThenItemOrder(_ backend: QueueBackend) throws {
        let path = try backend.location()
        let queue = try Queue(path: path)
        let low = try QueueTests.spec(name: "low", seeds: 2)
        let high = try QueueTests.spec(name: "high", seeds: 2, priority: 5)
        try queue.add(low, items: low.expand(random: { 0 }), now: 0)
        try queue.add(high, items: high.expand(random: { 0 }), now: 0)
        var order: [String] = []
        while let claimed = try queue.claimNext(server: "s", promptID: UUID().uuidString, now: 1) {
            order.append("\(claimed.item.jobName)/\(claimed.item.index)")
            #expect(claimed.item.state == .submitting)
            #expect(claimed.item.attempts == 1)
            #expect(claimed.workflow.contains("KSampler"))
        }
        #expect(order == ["high/0", "high/1", "low/0", "low/1"])
    }

    @Test(arguments: QueueBackend.all)
    func finishAndRequeueAreGuardedByStateAndPromptID(_ backend: QueueBackend) throws {
        let path = try backend.location()
        let queue = try Queue(path: path)
        let job = try QueueTests.spec(seeds: 1)
        try queue.add(job, items: job.expand(random: { 0 }), now: 0)
        let claimed = try #require(try queue.claimNext(server: "s", promptID: "p1", now: 1))
        #expect(try queue.markRunning(claimed.item.id, promptID: "p1", now: 2))
        #expect(!(try queue.markRunning(claimed.item.id, promptID: "p1", now: 2)))  // already running
        #expect(try queue.recordProgress(claimed.item.id, promptID: "p1", phase: "sampling", step: 3, steps: 20, fraction: 0.3, now: 3))
        #expect(!(try queue.finish(claimed.item.id, promptID: "other", state: .done, now: 4)))  // a stale prompt id
        #expect(try queue.requeue(claimed.item.id, promptID: "p1", error: "lost in a restart", now: 4))
        let again = try #require(try queue.claimNext(server: "s", promptID: "p2", now: 5))
        #expect(again.item.id == claimed.item.id)
        #expect(again.item.attempts == 2)
        #expect(try queue.finish(again.item.id, promptID: "p2", state: .done, outputs: ["a.png"], now: 6))
        #expect(!(try queue.finish(again.item.id, promptID: "p2", state: .failed, error: "late", now: 7)))  // once only
        #expect(!(try queue.recordProgress(again.item.id, promptID: "p2", phase: "saving", step: nil, steps: nil, fraction: 0.9, now: 8)))
        #expect(try queue.job(named: "night").counts == [.done: 1])
        #expect(try queue.inFlight().isEmpty)
    }

    /// Two processes claiming at once never get the same item.
    @Test(arguments: QueueBackend.all)
    func concurrentClaimsNeverOverlap(_ backend: QueueBackend) async throws {
        let path = try backend.location()
        let setup = try Queue(path: path)
        let job = try QueueTests.spec(seeds: 200)
        try setup.add(job, items: job.expand(random: { 0 }), now: 0)
        let claims = await withTaskGroup(of: [Int64].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    // Each worker its own connection, as separate processes would have.
                    guard let queue = try? Queue(path: path) else { return [] }
                    var mine: [Int64] = []
                    while let claimed = try? queue.claimNext(server: "w\(worker)", promptID: UUID().uuidString, now: 1) {
                        mine.append(claimed.item.id)
                    }
                    return mine
                }
            }
            var all: [Int64] = []
            for await claimed in group { all += claimed }
            return all
        }
        #expect(claims.count == 200)
        #expect(Set(claims).count == 200)
    }
}
