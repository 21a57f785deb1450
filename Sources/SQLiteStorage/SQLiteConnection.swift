import CSQLite
import Domain

/// A value bound to or read from SQLite.
enum SQLValue: Sendable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// One SQLite connection with a cache of prepared statements. Not thread-safe by itself:
/// `SQLiteStore` gives each connection to exactly one serial queue, which is the only place
/// that touches it.
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(handle)
            handle = nil
            throw AdServeError(.storage, "opening \(path): \(message)")
        }
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without parameters (schema, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw AdServeError(Self.code(rc), message)
        }
    }

    /// Runs a statement that returns no rows.
    func run(_ sql: String, _ bindings: [SQLValue] = []) throws {
        try forEachRow(sql, bindings) { _ in }
    }

    /// Runs a statement and maps each row while it is current.
    func query<T>(_ sql: String, _ bindings: [SQLValue] = [], _ map: (Row) throws -> T) throws -> [T] {
        var values: [T] = []
        try forEachRow(sql, bindings) { values.append(try map($0)) }
        return values
    }

    /// Runs a statement, handing each row to `body` without collecting them.
    func forEachRow(_ sql: String, _ bindings: [SQLValue], _ body: (Row) throws -> Void) throws {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in bindings.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .real(let v): rc = sqlite3_bind_double(statement, index, v)
            case .text(let v): rc = sqlite3_bind_text(statement, index, v, -1, SQLITE_TRANSIENT)
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw lastError("binding parameter \(index)") }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw lastError("running statement") }
            try body(Row(statement: statement))
        }
    }

    /// Rows changed by the last INSERT/UPDATE/DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs reads inside BEGIN … COMMIT, so they all see the same snapshot.
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        defer { try? execute("COMMIT") }
        return try body()
    }

    /// Runs `body` inside BEGIN IMMEDIATE … COMMIT; rolls back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw lastError("preparing \(sql.prefix(60))")
        }
        statements[sql] = statement
        return statement
    }

    private func lastError(_ doing: String) -> AdServeError {
        AdServeError(Self.code(sqlite3_errcode(handle)), "\(doing): \(String(cString: sqlite3_errmsg(handle)))")
    }

    /// A full disk or a failing device is `unavailable` (the API answers 503 and acknowledges
    /// nothing; the client retries); anything else is a storage error.
    private static func code(_ rc: Int32) -> AdServeError.Code {
        switch rc & 0xFF {
        case SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY, SQLITE_CANTOPEN: .unavailable
        default: .storage
        }
    }

    /// Caps this connection's database size in pages (`PRAGMA max_page_count`): what a full disk
    /// looks like to SQLite, for tests.
    func limitPages(to pages: Int64) throws {
        try execute("PRAGMA max_page_count = \(pages)")
    }
}

/// A row being stepped; valid only inside the callback that receives it.
struct Row {
    fileprivate let statement: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        return String(cString: pointer)
    }
    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    func blob(_ column: Int32) -> [UInt8]? {
        guard !isNull(column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// SQLite's "copy this buffer now" destructor marker.
private let SQLITE_TRANSIENT = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
