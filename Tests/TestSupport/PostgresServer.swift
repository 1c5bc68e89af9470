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

    struct Cluster {
        var folder: String
        var port: Int
    }

    nonisolated(unsafe) private static var stopFolder: String?
    nonisolated(unsafe) private static var stopBinaries: String?

    private static let cluster: Result<Cluster, any Error> = Result {
        guard let binaries else { throw Failure(message: missing) }
        let folder = "/tmp/comfyq-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let root = getuid() == 0
        if root {
            // The cluster's files belong to `postgres`; the folder above it must let it in.
            chmod(folder, 0o700)
            _ = try run("/bin/chown", ["postgres:postgres", folder], asPostgres: false)
        }
        let port = try Ports.outsideEphemeralRange(1)
        let data = folder + "/data"
        // Over TCP a password is needed (so tests see a wrong one refused, and never printed);
        // the socket in the folder is trusted, for createdb.
        let passwordFile = folder + "/password"
        try password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        if root { _ = try run("/bin/chown", ["postgres:postgres", passwordFile], asPostgres: false) }
        let initdb = try run(
            binaries + "/initdb",
            ["-D", data, "--auth-host=scram-sha-256", "--auth-local=trust", "-U", "comfyq", "--pwfile=\(passwordFile)", "-E", "UTF8", "--no-sync"],
            asPostgres: root)
        guard initdb.status == 0 else { throw Failure(message: "initdb failed: \(initdb.output)") }
        let options = "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        let start = try run(binaries + "/pg_ctl", ["-D", data, "-o", options, "-l", folder + "/log", "-w", "start"], asPostgres: root)
        guard start.status == 0 else {
            let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
            throw Failure(message: "pg_ctl start failed: \(start.output) \(log)")
        }
        stopFolder = folder
        stopBinaries = binaries
        atexit {
            // While the process exits Foundation's Process cannot wait for a child: plain system().
            guard let folder = PostgresServer.stopFolder, let binaries = PostgresServer.stopBinaries else { return }
            let user = getuid() == 0 ? "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- " : ""
            _ = system("\(user)\(binaries)/pg_ctl -D '\(folder)/data' -m immediate stop >/dev/null 2>&1; rm -rf '\(folder)'")
        }
        return Cluster(folder: folder, port: port)
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// The password of the cluster's user `comfyq`.
    public static let password = "s3cret-\(UUID().uuidString.prefix(8))"

    /// The URL of the cluster (its `postgres` database).
    public static func serverURL() throws -> String {
        let cluster = try cluster.get()
        return "postgresql://comfyq:\(password)@127.0.0.1:\(cluster.port)/postgres"
    }

    public static var port: Int? { try? cluster.get().port }

    /// A new, empty database on the cluster; its URL.
    public static func database() throws -> String {
        let cluster = try cluster.get()
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let create = try run(binaries! + "/createdb", ["-h", cluster.folder, "-p", String(cluster.port), "-U", "comfyq", name], asPostgres: false)
        if create.status != 0 {
            throw Failure(message: "createdb \(name) failed: \(create.output)")
        }
        return "postgresql://comfyq:\(password)@127.0.0.1:\(cluster.port)/\(name)"
    }

    /// Stops the server (a crash, as `kill -9` would), for tests of a database that goes away.
    public static func stop() throws {
        let cluster = try cluster.get()
        _ = try run(binaries! + "/pg_ctl", ["-D", cluster.folder + "/data", "-m", "immediate", "stop"], asPostgres: getuid() == 0)
    }

    /// Starts it again after `stop`, on the same port.
    public static func start() throws {
        let cluster = try cluster.get()
        let options = "-p \(cluster.port) -k \(cluster.folder) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        let started = try run(binaries! + "/pg_ctl", ["-D", cluster.folder + "/data", "-o", options, "-l", cluster.folder + "/log", "-w", "start"], asPostgres: getuid() == 0)
        guard started.status == 0 else { throw Failure(message: "pg_ctl start failed: \(started.output)") }
    }

    /// Runs a program with `system()` (output to a file), not Foundation's Process: the server
    /// `pg_ctl start` leaves running inherits what Process watches for the child's exit, so
    /// Process would wait for the server to stop.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], asPostgres: Bool) throws -> (status: Int32, output: String) {
        let log = TestFolder.root.appendingPathComponent("pg-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let user = asPostgres ? "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- " : ""
        let command = user + ([program] + arguments).map(quoted).joined(separator: " ") + " </dev/null >" + quoted(log) + " 2>&1"
        let status = system(command)
        let exit = (status >> 8) & 0xff
        return (Int32(exit), (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
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
