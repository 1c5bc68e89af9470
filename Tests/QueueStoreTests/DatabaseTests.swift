import Foundation
import TestSupport
import ComfyCore
import QueueStore
import Testing

@Suite struct DatabaseTests {
    static func temporaryPath() -> String {
        TestFolder.root.appendingPathComponent("comfyq-\(UUID().uuidString).db").path
    }

    @Test func bindsAndReadsEveryType() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)")
        let row: [SQLValue] = [.integer(1 << 40), .real(0.25), .text("héllo 'x'"), .blob([0, 1, 255]), .null]
        try database.query("INSERT INTO t VALUES (?, ?, ?, ?, ?)", row)
        #expect(try database.query("SELECT * FROM t") == [row])
    }

    @Test func failedTransactionRollsBack() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t (x INTEGER)")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try database.transaction {
                try database.query("INSERT INTO t VALUES (1)")
                throw Boom()
            }
        }
        #expect(try database.query("SELECT count(*) FROM t") == [[.integer(0)]])
    }

    @Test func migrationsRunOnceInOrderAndUseWAL() throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let migrator = Migrator(["CREATE TABLE a (x)", "CREATE TABLE b (y)"])
        do {
            let database = try SQLiteDatabase(path: path)
            #expect(try migrator.migrate(database) == 2)
            #expect(try database.query("PRAGMA journal_mode") == [[.text("wal")]])
        }
        let reopened = try SQLiteDatabase(path: path)
        #expect(try reopened.schemaVersion() == 2)
        #expect(try Migrator(["CREATE TABLE a (x)", "CREATE TABLE b (y)", "CREATE TABLE c (z)"]).migrate(reopened) == 3)
        #expect(throws: DatabaseError.self) { try Migrator(["CREATE TABLE a (x)"]).migrate(reopened) }
    }

    @Test func errorsNameTheDatabase() throws {
        let database = try SQLiteDatabase(path: ":memory:")
        #expect {
            try database.query("SELECT * FROM missing")
        } throws: { error in
            "\(error)".contains(":memory:") && "\(error)".contains("no such table: missing")
        }
        #expect(throws: DatabaseError.self) { try SQLiteDatabase(path: "/nonexistent-dir/x/q.db") }
    }
}

@Suite struct MigrationRaceTests {
    /// Several processes opening the same new queue at once: each migration step runs once.
    @Test func concurrentOpenersMigrateOnce() async throws {
        for _ in 0..<5 {
            let path = DatabaseTests.temporaryPath()
            defer { try? FileManager.default.removeItem(atPath: path) }
            let results = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        do {
                            _ = try Queue(path: path)
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                var all: [Bool] = []
                for await result in group { all.append(result) }
                return all
            }
            #expect(results == [true, true, true, true])
        }
    }
}
