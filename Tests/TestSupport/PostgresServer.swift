import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for the tests: `initdb` and `pg_ctl` from Debian's `postgresql`
/// package (installed by `scripts/setup.sh`), in a folder of its own, on a free port, trusting
/// local connections; started on first use and stopped and removed when the test process exits.
/// As root the cluster runs as the `postgres` user (PostgreSQL refuses to run as root), through
/// `setpriv`. Each
/// test takes a database of its own (`database()`), so tests do not see each other's queues.
public enum PostgresServer {
    /// Where the server's programs are, if PostgreSQL is installed.
    public static let binaries: String? = {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/initdb") {
            return "\(base)/\(version)/bin"
        }
        return nil
    }()

    public static var available: Bool { binaries != nil }

    /// Why the PostgreSQL tests cannot run, for the skip message.
    public static let missing = "PostgreSQL is not installed (scripts/setup.sh installs the Debian package postgresql): the queue is tested on SQLite only"

    /// The cluster the tests share, started on first use.
    private static let shared: Result<PostgresCluster, any Error> = Result { try PostgresCluster() }

    public static func cluster() throws -> PostgresCluster { try shared.get() }

    /// The URL of the shared cluster (its `postgres` database).
    public static func serverURL() throws -> String { try cluster().url(database: "postgres") }

    public static var port: Int? { try? cluster().port }

    /// A new, empty database on the shared cluster; its URL.
    public static func database() throws -> String { try cluster().database() }

    /// The password of the clusters' user `comfyq`.
    public static let password = "s3cret-\(UUID().uuidString.prefix(8))"

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Clusters to stop and remove when the process exits.
    nonisolated(unsafe) fileprivate static var started: [String] = []
    fileprivate static let lock = NSLock()

    /// Runs a program with `system()` (output to a file), not Foundation's Process: the server
    /// `pg_ctl start` leaves running inherits what Process watches for the child's exit, so
    /// Process would wait for the server to stop.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], asPostgres: Bool) throws -> (status: Int32, output: String) {
        let log = TestFolder.root.appendingPathComponent("pg-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let user = asPostgres ? "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- " : ""
        // From /, which `postgres` may enter whatever folder the clone (and so the test) is in.
        let command = "cd / && " + user + ([program] + arguments).map(quoted).joined(separator: " ") + " </dev/null >" + quoted(log) + " 2>&1"
        let status = system(command)
        let exit = (status >> 8) & 0xff
        return (Int32(exit), (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}

/// One throwaway cluster: `initdb` into a folder of its own, `pg_ctl start` on a free port;
/// stopped and removed when the process exits. Tests that stop the server (an outage) take a
/// cluster of their own, so other tests are not disturbed.
public final class PostgresCluster: @unchecked Sendable {
    public let folder: String
    public let port: Int
    private let binaries: String
    private var data: String { folder + "/data" }
    private var asPostgres: Bool { getuid() == 0 }

    public init() throws {
        guard let binaries = PostgresServer.binaries else { throw PostgresServer.Failure(message: PostgresServer.missing) }
        self.binaries = binaries
        folder = "/tmp/comfyq-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let root = getuid() == 0
        if root {
            // The cluster's files belong to `postgres`; the folder above it must let it in.
            chmod(folder, 0o700)
            try PostgresServer.run("/bin/chown", ["postgres:postgres", folder], asPostgres: false)
        }
        port = try Ports.outsideEphemeralRange(1)
        // Over TCP a password is needed (so tests see a wrong one refused, and never printed);
        // the socket in the folder is trusted, for createdb.
        let passwordFile = folder + "/password"
        try PostgresServer.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        if root { try PostgresServer.run("/bin/chown", ["postgres:postgres", passwordFile], asPostgres: false) }
        let initdb = try PostgresServer.run(
            binaries + "/initdb",
            ["-D", folder + "/data", "--auth-host=scram-sha-256", "--auth-local=trust", "-U", "comfyq", "--pwfile=\(passwordFile)", "-E", "UTF8", "--no-sync"],
            asPostgres: root)
        guard initdb.status == 0 else { throw PostgresServer.Failure(message: "initdb failed: \(initdb.output)") }
        PostgresServer.lock.withLock {
            if PostgresServer.started.isEmpty {
                atexit {
                    // While the process exits Foundation's Process cannot wait for a child: plain system().
                    guard let binaries = PostgresServer.binaries else { return }
                    let user = getuid() == 0 ? "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- " : ""
                    for folder in PostgresServer.started {
                        _ = system("\(user)\(binaries)/pg_ctl -D '\(folder)/data' -m immediate stop >/dev/null 2>&1; rm -rf '\(folder)'")
                    }
                }
            }
            PostgresServer.started.append(folder)
        }
        try start()
    }

    /// Starts the server (again, after `stop`), on its port; returns once it takes connections.
    public func start() throws {
        let options = "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        let started = try PostgresServer.run(binaries + "/pg_ctl", ["-D", data, "-o", options, "-l", folder + "/log", "-w", "start"], asPostgres: asPostgres)
        guard started.status == 0 else {
            let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
            throw PostgresServer.Failure(message: "pg_ctl start failed: \(started.output) \(log)")
        }
    }

    /// Stops the server at once, as a crash would (`-m immediate`).
    public func stop() throws {
        try PostgresServer.run(binaries + "/pg_ctl", ["-D", data, "-m", "immediate", "stop"], asPostgres: asPostgres)
    }

    public func url(database: String) -> String { "postgresql://comfyq:\(PostgresServer.password)@127.0.0.1:\(port)/\(database)" }

    /// A new, empty database; its URL.
    public func database() throws -> String {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let create = try PostgresServer.run(binaries + "/createdb", ["-h", folder, "-p", String(port), "-U", "comfyq", name], asPostgres: false)
        guard create.status == 0 else { throw PostgresServer.Failure(message: "createdb \(name) failed: \(create.output)") }
        return url(database: name)
    }
}

/// Where a test's queue lives: an SQLite file, or a database of its own on the throwaway
/// PostgreSQL cluster. Queue tests take `QueueBackend.all` as arguments and run on both.
public enum QueueBackend: String, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    /// Both when PostgreSQL is installed (see `PostgresServer.missing` for when it is not).
    public static let all: [QueueBackend] = PostgresServer.available ? [.sqlite, .postgres] : [.sqlite]

    public var description: String { rawValue }

    /// A new, empty queue location.
    public func location() throws -> String {
        switch self {
        case .sqlite: TestFolder.root.appendingPathComponent("comfyq-queue-\(UUID()).db").path
        case .postgres: try PostgresServer.database()
        }
    }
}
