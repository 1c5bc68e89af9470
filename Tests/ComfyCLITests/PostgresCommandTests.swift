import ComfyCore
import Foundation
import QueueStore
import TestSupport
import Testing

/// The commands on a PostgreSQL queue (`--db postgresql://…`), through the real binary, against
/// a throwaway cluster: the same commands, the same answers, the password never shown.
@Suite(.serialized, .enabled(if: PostgresServer.available, Comment(rawValue: PostgresServer.missing)))
struct PostgresCommandTests {
    @Test func everyCommandWorksOnAPostgreSQLQueue() async throws {
        let night = try Night("pg-commands")
        let url = try PostgresServer.database()
        let environment = night.environment.merging(["COMFYQ_DB": url]) { $1 }
        let job = try night.writeJob(count: 6, steps: 2)
        let add = try await runBinary(["add", job], environment: environment)
        #expect(add.status == .success, "\(add.stderr)")
        let status = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: environment).stdout)
        #expect(status["jobs"]?.arrayValue?.first?["counts"]?["pending"] == 6)
        #expect(try await runBinary(["cancel", "night/5"], environment: environment).stdout == "cancelled 1 item\n")
        let run = try await runBinary(["run", "--simulate", "--no-user-hooks"], environment: environment)
        #expect(run.status == .success, "\(run.stderr)")
        #expect(run.stderr.contains("finished: 5 done, 0 failed"), "\(run.stderr)")
        #expect(!run.stderr.contains(PostgresServer.password) && !run.stdout.contains(PostgresServer.password))
        #expect(try await runBinary(["retry", "night/5"], environment: environment).stdout == "queued 1 item again\n")
        let second = try await runBinary(["run", "--simulate", "--no-user-hooks"], environment: environment)
        #expect(second.status == .success, "\(second.stderr)")
        let done = try JSONValue(parsing: try await runBinary(["status", "--json"], environment: environment).stdout)
        #expect(done["jobs"]?.arrayValue?.first?["counts"]?["done"] == 6, "\(done.serialized())")
        let files = try FileManager.default.contentsOfDirectory(atPath: night.path("out")).filter { $0.hasPrefix("night_") && $0.hasSuffix(".png") }
        #expect(files.count == 6)
        // The queue records which machine wrote each output.
        let recorded = try Queue(path: url).database.query("SELECT outputs FROM items WHERE outputs IS NOT NULL").compactMap { $0.first?.text }
        let hosts = try recorded.flatMap { try JSONValue(parsing: $0).arrayValue ?? [] }.compactMap { $0["host"]?.stringValue }
        #expect(hosts.count == 6 && Set(hosts) == [ProcessInfo.processInfo.hostName], "\(recorded)")
        // serve reads the same queue.
        let port = try Ports.outsideEphemeralRange(1)
        let serve = try startBinary(["serve", "--listen", "127.0.0.1:\(port)"], environment: environment)
        defer {
            serve.terminate()
            serve.waitUntilExit()
        }
        let served = try await eventually("serve to answer") { try? await ServeCommandTests.Served.get("http://127.0.0.1:\(port)/api/status") }
        #expect(try JSONValue(parsing: served.body)["jobs"] == done["jobs"])
        #expect(try await runBinary(["remove", "night"], environment: environment).status == .success)
        #expect(try JSONValue(parsing: try await runBinary(["status", "--json"], environment: environment).stdout)["jobs"] == [])
    }

    @Test func badDatabasesSayWhatIsWrongInOneLine() async throws {
        let night = try Night("pg-bad")
        let port = try #require(PostgresServer.port ?? (try? PostgresServer.serverURL()).flatMap { _ in PostgresServer.port })
        let free = try Ports.outsideEphemeralRange(1)
        let cases: [(String, String)] = [
            ("postgresql://comfyq:\(PostgresServer.password)@127.0.0.1:\(free)/x", "port \(free) failed: Connection refused"),
            ("postgresql://comfyq:wrong-password@127.0.0.1:\(port)/postgres", "password authentication failed for user \"comfyq\""),
            ("postgresql://comfyq:\(PostgresServer.password)@127.0.0.1:\(port)/no_such_db", "database \"no_such_db\" does not exist"),
        ]
        for (url, reason) in cases {
            let status = try await runBinary(["status", "--db", url], environment: night.environment)
            #expect(status.status == .failure, "\(url)")
            let lines = status.stderr.split(separator: "\n")
            #expect(lines.count == 1 && status.stderr.contains(reason), "\(status.stderr)")
            #expect(status.stderr.contains("127.0.0.1"), "names the host: \(status.stderr)")
            #expect(!status.stderr.contains(PostgresServer.password) && !status.stderr.contains("wrong-password"), "\(status.stderr)")
        }
        // A queue made by a newer comfyq is refused with both versions.
        let url = try PostgresServer.database()
        #expect(try await runBinary(["status", "--db", url], environment: night.environment).status == .success)
        try PostgresDatabase(url: url).setSchemaVersion(99)
        let newer = try await runBinary(["status", "--db", url], environment: night.environment)
        #expect(newer.status == .failure)
        #expect(newer.stderr.contains("schema version 99 is newer than this comfyq knows (\(Queue.postgresMigrations.migrations.count))"), "\(newer.stderr)")
    }
}
