import Dispatch
import Foundation
@testable import Runner
import Synchronization
import TestSupport
import Testing

@Suite struct BlockingExecutorTests {
    final class Count: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var current: Int { value.withLock { $0 } }
    }

    /// An actor whose work blocks, as the runner's does on its database.
    actor Blocker {
        private nonisolated let executor = BlockingExecutor(label: "comfyq.test.blocker")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        func block(entered: Count, until semaphore: DispatchSemaphore) -> Bool {
            entered.add()
            return semaphore.wait(timeout: .now() + 20) == .success
        }
    }

    /// More actors blocked at once than the process has cores (the cooperative pool's width),
    /// and a task on that pool waits until all of them are blocked before it frees them. On
    /// the default executor the blocked actors would hold every thread of the pool and the
    /// freeing task would never run (each wait gives up after 20 s and the test fails).
    @Test func blockedActorsLeaveTheSharedThreadsToOtherTasks() async throws {
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let entered = Count()
        let semaphore = DispatchSemaphore(value: 0)
        let blockers = (0..<count).map { _ in Blocker() }
        let released = await withTaskGroup(of: Bool?.self) { group in
            for blocker in blockers { group.addTask { await blocker.block(entered: entered, until: semaphore) } }
            group.addTask {
                _ = try? await eventually("all \(count) blockers to block", timeout: 20, describe: { "\(entered.current) blocked" }) {
                    entered.current == count ? true : nil
                }
                for _ in 0..<count { semaphore.signal() }
                return nil
            }
            var released = 0
            for await result in group where result == true { released += 1 }
            return released
        }
        #expect(released == count)
    }
}
