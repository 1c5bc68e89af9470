import CLibPQ
import Foundation

/// A connection to a PostgreSQL server through libpq, for a queue that many machines share.
///
/// Statements keep the queue's `?` placeholders (numbered `$1…` here) and go as text; results
/// come back typed by their column types. Every write to the queue's tables notifies channel
/// `comfyq` (a statement trigger), and this connection listens on it: `changeToken` counts the
/// notifications, so a change by any runner, on any machine, shows once it is committed.
/// A connection that was lost is re-established before the next statement (outside a
/// transaction; inside one the statement fails and the caller's retry runs it afresh).
public final class PostgresDatabase: Database {
    private var connection: OpaquePointer?
    /// The URL without its password, for every message.
    public let path: String
    private let url: String
    private var inTransaction = false
    /// Statements prepared on this connection, by their text: planned once, not on every call.
    private var prepared: [String: String] = [:]
    /// Notifications seen: all, and those another connection sent.
    private var notified = 0
    private var notifiedByOthers = 0

    public var dialect: SQLDialect { .postgres }

    public static func isURL(_ text: String) -> Bool { text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") }

    /// `postgresql://user:secret@host/db` → `postgresql://user@host/db`: credentials are never shown.
    public static func displayed(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = nil
        if let query = components.queryItems, query.contains(where: { $0.name == "password" }) {
            components.queryItems = query.filter { $0.name != "password" }
        }
        return components.string ?? url
    }

    public init(url: String) throws(DatabaseError) {
        self.url = url
        path = Self.displayed(url)
        try connect()
    }

    deinit { PQfinish(connection) }

    private func connect() throws(DatabaseError) {
        PQfinish(connection)
        prepared = [:]  // a new connection has none
        connection = PQconnectdb(url)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = Self.oneLine(connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory")
            throw DatabaseError(code: 0, message: "\(path): \(message)", sqlState: "08001")
        }
        // A server that is not PostgreSQL (or too old for what the queue uses) says so here.
        guard PQserverVersion(connection) >= 120000 else {
            throw DatabaseError(code: 0, message: "\(path): PostgreSQL 12 or newer is needed (this server is \(PQserverVersion(connection)))", sqlState: "0A000")
        }
        // The server's notices (a shutdown's "terminating connection") are not for the user's terminal.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        _ = try run("SET client_min_messages = warning", [])
        _ = try run("LISTEN comfyq", [])
    }

    /// libpq's messages span lines ("connection to server at … failed: …\n\tIs the server running…").
    static func oneLine(_ message: String) -> String {
        message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    public func execute(_ sql: String) throws(DatabaseError) {
        try reconnectIfLost()
        guard let result = PQexec(connection, sql) else { throw lastError() }
        defer { PQclear(result) }
        try check(result)
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue]) throws(DatabaseError) -> [[SQLValue]] {
        try reconnectIfLost()
        return try run(Self.numbered(sql), parameters)
    }

    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        inTransaction = true
        defer { inTransaction = false }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if PQstatus(connection) == CONNECTION_OK { try? execute("ROLLBACK") }  // a lost connection rolled back already
            throw error
        }
    }

    public func schemaVersion() throws(DatabaseError) -> Int {
        // The catalog read as a table (a fresh snapshot), not through to_regclass's cache, which
        // can miss a table another process created while this one waited for the schema lock.
        let exists = try query("SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'comfyq_schema' AND schemaname = current_schema()")
        guard exists.first?.first?.int == 1 else { return 0 }
        return Int(try query("SELECT max(version) FROM comfyq_schema").first?.first?.int ?? 0)
    }

    public func setSchemaVersion(_ version: Int) throws(DatabaseError) {
        try execute("CREATE TABLE IF NOT EXISTS comfyq_schema (version INTEGER NOT NULL)")
        try query("DELETE FROM comfyq_schema")
        try query("INSERT INTO comfyq_schema (version) VALUES (?)", [.integer(Int64(version))])
    }

    /// A lock held until the transaction ends, the same number for every comfyq: two processes
    /// opening a new database at once do not both create its tables.
    public func lockSchema() throws(DatabaseError) {
        try query("SELECT pg_advisory_xact_lock(7243001)")
    }

    public func changeToken() throws(DatabaseError) -> String {
        try drainNotifications()
        return "\(notified)"
    }

    public func othersChangeToken() throws(DatabaseError) -> String {
        try drainNotifications()
        return "\(notifiedByOthers)"
    }

    /// Waits up to `timeout` seconds for a notification (another process's commit): true when
    /// one came. What `--watch` sleeps on instead of polling.
    public func waitForChange(timeout: Double) throws(DatabaseError) -> Bool {
        let before = notified
        try drainNotifications()
        if notified != before { return true }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(max(0, timeout * 1000)))
        if ready > 0 { try drainNotifications() }
        return notified != before
    }

    private func drainNotifications() throws(DatabaseError) {
        try reconnectIfLost()
        guard PQconsumeInput(connection) == 1 else { throw lastError() }
        let own = PQbackendPID(connection)
        while let notification = PQnotifies(connection) {
            notified += 1
            if notification.pointee.be_pid != own { notifiedByOthers += 1 }
            PQfreemem(notification)
        }
    }

    private func reconnectIfLost() throws(DatabaseError) {
        guard PQstatus(connection) != CONNECTION_OK, !inTransaction else { return }
        try connect()
        // Whatever happened meanwhile was not heard: say that everything may have changed.
        notified += 1
        notifiedByOthers += 1
    }

    /// `?` → `$1`, `$2`… outside quoted strings.
    static func numbered(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.count + 8)
        var number = 0
        var quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?" && !quoted {
                number += 1
                out += "$\(number)"
            } else {
                out.append(character)
            }
        }
        return out
    }

    private func run(_ sql: String, _ parameters: [SQLValue]) throws(DatabaseError) -> [[SQLValue]] {
        let texts: [String?] = parameters.map { value in
            switch value {
            case .null: nil
            case .integer(let number): String(number)
            case .real(let number): number.isFinite ? "\(number)" : (number.isNaN ? "NaN" : (number > 0 ? "Infinity" : "-Infinity"))
            case .text(let text): text
            case .blob(let bytes): "\\x" + bytes.map { String(format: "%02x", $0) }.joined()
            }
        }
        // Statements with parameters are the queue's repeated ones: prepared once each (the few
        // built with values inline, such as IN lists, stay one-off).
        var name: String?
        if !parameters.isEmpty {
            if let known = prepared[sql] {
                name = known
            } else if prepared.count < 500 {
                let fresh = "comfyq_\(prepared.count)"
                guard let made = PQprepare(connection, fresh, sql, Int32(parameters.count), nil) else { throw lastError() }
                defer { PQclear(made) }
                try check(made)
                prepared[sql] = fresh
                name = fresh
            }
        }
        let result = withCStrings(texts) { pointers in
            if let name {
                PQexecPrepared(connection, name, Int32(pointers.count), pointers, nil, nil, 0)
            } else {
                PQexecParams(connection, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
            }
        }
        guard let result else { throw lastError() }
        defer { PQclear(result) }
        try check(result)
        let rows = Int(PQntuples(result))
        let columns = Int(PQnfields(result))
        var out: [[SQLValue]] = []
        out.reserveCapacity(rows)
        let types = (0..<columns).map { PQftype(result, Int32($0)) }
        for row in 0..<rows {
            var values: [SQLValue] = []
            values.reserveCapacity(columns)
            for column in 0..<columns {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(.null)
                    continue
                }
                let text = String(cString: PQgetvalue(result, Int32(row), Int32(column)))
                switch types[column] {
                case 16: values.append(.integer(text == "t" ? 1 : 0))  // bool
                case 20, 21, 23, 26: values.append(Int64(text).map { .integer($0) } ?? .text(text))  // int8, int2, int4, oid
                case 700, 701, 1700: values.append(Double(text).map { .real($0) } ?? .text(text))  // float4, float8, numeric
                default: values.append(.text(text))
                }
            }
            out.append(values)
        }
        return out
    }

    private func check(_ result: OpaquePointer) throws(DatabaseError) {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = Self.oneLine(String(cString: PQresultErrorMessage(result)))
            throw DatabaseError(code: 0, message: "\(path): \(message)", sqlState: state ?? (PQstatus(connection) == CONNECTION_OK ? nil : "08006"))
        }
    }

    private func lastError() -> DatabaseError {
        let lost = PQstatus(connection) != CONNECTION_OK
        return DatabaseError(code: 0, message: "\(path): \(Self.oneLine(String(cString: PQerrorMessage(connection))))", sqlState: lost ? "08006" : "XX000")
    }
}

/// Calls `body` with C strings for `texts` (NULL for nil), valid for the call.
private func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var storage: [UnsafeMutablePointer<CChar>?] = texts.map { $0.map { strdup($0) } ?? nil }
    defer { for pointer in storage { free(pointer) } }
    return body(storage.map { UnsafePointer($0) })
}
