import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A database error with the database's own message.
public struct DatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The SQLite result code (0 for PostgreSQL, which has `sqlState`).
    public var code: Int32
    public var message: String
    /// PostgreSQL's SQLSTATE (`23505`, `08006`…); nil for SQLite.
    public var sqlState: String?
    public var description: String { message }

    public init(code: Int32, message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// Whether waiting cannot mend it: the file is damaged, not a database, read-only, gone, or
    /// its schema is not what comfyq wrote (a table dropped by hand); on PostgreSQL, a missing
    /// table or column, a refused login, a missing database. A full disk, a lock held too long,
    /// an I/O error or a lost connection to PostgreSQL can pass.
    public var isLasting: Bool {
        if let sqlState {
            // 08: connection, 53: resources (disk full…), 57: the server shutting down, 40: a
            // serialization failure or deadlock: all pass. The rest is a fault in what is there.
            return !["08", "53", "57", "40", "55"].contains(String(sqlState.prefix(2)))
        }
        return [SQLITE_ERROR, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_MISMATCH, SQLITE_AUTH, SQLITE_PERM].contains(code & 0xff)
    }
}

/// Where SQL differs between the backends, for the few statements that need it.
public enum SQLDialect: Sendable {
    case sqlite
    case postgres

    /// `a IS b` that is true for two NULLs too.
    public func same(_ column: String) -> String {
        self == .sqlite ? "\(column) IS ?" : "\(column) IS NOT DISTINCT FROM ?"
    }

    /// After a `SELECT` of rows to claim: other runners skip the rows this one is taking
    /// (SQLite's `BEGIN IMMEDIATE` already lets one writer in at a time).
    public var skipLocked: String { self == .sqlite ? "" : " FOR UPDATE SKIP LOCKED" }
}

/// A connection to the queue's database: SQLite (a file) or PostgreSQL (a server). The queue
/// writes its SQL once, with `?` placeholders and `RETURNING`, which both accept; the few
/// differences go through `dialect`. Not thread-safe: the owner serialises access.
public protocol Database: AnyObject {
    /// What messages call it: the file's path, or the server's URL without its password.
    var path: String { get }
    var dialect: SQLDialect { get }
    /// Runs statements (separated by semicolons) that return no rows of interest.
    func execute(_ sql: String) throws(DatabaseError)
    /// Runs a statement with bound parameters and returns every row.
    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue]) throws(DatabaseError) -> [[SQLValue]]
    /// Runs `body` in one transaction that takes the write lock up front, committing if it returns.
    func transaction<T>(_ body: () throws -> T) throws -> T
    /// The schema version migrations reached.
    func schemaVersion() throws(DatabaseError) -> Int
    /// Inside a migration's transaction.
    func setSchemaVersion(_ version: Int) throws(DatabaseError)
    /// Inside a migration's transaction, first: one process migrates at a time.
    func lockSchema() throws(DatabaseError)
    /// Changes whenever anyone commits a change to the queue (another process included).
    func changeToken() throws(DatabaseError) -> String
    /// Changes whenever another connection commits a change (not this one's own writes).
    func othersChangeToken() throws(DatabaseError) -> String
}

extension Database {
    @discardableResult
    public func query(_ sql: String) throws(DatabaseError) -> [[SQLValue]] { try query(sql, []) }
}

/// A value bound to or read from an SQL statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// A connection to one SQLite database file, in WAL mode with a busy timeout, safe for several
/// processes at once. Not thread-safe: the owner (an actor) serialises access.
public final class SQLiteDatabase: Database {
    private var handle: OpaquePointer?
    public let path: String

    /// `SQLITE_TRANSIENT`: SQLite copies the bytes before `bind` returns (not importable as a macro).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens (creating if needed) the database at `path`; `:memory:` for a private in-memory one.
    public init(path: String, busyTimeout milliseconds: Int32 = 5_000) throws(DatabaseError) {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw DatabaseError(code: status, message: "\(path): \(message)")
        }
        sqlite3_busy_timeout(handle, milliseconds)
        if path != ":memory:" {
            // Switching a new file to WAL can fail with SQLITE_BUSY without the busy handler being
            // consulted, when several processes open it at once: retry for up to the timeout.
            var waited: Int32 = 0
            while true {
                do {
                    try execute("PRAGMA journal_mode=WAL")
                    break
                } catch where (error.code == SQLITE_BUSY || error.code == SQLITE_LOCKED) && waited < milliseconds {
                    usleep(10_000)
                    waited += 10
                }
            }
            try execute("PRAGMA synchronous=NORMAL")
        }
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one statement (or several separated by semicolons) that returns no rows of interest.
    public func execute(_ sql: String) throws(DatabaseError) {
        var error: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &error)
        guard status == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "error \(status)"
            sqlite3_free(error)
            throw DatabaseError(code: status, message: "\(path): \(message)")
        }
    }

    public var dialect: SQLDialect { .sqlite }

    /// Runs a statement with bound parameters and returns every row.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue]) throws(DatabaseError) -> [[SQLValue]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw lastError() }
        defer { sqlite3_finalize(statement) }
        try bind(parameters, to: statement)
        return try rows(statement)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction (taking the write lock up front, so two
    /// writer processes wait on the busy timeout instead of failing), committing if it returns.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// `PRAGMA user_version`, which migrations use as the schema version.
    public func schemaVersion() throws(DatabaseError) -> Int {
        guard case .integer(let version)? = try query("PRAGMA user_version").first?.first else { return 0 }
        return Int(version)
    }

    public func setSchemaVersion(_ version: Int) throws(DatabaseError) {
        try execute("PRAGMA user_version = \(version)")
    }

    /// `BEGIN IMMEDIATE` already holds the write lock.
    public func lockSchema() throws(DatabaseError) {}

    public func othersChangeToken() throws(DatabaseError) -> String {
        "\(try query("PRAGMA data_version").first?.first?.int ?? 0)"
    }

    /// `PRAGMA data_version` counts other connections' commits, `total_changes()` this one's.
    public func changeToken() throws(DatabaseError) -> String {
        let version = try query("PRAGMA data_version").first?.first?.int ?? 0
        let own = try query("SELECT total_changes()").first?.first?.int ?? 0
        return "\(version).\(own)"
    }

    func bind(_ parameters: [SQLValue], to statement: OpaquePointer) throws(DatabaseError) {
        for (offset, parameter) in parameters.enumerated() {
            let position = Int32(offset + 1)
            let status: Int32
            switch parameter {
            case .null: status = sqlite3_bind_null(statement, position)
            case .integer(let value): status = sqlite3_bind_int64(statement, position, value)
            case .real(let value): status = sqlite3_bind_double(statement, position, value)
            case .text(let value): status = sqlite3_bind_text(statement, position, value, -1, Self.transient)
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(statement, position, buffer.baseAddress, Int32(buffer.count), Self.transient)
                }
            }
            guard status == SQLITE_OK else { throw lastError() }
        }
    }

    func rows(_ statement: OpaquePointer) throws(DatabaseError) -> [[SQLValue]] {
        var rows: [[SQLValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw lastError() }
            let columns = sqlite3_column_count(statement)
            rows.append((0..<columns).map { column in Self.value(statement, column) })
        }
        return rows
    }

    private static func value(_ statement: OpaquePointer?, _ column: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, column))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, column)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let base = sqlite3_column_blob(statement, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: base, count: count)))
        default: return .null
        }
    }

    func lastError() -> DatabaseError {
        DatabaseError(code: sqlite3_errcode(handle), message: "\(path): \(String(cString: sqlite3_errmsg(handle)))")
    }
}

/// Numbered, append-only schema migrations: migration N runs once, in a transaction, when the
/// database's `user_version` is below N.
public struct Migrator: Sendable {
    public var migrations: [String]

    public init(_ migrations: [String]) { self.migrations = migrations }

    /// Applies the missing migrations and returns the schema version reached.
    @discardableResult
    public func migrate(_ database: any Database) throws -> Int {
        let current = try database.schemaVersion()
        guard current <= migrations.count else {
            throw DatabaseError(
                code: 0,
                message: "\(database.path): schema version \(current) is newer than this comfyq knows (\(migrations.count))")
        }
        for (offset, sql) in migrations.enumerated().dropFirst(current) {
            // The version is read again under the write lock: another process opening the same new
            // database at the same moment may have applied this step already.
            try database.transaction {
                try database.lockSchema()
                guard try database.schemaVersion() == offset else { return }
                try database.execute(sql)
                try database.setSchemaVersion(offset + 1)
            }
        }
        return migrations.count
    }
}

extension SQLValue {
    public var int: Int64? { if case .integer(let value) = self { value } else { nil } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    public var text: String? { if case .text(let value) = self { value } else { nil } }

    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: Double?) { self = value.map { .real($0) } ?? .null }
}
