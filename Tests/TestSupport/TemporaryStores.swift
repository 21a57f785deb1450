import Domain
import Foundation
import Logging
import PostgresNIO
import PostgresStorage
import SQLiteStorage
import Storage

/// The stores the contract suite runs against. PostgreSQL runs where
/// `ADSERVE_TEST_POSTGRES_URL` names a server whose user may create databases (`.ci/run` starts
/// one); under CI it must be set, so a missing server fails the suite instead of skipping it.
public enum StoreKind: String, Sendable, CaseIterable {
    case sqlite, postgres

    public static let postgresURLVariable = "ADSERVE_TEST_POSTGRES_URL"

    public static var available: [StoreKind] {
        let environment = ProcessInfo.processInfo.environment
        let required = environment["CI"] == "true" || environment[postgresURLVariable] != nil
        return required ? [.sqlite, .postgres] : [.sqlite]
    }

    /// Runs `body` on a new, empty store of this kind, dropped afterwards.
    public func withTemporary<T>(_ body: (TemporaryStore) async throws -> T) async throws -> T {
        let database = try await temporary()
        do {
            let result = try await body(database)
            await database.drop()
            return result
        } catch {
            await database.drop()
            throw error
        }
    }

    /// A new, empty store of this kind, removed by `drop()`.
    public func temporary() async throws -> TemporaryStore {
        switch self {
        case .sqlite: return TemporaryStore(sqlite: TemporaryDatabase())
        case .postgres: return try await TemporaryStore(postgres: TemporaryPostgresDatabase.create())
        }
    }
}

/// An empty database of either kind; each `open()` is a new connection to it, as another
/// process (another serving node) would open it.
public final class TemporaryStore: Sendable {
    private let sqlite: TemporaryDatabase?
    private let postgres: TemporaryPostgresDatabase?
    private let opened = OpenedStores()

    init(sqlite: TemporaryDatabase) {
        self.sqlite = sqlite
        self.postgres = nil
    }

    init(postgres: TemporaryPostgresDatabase) {
        self.sqlite = nil
        self.postgres = postgres
    }

    /// `timeout`: how long a PostgreSQL operation may take before it is `unavailable` — long by
    /// default, as the whole suite shares two cores with the simulator tests; short for a test
    /// of an outage.
    public func open(timeout: Duration = .seconds(120)) async throws -> any AdStore {
        if let sqlite { return try sqlite.open() }
        let store = try await PostgresStore.open(url: postgres!.url, maximumConnections: 8, connectTimeout: .seconds(30), timeout: timeout)
        opened.add(store)
        return store
    }

    /// A PostgreSQL outage and its end: the database refuses new connections and drops the
    /// ones it has, or takes them again.
    public func setConnectable(_ connectable: Bool) async throws {
        guard let postgres else { throw AdServeError(.storage, "only a PostgreSQL store has an outage") }
        try await postgres.setConnectable(connectable)
    }

    /// Closes what `open()` opened and removes the database.
    public func drop() async {
        opened.closeAll()
        await postgres?.drop()
    }
}

private final class OpenedStores: @unchecked Sendable {
    private let lock = NSLock()
    private var stores: [PostgresStore] = []
    func add(_ store: PostgresStore) { lock.withLock { stores.append(store) } }
    func closeAll() { lock.withLock { stores.forEach { $0.close() }; stores.removeAll() } }
}

/// A database of its own on the test server, made for one test and dropped after it.
public final class TemporaryPostgresDatabase: Sendable {
    public let url: String
    private let name: String
    private let adminURL: String

    private init(url: String, name: String, adminURL: String) {
        self.url = url
        self.name = name
        self.adminURL = adminURL
    }

    public static func create() async throws -> TemporaryPostgresDatabase {
        guard let base = ProcessInfo.processInfo.environment[StoreKind.postgresURLVariable], !base.isEmpty else {
            throw AdServeError(.storage, "\(StoreKind.postgresURLVariable) is not set: start PostgreSQL and name it (postgres://user:password@127.0.0.1:5432/database)")
        }
        let name = "adserve_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await administer(base, "CREATE DATABASE \(name)")
        let address = try PostgresStore.Address(url: base)
        let url = "postgres://\(address.user)\(address.password.map { ":\($0)" } ?? "")@\(address.host):\(address.port)/\(name)"
        return TemporaryPostgresDatabase(url: url, name: String(name), adminURL: base)
    }

    public func drop() async {
        try? await Self.administer(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    func setConnectable(_ connectable: Bool) async throws {
        try await Self.administer(adminURL, "ALTER DATABASE \(name) ALLOW_CONNECTIONS \(connectable)")
        if !connectable {
            try await Self.administer(adminURL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)' AND pid <> pg_backend_pid()")
        }
    }

    /// One statement on the base database, over a connection of its own.
    private static func administer(_ url: String, _ sql: String) async throws {
        let address = try PostgresStore.Address(url: url)
        let configuration = PostgresConnection.Configuration(
            host: address.host, port: address.port, username: address.user, password: address.password, database: address.database, tls: .disable)
        let logger = Logger(label: "adserve.test.postgres")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        defer { Task { try? await connection.close() } }
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }
}
