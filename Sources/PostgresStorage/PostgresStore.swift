import Domain
import Foundation
import Logging
import PostgresNIO
import Storage
import Synchronization

/// The fleet's store: one PostgreSQL database that every serving node shares, through
/// postgres-nio's connection pool. The same contract as the SQLite store, and the same
/// guarantees under concurrency from several processes:
/// - an event is recorded once by its primary key (placement key, type): two nodes inserting the
///   same event at the same moment wait on each other, and the second sees the first's row;
/// - a billed event locks its campaign's row before it reads the spend, so charges of one
///   campaign are serialized fleet-wide and never pass a budget;
/// - catalog revisions come from one counter row locked in each catalog write, so they commit in
///   order and `catalogChanges(after:)` is a cursor that never skips a write;
/// - a cursor-guarded activity update applies once, whichever node gets there first.
/// An error that is not the server's answer (the database unreachable, a connection lost) is
/// `AdServeError.unavailable`, which the API turns into 503: nothing is acknowledged.
public final class PostgresStore: AdStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// How long one operation may wait for a connection and its answer before it is given up as
    /// unavailable: during an outage the pool keeps retrying connections for a minute, and a
    /// caller (an event, the fleet sync) should hear at once that the store is away.
    private let timeout: Duration
    /// The database's address without its password, for logs and the start banner.
    public let location: String

    /// Where a database is and how to reach it, from a `postgres://user:password@host:port/database`
    /// URL. `?sslmode=require` (or `verify-full`) demands TLS with a verified certificate,
    /// `prefer` tries it; without `sslmode` the connection is plain, as on a private network.
    public struct Address: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var tls: TLSMode

        public enum TLSMode: String, Sendable { case disable, prefer, require }

        public init(url: String) throws {
            guard let parts = URLComponents(string: url), ["postgres", "postgresql"].contains(parts.scheme ?? "") else {
                throw AdServeError.invalid("store", "must be a postgres://user:password@host:port/database URL")
            }
            guard let user = parts.user, !user.isEmpty else { throw AdServeError.invalid("store", "names no user (postgres://USER@host/database)") }
            let database = String(parts.path.drop { $0 == "/" })
            guard !database.isEmpty else { throw AdServeError.invalid("store", "names no database (postgres://user@host/DATABASE)") }
            let mode = parts.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
            switch mode {
            case "disable": tls = .disable
            case "prefer", "allow": tls = .prefer
            case "require", "verify-ca", "verify-full": tls = .require
            default: throw AdServeError.invalid("store", "sslmode must be disable, prefer or require")
            }
            self.host = parts.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
            self.port = parts.port ?? 5432
            self.user = user.removingPercentEncoding ?? user
            self.password = parts.password.map { $0.removingPercentEncoding ?? $0 }
            self.database = database
        }

        /// The URL without its password.
        public var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }
    }

    /// Whether a `--store` value names a PostgreSQL database (else it is an SQLite file path).
    public static func isURL(_ value: String) -> Bool { value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") }

    /// Connects (up to `maximumConnections` at once) and migrates the schema to the latest
    /// version; nodes starting together migrate once, one after the other.
    public static func open(
        url: String, maximumConnections: Int = 16, connectTimeout: Duration = .seconds(3), timeout: Duration = .seconds(5),
        logger: Logger = Logger(label: "adserve.postgres")
    ) async throws -> PostgresStore {
        let address = try Address(url: url)
        let tls: PostgresClient.Configuration.TLS =
            switch address.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        var configuration = PostgresClient.Configuration(
            host: address.host, port: address.port, username: address.user, password: address.password, database: address.database, tls: tls)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = connectTimeout
        let store = PostgresStore(
            client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger, location: address.redacted, timeout: timeout)
        do {
            try await store.migrate()
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(client: PostgresClient, logger: Logger, location: String, timeout: Duration) {
        self.client = client
        self.timeout = timeout
        self.logger = logger
        self.location = location
        // Started at once, so the pool runs before the first query leases a connection.
        self.runner = Task.immediate { await client.run() }
    }

    deinit { runner.cancel() }

    /// Closes the pool's connections; the store answers `unavailable` afterwards.
    public func close() { runner.cancel() }

    private func migrate() async throws {
        try await write { db in
            // One node at a time: the others wait here, then find the work done.
            try await db.run("SELECT pg_advisory_xact_lock(7306744592)")
            try await db.run("CREATE TABLE IF NOT EXISTS schema_migrations(version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            let applied = try await db.rows("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations").first?.decode(Int64.self) ?? 0
            for (offset, statements) in PostgresSchema.migrations.enumerated() where offset + 1 > applied {
                for statement in statements { try await db.run(PostgresQuery(unsafeSQL: statement)) }
                try await db.run("INSERT INTO schema_migrations(version, applied_at) VALUES (\(Int64(offset + 1)), \(SystemClock().now().milliseconds))")
            }
        }
    }

    // MARK: Running queries

    /// One statement outside a transaction (reads, and writes of a single statement).
    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withDeadline { [client] in try await Self.translatingErrors { try await client.withConnection { try await body($0) } } }
    }

    /// A transaction: committed if `body` returns, rolled back if it throws.
    private func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withDeadline { [client, logger] in
            try await Self.translatingErrors { try await client.withTransaction(logger: logger) { try await body($0) } }
        }
    }

    /// `body`, or `unavailable` once `timeout` has passed. The body is not cancelled (cancelling
    /// a transaction half-way could leave its connection unusable): it runs to its end, and a
    /// write that commits after the caller heard "unavailable" was not acknowledged — its retry
    /// is a duplicate.
    private func withDeadline<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = self.timeout
        let answered = FirstAnswer()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                if answered.claim() { continuation.resume(with: result) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if answered.claim() {
                    continuation.resume(throwing: AdServeError(.unavailable, "the store did not answer within \(timeout); retry shortly"))
                }
            }
        }
    }

    /// The server's own errors (a constraint, a bad statement) are the store's; anything else
    /// (no connection, a connection lost, the pool closed) means the database is unreachable.
    private static func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            // What the transaction's body threw comes first; a failed BEGIN or COMMIT next.
            let cause: any Error = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error
            if cause is PostgresTransactionError { throw AdServeError(.unavailable, "the store is unreachable; retry shortly") }
            return try await translatingErrors { throw cause }
        } catch let error as AdServeError {
            throw error
        } catch let error as PSQLError where error.code == .server {
            let message = error.serverInfo?[.message] ?? "unknown"
            let state = error.serverInfo?[.sqlState] ?? ""
            // Connection trouble (08), too many connections (53), the server shutting down or
            // starting (57), a serialization failure or deadlock (40): a retry may succeed.
            if ["08", "53", "57", "40"].contains(String(state.prefix(2))) {
                throw AdServeError(.unavailable, "the store is unavailable (PostgreSQL \(state): \(message)); retry shortly")
            }
            throw AdServeError(.storage, "PostgreSQL: \(message)")
        } catch let error as PostgresDecodingError {
            throw AdServeError(.storage, "PostgreSQL row not as expected: \(error.code) in column \(error.columnName)")
        } catch {
            throw AdServeError(.unavailable, "the store is unreachable (\(error)); retry shortly")
        }
    }

    // MARK: Secrets

    public func secret(named name: String, orCreate make: @escaping @Sendable () -> [UInt8]) async throws -> [UInt8] {
        try await write { db in
            // Several nodes starting at once: the first insert wins, every node reads its value.
            try await db.run("INSERT INTO secrets(name, value) VALUES (\(name), \(Data(make()))) ON CONFLICT (name) DO NOTHING")
            guard let value = try await db.rows("SELECT value FROM secrets WHERE name = \(name)").first?.decode(Data.self) else {
                throw AdServeError(.storage, "secret \(name) vanished")
            }
            return [UInt8](value)
        }
    }

    public func rotateSecret(named name: String, to value: [UInt8], previousValidUntil: Timestamp) async throws {
        try await write { db in
            let current = try await db.rows("SELECT value FROM secrets WHERE name = \(name) FOR UPDATE").first?.decode(Data.self)
            if let current {
                try await db.run(
                    """
                    INSERT INTO secrets(name, value, valid_until) VALUES (\(name + "/previous"), \(current), \(previousValidUntil.milliseconds))
                    ON CONFLICT (name) DO UPDATE SET value = excluded.value, valid_until = excluded.valid_until
                    """)
            }
            try await db.run(
                """
                INSERT INTO secrets(name, value, valid_until) VALUES (\(name), \(Data(value)), NULL)
                ON CONFLICT (name) DO UPDATE SET value = excluded.value, valid_until = NULL
                """)
        }
    }

    public func previousSecret(named name: String) async throws -> (value: [UInt8], validUntil: Timestamp)? {
        try await read { db in
            try await db.rows("SELECT value, valid_until FROM secrets WHERE name = \(name + "/previous")").first.map { row in
                let (value, until) = try row.decode((Data, Int64?).self)
                return ([UInt8](value), Timestamp(milliseconds: until ?? 0))
            }
        }
    }

    // MARK: Advertisers

    public func createAdvertiser(name: String, keyHash: String, at: Timestamp) async throws -> Advertiser {
        try await write { db in
            guard let id = try await db.rows(
                "INSERT INTO advertisers(name, key_hash, created_at) VALUES (\(name), \(keyHash), \(at.milliseconds)) RETURNING id"
            ).first?.decode(Int64.self) else { throw AdServeError(.storage, "advertiser insert returned no id") }
            try await db.run("INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (\(id), \(keyHash), \(at.milliseconds))")
            return Advertiser(id: AdvertiserID(id), name: name)
        }
    }

    public func advertiser(_ id: AdvertiserID) async throws -> Advertiser? {
        try await read { db in
            try await db.rows("SELECT id, name FROM advertisers WHERE id = \(id.rawValue)").first.map(Self.advertiser)
        }
    }

    public func advertiser(keyHash: String) async throws -> Advertiser? {
        try await read { db in
            try await db.rows(
                "SELECT a.id, a.name FROM advertiser_keys k JOIN advertisers a ON a.id = k.advertiser_id WHERE k.key_hash = \(keyHash) AND k.revoked_at IS NULL"
            ).first.map(Self.advertiser)
        }
    }

    public func addKey(to advertiser: AdvertiserID, keyHash: String, at: Timestamp) async throws -> AdvertiserKey {
        try await read { db in
            guard let id = try await db.rows(
                "INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (\(advertiser.rawValue), \(keyHash), \(at.milliseconds)) RETURNING id"
            ).first?.decode(Int64.self) else { throw AdServeError(.storage, "key insert returned no id") }
            return AdvertiserKey(id: id, advertiserID: advertiser, createdAt: at)
        }
    }

    public func revokeKey(_ id: Int64, of advertiser: AdvertiserID, at: Timestamp) async throws -> AdvertiserKey? {
        try await read { db in
            try await db.rows(
                """
                UPDATE advertiser_keys SET revoked_at = \(at.milliseconds) WHERE id = \(id) AND advertiser_id = \(advertiser.rawValue) AND revoked_at IS NULL
                RETURNING id, advertiser_id, created_at, revoked_at
                """
            ).first.map(Self.advertiserKey)
        }
    }

    public func keys(of advertiser: AdvertiserID) async throws -> [AdvertiserKey] {
        try await read { db in
            try await db.rows("SELECT id, advertiser_id, created_at, revoked_at FROM advertiser_keys WHERE advertiser_id = \(advertiser.rawValue) ORDER BY id")
                .map(Self.advertiserKey)
        }
    }

    public func catalogSize(of advertiser: AdvertiserID) async throws -> (campaigns: Int, ads: Int) {
        try await read { db in
            let row = try await db.rows(
                """
                SELECT (SELECT COUNT(*) FROM campaigns WHERE advertiser_id = \(advertiser.rawValue)),
                       (SELECT COUNT(*) FROM ads JOIN campaigns ON ads.campaign_id = campaigns.id WHERE campaigns.advertiser_id = \(advertiser.rawValue))
                """
            ).first
            guard let (campaigns, ads) = try row?.decode((Int64, Int64).self) else { return (0, 0) }
            return (Int(campaigns), Int(ads))
        }
    }

    // MARK: Campaigns and ads

    public func createCampaign(_ campaign: Campaign) async throws -> Campaign { try await create(CampaignRow.self, campaign) }

    public func updateCampaign(_ id: CampaignID, _ change: @escaping @Sendable (inout Campaign) throws -> Void) async throws -> Campaign {
        try await update(CampaignRow.self, id.rawValue, change)
    }

    public func campaign(_ id: CampaignID) async throws -> Campaign? {
        try await fetch(CampaignRow.self, "WHERE id = $1", Self.binds(id.rawValue)).first
    }

    public func campaigns(of advertiser: AdvertiserID) async throws -> [Campaign] {
        try await fetch(CampaignRow.self, "WHERE advertiser_id = $1 ORDER BY id", Self.binds(advertiser.rawValue))
    }

    public func createAd(_ ad: Ad) async throws -> Ad { try await create(AdRow.self, ad) }

    public func updateAd(_ id: AdID, _ change: @escaping @Sendable (inout Ad) throws -> Void) async throws -> Ad {
        try await update(AdRow.self, id.rawValue, change)
    }

    public func ad(_ id: AdID) async throws -> Ad? { try await fetch(AdRow.self, "WHERE id = $1", Self.binds(id.rawValue)).first }

    public func ads(of campaign: CampaignID) async throws -> [Ad] {
        try await fetch(AdRow.self, "WHERE campaign_id = $1 ORDER BY id", Self.binds(campaign.rawValue))
    }

    public func allAds() async throws -> [Ad] { try await fetch(AdRow.self, "ORDER BY id", PostgresBindings()) }

    public func adsPendingEmbedding(limit: Int) async throws -> [Ad] {
        try await fetch(AdRow.self, "WHERE embedding_status = 'pending' ORDER BY id LIMIT $1", Self.binds(Int64(limit)))
    }

    /// Inserts a row with a new catalog revision; the database assigns the id.
    private func create<Table: CatalogTable>(_ table: Table.Type, _ value: Table.Value) async throws -> Table.Value {
        try await write { db in
            var created = Table.with(value, revision: try await Self.nextRevision(db))
            created = Table.with(created, id: try await Self.insert(Table.self, created, withID: false, db))
            return created
        }
    }

    /// Read (locking the row), change, write in one transaction, with a new catalog revision.
    private func update<Table: CatalogTable>(
        _ table: Table.Type, _ id: Int64, _ change: @escaping @Sendable (inout Table.Value) throws -> Void
    ) async throws -> Table.Value {
        try await write { db in
            let query = PostgresQuery(unsafeSQL: "\(Table.select) WHERE id = $1 FOR UPDATE", binds: Self.binds(id))
            guard var value = try await db.rows(query).first.map(Table.decode) else { throw AdServeError.notFound("\(Table.noun) \(id)") }
            try change(&value)
            value = Table.with(Table.with(value, id: id), revision: try await Self.nextRevision(db))
            var binds = try Table.binds(value)
            binds.append(id)
            try await db.run(PostgresQuery(unsafeSQL: Table.update, binds: binds))
            return value
        }
    }

    private func fetch<Table: CatalogTable>(_ table: Table.Type, _ clause: String, _ binds: PostgresBindings) async throws -> [Table.Value] {
        try await read { db in try await Self.fetch(Table.self, clause, binds, db) }
    }

    private static func fetch<Table: CatalogTable>(
        _ table: Table.Type, _ clause: String, _ binds: PostgresBindings, _ db: PostgresConnection
    ) async throws -> [Table.Value] {
        try await db.rows(PostgresQuery(unsafeSQL: "\(Table.select) \(clause)", binds: binds)).map(Table.decode)
    }

    public func catalogChanges(after revision: Int64) async throws -> CatalogChanges {
        try await write { db in
            // One snapshot for both lists and the counter.
            try await db.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            let campaigns = try await Self.fetch(CampaignRow.self, "WHERE revision > $1 ORDER BY revision", Self.binds(revision), db)
            let ads = try await Self.fetch(AdRow.self, "WHERE revision > $1 ORDER BY revision", Self.binds(revision), db).map { $0.compacted() }
            let latest = try await db.rows("SELECT value FROM catalog_revision WHERE id = 1").first?.decode(Int64.self) ?? revision
            let highest = max(revision, latest, campaigns.last?.revision ?? revision, ads.last?.revision ?? revision)
            return CatalogChanges(campaigns: campaigns, ads: ads, revision: highest)
        }
    }

    /// The next catalog revision; the counter row stays locked until the caller's transaction
    /// ends, so revisions commit in the order they are handed out.
    private static func nextRevision(_ db: PostgresConnection) async throws -> Int64 {
        guard let value = try await db.rows("UPDATE catalog_revision SET value = value + 1 WHERE id = 1 RETURNING value").first?.decode(Int64.self) else {
            throw AdServeError(.storage, "catalog_revision row is missing")
        }
        return value
    }

    /// Inserts a row (with its own id if `withID`, else a generated one); returns the id.
    private static func insert<Table: CatalogTable>(_ table: Table.Type, _ value: Table.Value, withID: Bool, _ db: PostgresConnection) async throws -> Int64 {
        var binds = try Table.binds(value)
        if withID { binds.append(Table.id(of: value)) }
        let names = Table.columns + (withID ? ["id"] : [])
        let sql = "INSERT INTO \(Table.table)(\(names.joined(separator: ", "))) VALUES (\((1...names.count).map { "$\($0)" }.joined(separator: ", "))) RETURNING id"
        guard let id = try await db.rows(PostgresQuery(unsafeSQL: sql, binds: binds)).first?.decode(Int64.self) else {
            throw AdServeError(.storage, "insert returned no id")
        }
        return id
    }

    public func importBatch(_ batch: ImportBatch) async throws {
        try await write { db in
            for (advertiser, keyHash) in batch.advertisers {
                try await db.run("INSERT INTO advertisers(id, name, key_hash, created_at) VALUES (\(advertiser.id.rawValue), \(advertiser.name), \(keyHash), 0)")
                try await db.run("INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (\(advertiser.id.rawValue), \(keyHash), 0)")
            }
            for campaign in batch.campaigns { _ = try await Self.insert(CampaignRow.self, campaign, withID: true, db) }
            for ad in batch.ads { _ = try await Self.insert(AdRow.self, ad, withID: true, db) }
            for user in batch.users {
                try await Self.upsert(user, db)
                guard user.activityVector != nil || !user.recentTopics.isEmpty else { continue }
                try await db.run(
                    """
                    UPDATE users SET activity_vector = \(user.activityVector.map(Self.bytes)), activity_vector_at = \(user.activityVectorAt?.milliseconds),
                    recent_topics = \(try StoredValues.encode(user.recentTopics)) WHERE id = \(user.id.rawValue)
                    """)
            }
            for activity in batch.activities { try await Self.insert(activity, db) }
            for event in batch.history { _ = try await Self.insertEvent(event, db) }
            // Rows came with their own ids: the next generated ones start above them.
            for table in ["advertisers", "campaigns", "ads"] {
                try await db.run(
                    PostgresQuery(unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), GREATEST((SELECT MAX(id) FROM \(table)), 1))"))
            }
        }
    }

    public func isEmpty() async throws -> Bool {
        try await read { db in
            try await db.rows("SELECT NOT EXISTS (SELECT 1 FROM campaigns) AND NOT EXISTS (SELECT 1 FROM users)").first?.decode(Bool.self) ?? true
        }
    }

    // MARK: Users

    public func upsertUser(_ user: UserProfile) async throws {
        try await read { db in try await Self.upsert(user, db) }
    }

    public func user(_ id: UserID) async throws -> UserProfile? {
        try await read { db in try await Self.profile(id, db) }
    }

    private static func profile(_ id: UserID, _ db: PostgresConnection) async throws -> UserProfile? {
        try await db.rows(
            """
            SELECT id, age, gender, country, language, interests, activity_vector, activity_vector_at, recent_topics, personalization
            FROM users WHERE id = \(id.rawValue)
            """
        ).first.map { row in
            let (id, age, gender, country, language, interests, vector, vectorAt, topics, personalization) =
                try row.decode((String, Int64?, String?, String?, String?, String, Data?, Int64?, String?, Bool).self)
            return UserProfile(
                id: try UserID(validating: id), age: age.map { Int($0) }, gender: gender, country: country, language: language,
                interests: try StoredValues.decode([String].self, interests), activityVector: vector.map(Self.floats),
                activityVectorAt: vectorAt.map(Timestamp.init(milliseconds:)),
                recentTopics: try topics.map { try StoredValues.decode([String: Double].self, $0) } ?? [:], personalization: personalization)
        }
    }

    public func appendActivity(_ activity: Activity) async throws {
        try await read { db in try await Self.insert(activity, db) }
    }

    public func recentActivity(of user: UserID, limit: Int) async throws -> [Activity] {
        try await read { db in
            try await db.rows(
                """
                SELECT id, user_id, type, topics, text, ad_id, seconds, at FROM activities WHERE user_id = \(user.rawValue)
                ORDER BY at DESC, id DESC LIMIT \(Int64(limit))
                """
            ).map { try Self.activity($0).activity }
        }
    }

    public func activities(after id: Int64, limit: Int) async throws -> [(id: Int64, activity: Activity)] {
        try await read { db in
            try await db.rows("SELECT id, user_id, type, topics, text, ad_id, seconds, at FROM activities WHERE id > \(id) ORDER BY id LIMIT \(Int64(limit))")
                .map(Self.activity)
        }
    }

    public func addToActivityVector(
        of user: UserID, item: [Float]?, topics: [String], weight: Float, at: Timestamp, cursor: (name: String, value: Int64)?
    ) async throws {
        try await write { db in
            if let cursor {
                // Nodes reading the same log: whoever holds the cursor first adds the item, the rest skip it.
                try await db.run("INSERT INTO cursors(name, value) VALUES (\(cursor.name), 0) ON CONFLICT (name) DO NOTHING")
                let current = try await db.rows("SELECT value FROM cursors WHERE name = \(cursor.name) FOR UPDATE").first?.decode(Int64.self) ?? 0
                guard current < cursor.value else { return }
            }
            try await db.run("INSERT INTO users(id, interests) VALUES (\(user.rawValue), '[]') ON CONFLICT (id) DO NOTHING")
            let row = try await db.rows("SELECT activity_vector, activity_vector_at, recent_topics FROM users WHERE id = \(user.rawValue) FOR UPDATE").first
            let (vectorData, vectorAt, topicsText) = try row?.decode((Data?, Int64?, String?).self) ?? (nil, nil, nil)
            let currentVector = vectorData.map(Self.floats)
            let currentAt = vectorAt.map(Timestamp.init(milliseconds:))
            let currentTopics = try topicsText.map { try StoredValues.decode([String: Double].self, $0) } ?? [:]
            // Items arrive roughly in time order; one from before the vector's time adds undecayed.
            let asOf = max(at, currentAt ?? at)
            let vector = item.map { ActivityVector.adding($0, weight: weight, to: currentVector, asOf: currentAt, now: asOf) } ?? currentVector
            let recent = ActivityVector.topics(currentTopics, asOf: currentAt, adding: topics, weight: Double(weight), now: asOf)
            try await db.run(
                """
                UPDATE users SET activity_vector = \(vector.map(Self.bytes)), activity_vector_at = \(asOf.milliseconds),
                recent_topics = \(try StoredValues.encode(recent)) WHERE id = \(user.rawValue)
                """)
            if let cursor { try await db.run("UPDATE cursors SET value = \(cursor.value) WHERE name = \(cursor.name)") }
        }
    }

    public func cursor(named name: String) async throws -> Int64 {
        try await read { db in try await db.rows("SELECT value FROM cursors WHERE name = \(name)").first?.decode(Int64.self) ?? 0 }
    }

    public func setCursor(named name: String, to value: Int64) async throws {
        try await read { db in
            // Never backwards: another node may have read further.
            try await db.run(
                "INSERT INTO cursors(name, value) VALUES (\(name), \(value)) ON CONFLICT (name) DO UPDATE SET value = GREATEST(cursors.value, excluded.value)")
        }
    }

    // MARK: Events and billing

    public func record(_ event: EventRecord) async throws -> EventOutcome {
        try await write { db in
            guard try await Self.insertEvent(event, db) else { return EventOutcome(duplicate: true, chargedMicros: 0) }
            let day = event.at.day
            var charged: Micros = 0
            if event.priceMicros > 0 && event.invalidReason == nil {
                // The campaign's row lock orders every charge of this campaign, on every node.
                guard let (daily, total) = try await db.rows(
                    "SELECT daily_budget_micros, total_budget_micros FROM campaigns WHERE id = \(event.campaignID.rawValue) FOR UPDATE"
                ).first?.decode((Int64, Int64).self) else { throw AdServeError.notFound("campaign \(event.campaignID)") }
                guard let (spentToday, spentTotal) = try await db.rows(
                    """
                    SELECT COALESCE(SUM(CASE WHEN day = \(day) THEN spend_micros ELSE 0 END), 0)::BIGINT, COALESCE(SUM(spend_micros), 0)::BIGINT
                    FROM campaign_daily WHERE campaign_id = \(event.campaignID.rawValue)
                    """
                ).first?.decode((Int64, Int64).self) else { throw AdServeError(.storage, "spend query returned no row") }
                charged = Budget.chargeable(price: event.priceMicros, dailyBudget: daily, spentToday: spentToday, totalBudget: total, spentTotal: spentTotal)
                if charged > 0 {
                    try await db.run(
                        "UPDATE events SET charged_micros = \(charged) WHERE placement_key = \(event.placementKey) AND type = \(event.type.rawValue)")
                }
            }
            let column: String
            switch event.type {
            case .impression: column = "impressions"
            case .click: column = event.invalidReason == nil ? "clicks" : "invalid_clicks"
            case .conversion: column = "conversions"
            case .hide, .hideAdvertiser, .notRelevant: column = "hides"
            }
            for (table, key, id) in [("ad_daily", "ad_id", event.adID.rawValue), ("campaign_daily", "campaign_id", event.campaignID.rawValue)] {
                var binds = PostgresBindings()
                binds.append(id)
                binds.append(day)
                binds.append(charged)
                try await db.run(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(table)(\(key), day, \(column), spend_micros) VALUES ($1, $2, 1, $3)
                            ON CONFLICT (\(key), day) DO UPDATE SET \(column) = \(table).\(column) + 1, spend_micros = \(table).spend_micros + excluded.spend_micros
                            """, binds: binds))
            }
            return EventOutcome(duplicate: false, chargedMicros: charged)
        }
    }

    public func hasEvent(placementKey: String, type: EventType) async throws -> Bool {
        try await read { db in
            try await db.rows("SELECT 1 FROM events WHERE placement_key = \(placementKey) AND type = \(type.rawValue)").count > 0
        }
    }

    public func clickCount(of user: UserID, campaign: CampaignID?, since: Timestamp, upTo limit: Int) async throws -> Int {
        try await read { db in
            let rows: [PostgresRow]
            if let campaign {
                rows = try await db.rows(
                    """
                    SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE user_id = \(user.rawValue) AND type = 'click' AND at >= \(since.milliseconds)
                    AND campaign_id = \(campaign.rawValue) LIMIT \(Int64(limit))) AS recent
                    """)
            } else {
                rows = try await db.rows(
                    """
                    SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE user_id = \(user.rawValue) AND type = 'click' AND at >= \(since.milliseconds)
                    LIMIT \(Int64(limit))) AS recent
                    """)
            }
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }

    // MARK: State the serving path rebuilds at start

    public func campaignSpend(day: Int64) async throws -> [CampaignSpend] {
        try await read { db in
            try await db.rows(
                """
                SELECT campaign_id, SUM(CASE WHEN day = \(day) THEN spend_micros ELSE 0 END)::BIGINT, SUM(spend_micros)::BIGINT
                FROM campaign_daily GROUP BY campaign_id
                """
            ).map { row in
                let (id, today, total) = try row.decode((Int64, Int64, Int64).self)
                return CampaignSpend(campaignID: CampaignID(id), todayMicros: today, totalMicros: total)
            }
        }
    }

    public func adCounters() async throws -> [AdID: DeliveryCounters] {
        try await read { db in
            var result: [AdID: DeliveryCounters] = [:]
            for row in try await db.rows(
                """
                SELECT ad_id, SUM(impressions)::BIGINT, SUM(clicks)::BIGINT, SUM(conversions)::BIGINT, SUM(hides)::BIGINT,
                SUM(spend_micros)::BIGINT, SUM(invalid_clicks)::BIGINT FROM ad_daily GROUP BY ad_id
                """)
            {
                let (id, counters) = try Self.counters(row)
                result[AdID(id)] = counters
            }
            return result
        }
    }

    public func userRecord(_ id: UserID, impressionsSince since: Timestamp) async throws -> UserRecord {
        // Four reads on one connection (read committed: each sees what was committed when it ran;
        // serving guards against events applied meanwhile, see `UserCache`).
        try await read { db in
            let user = id.rawValue
            let recent = try await db.rows(
                "SELECT campaign_id, ad_id, at FROM events WHERE user_id = \(user) AND type = 'impression' AND at >= \(since.milliseconds) ORDER BY at"
            ).map { row in
                let (campaign, ad, at) = try row.decode((Int64, Int64, Int64).self)
                return ImpressionRecord(userID: id, campaignID: CampaignID(campaign), adID: AdID(ad), at: Timestamp(milliseconds: at))
            }
            let lifetime = try await db.rows(
                """
                SELECT campaign_id, ad_id, COUNT(*) FROM events WHERE user_id = \(user) AND type = 'impression'
                GROUP BY campaign_id, ad_id ORDER BY campaign_id, ad_id
                """
            ).map { row in
                let (campaign, ad, count) = try row.decode((Int64, Int64, Int64).self)
                return ImpressionCount(userID: id, campaignID: CampaignID(campaign), adID: AdID(ad), impressions: Int(count))
            }
            let hides = try await db.rows(
                """
                SELECT e.ad_id, c.advertiser_id, e.type FROM events e JOIN campaigns c ON c.id = e.campaign_id
                WHERE e.user_id = \(user) AND e.type IN ('hide', 'hide_advertiser', 'not_relevant') ORDER BY e.at, e.placement_key
                """
            ).map { row in
                let (ad, advertiser, type) = try row.decode((Int64, Int64, String).self)
                return HideRecord(userID: id, adID: AdID(ad), advertiserID: AdvertiserID(advertiser), type: try StoredValues.enumValue(EventType.self, type))
            }
            return UserRecord(profile: try await Self.profile(id, db), recent: recent, lifetime: lifetime, hides: hides)
        }
    }

    // MARK: Reports

    public func dailyCounters(campaign: CampaignID) async throws -> [DailyCounters] {
        try await daily(table: "campaign_daily", key: "campaign_id", id: campaign.rawValue)
    }

    public func dailyCounters(ad: AdID) async throws -> [DailyCounters] {
        try await daily(table: "ad_daily", key: "ad_id", id: ad.rawValue)
    }

    public func hourlySpend(campaign: CampaignID, day: Int64) async throws -> [Micros] {
        let start = day * Timestamp.millisecondsPerDay
        return try await read { db in
            var hours = [Micros](repeating: 0, count: 24)
            for row in try await db.rows(
                """
                SELECT (at - \(start)) / 3600000, SUM(charged_micros)::BIGINT FROM events
                WHERE campaign_id = \(campaign.rawValue) AND at >= \(start) AND at < \(start + Timestamp.millisecondsPerDay) AND charged_micros > 0
                GROUP BY 1
                """)
            {
                let (hour, spend) = try row.decode((Int64, Int64).self)
                if (0..<24).contains(hour) { hours[Int(hour)] = spend }
            }
            return hours
        }
    }

    private func daily(table: String, key: String, id: Int64) async throws -> [DailyCounters] {
        try await read { db in
            try await db.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT day, impressions, clicks, conversions, hides, spend_micros, invalid_clicks FROM \(table) WHERE \(key) = $1 ORDER BY day",
                    binds: Self.binds(id))
            ).map { row in
                let (day, counters) = try Self.counters(row)
                return DailyCounters(day: day, counters: counters)
            }
        }
    }
}

// MARK: Row mapping

extension PostgresStore {
    fileprivate static func binds(_ value: Int64) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(value)
        return binds
    }

    /// Inserts an event row, uncharged; false when it was already recorded (nothing changed).
    private static func insertEvent(_ event: EventRecord, _ db: PostgresConnection) async throws -> Bool {
        try await db.rows(
            """
            INSERT INTO events(placement_key, type, user_id, ad_id, campaign_id, decision_id, price_micros, charged_micros, value_micros, at, invalid_reason)
            VALUES (\(event.placementKey), \(event.type.rawValue), \(event.userID.rawValue), \(event.adID.rawValue), \(event.campaignID.rawValue),
                    \(event.decisionID), \(event.priceMicros), 0, \(event.valueMicros), \(event.at.milliseconds), \(event.invalidReason?.rawValue))
            ON CONFLICT (placement_key, type) DO NOTHING RETURNING 1
            """
        ).count == 1
    }

    fileprivate static func bytes(_ floats: [Float]) -> Data { Data(StoredValues.floatsToBytes(floats)) }
    fileprivate static func floats(_ data: Data) -> [Float] { StoredValues.bytesToFloats([UInt8](data)) }

    fileprivate static func advertiser(_ row: PostgresRow) throws -> Advertiser {
        let (id, name) = try row.decode((Int64, String).self)
        return Advertiser(id: AdvertiserID(id), name: name)
    }

    fileprivate static func advertiserKey(_ row: PostgresRow) throws -> AdvertiserKey {
        let (id, advertiser, created, revoked) = try row.decode((Int64, Int64, Int64, Int64?).self)
        return AdvertiserKey(
            id: id, advertiserID: AdvertiserID(advertiser), createdAt: Timestamp(milliseconds: created), revokedAt: revoked.map(Timestamp.init(milliseconds:)))
    }

    /// A key column, then the six counters.
    fileprivate static func counters(_ row: PostgresRow) throws -> (Int64, DeliveryCounters) {
        let (key, impressions, clicks, conversions, hides, spend, invalid) = try row.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
        return (
            key,
            DeliveryCounters(
                impressions: impressions, clicks: clicks, conversions: conversions, hides: hides, spendMicros: spend, invalidClicks: invalid)
        )
    }

    fileprivate static func activity(_ row: PostgresRow) throws -> (id: Int64, activity: Activity) {
        let (id, user, type, topics, text, ad, seconds, at) = try row.decode((Int64, String, String, String, String?, Int64?, Double?, Int64).self)
        return (
            id,
            Activity(
                userID: try UserID(validating: user), type: try StoredValues.enumValue(ActivityType.self, type),
                topics: try StoredValues.decode([String].self, topics), text: text, adID: ad.map(AdID.init), seconds: seconds,
                at: Timestamp(milliseconds: at))
        )
    }

    fileprivate static func upsert(_ user: UserProfile, _ db: PostgresConnection) async throws {
        try await db.run(
            """
            INSERT INTO users(id, age, gender, country, language, interests, personalization)
            VALUES (\(user.id.rawValue), \(user.age.map { Int64($0) }), \(user.gender), \(user.country), \(user.language),
                    \(try StoredValues.encode(user.interests)), \(user.personalization))
            ON CONFLICT (id) DO UPDATE SET age = excluded.age, gender = excluded.gender, country = excluded.country,
            language = excluded.language, interests = excluded.interests, personalization = excluded.personalization
            """)
    }

    fileprivate static func insert(_ activity: Activity, _ db: PostgresConnection) async throws {
        try await db.run(
            """
            INSERT INTO activities(user_id, type, topics, text, ad_id, seconds, at)
            VALUES (\(activity.userID.rawValue), \(activity.type.rawValue), \(try StoredValues.encode(activity.topics)), \(activity.text),
                    \(activity.adID?.rawValue), \(activity.seconds), \(activity.at.milliseconds))
            """)
    }
}

/// Campaigns and ads are stored alike: one row per id, the same columns (after `id`) in one
/// order for select, insert and update, and a catalog revision; one create, update and fetch
/// serve both.
private protocol CatalogTable: SendableMetatype {
    associatedtype Value: Sendable
    static var table: String { get }
    static var noun: String { get }
    /// Every column but `id`, in the order of `binds`.
    static var columns: [String] { get }
    static func binds(_ value: Value) throws -> PostgresBindings
    /// From a row of `select`: `id`, then `columns`.
    static func decode(_ row: PostgresRow) throws -> Value
    static func id(of value: Value) -> Int64
    static func with(_ value: Value, id: Int64) -> Value
    static func with(_ value: Value, revision: Int64) -> Value
}

extension CatalogTable {
    static var select: String { "SELECT id, \(columns.joined(separator: ", ")) FROM \(table)" }
    static var update: String { "UPDATE \(table) SET \(columns.enumerated().map { "\($1) = $\($0 + 1)" }.joined(separator: ", ")) WHERE id = $\(columns.count + 1)" }
}

private enum CampaignRow: CatalogTable {
    static let table = "campaigns"
    static let noun = "campaign"
    static func id(of value: Campaign) -> Int64 { value.id.rawValue }
    static func with(_ value: Campaign, id: Int64) -> Campaign { var v = value; v.id = CampaignID(id); return v }
    static func with(_ value: Campaign, revision: Int64) -> Campaign { var v = value; v.revision = revision; return v }
    static let columns = [
        "advertiser_id", "name", "objective", "bid_micros", "daily_budget_micros", "total_budget_micros", "start_at", "end_at", "targeting",
        "frequency_caps", "status", "created_at", "paused_at", "max_conversion_value_micros", "revision", "pacing",
    ]

    static func binds(_ c: Campaign) throws -> PostgresBindings {
        var b = PostgresBindings(capacity: columns.count + 1)
        b.append(c.advertiserID.rawValue)
        b.append(c.name)
        b.append(c.objective.rawValue)
        b.append(c.bidMicros)
        b.append(c.dailyBudgetMicros)
        b.append(c.totalBudgetMicros)
        b.append(c.startAt?.milliseconds)
        b.append(c.endAt?.milliseconds)
        b.append(try StoredValues.encode(c.targeting))
        b.append(try StoredValues.encode(c.frequencyCaps))
        b.append(c.status.rawValue)
        b.append(c.createdAt.milliseconds)
        b.append(c.pausedAt?.milliseconds)
        b.append(c.maxConversionValueMicros)
        b.append(c.revision)
        b.append(c.pacing.rawValue)
        return b
    }

    static func decode(_ row: PostgresRow) throws -> Campaign {
        let (id, advertiser, name, objective, bid, daily, total, startAt, endAt, targeting, caps, status, createdAt, pausedAt, maxValue, revision, pacing) =
            try row.decode((Int64, Int64, String, String, Int64, Int64, Int64, Int64?, Int64?, String, String, String, Int64, Int64?, Int64, Int64, String).self)
        return Campaign(
            id: CampaignID(id), advertiserID: AdvertiserID(advertiser), name: name, objective: try StoredValues.enumValue(Objective.self, objective),
            bidMicros: bid, dailyBudgetMicros: daily, totalBudgetMicros: total, startAt: startAt.map(Timestamp.init(milliseconds:)),
            endAt: endAt.map(Timestamp.init(milliseconds:)), targeting: try StoredValues.decode(Targeting.self, targeting),
            frequencyCaps: try StoredValues.decode([FrequencyCap].self, caps), status: try StoredValues.enumValue(Status.self, status),
            createdAt: Timestamp(milliseconds: createdAt), pausedAt: pausedAt.map(Timestamp.init(milliseconds:)), maxConversionValueMicros: maxValue,
            pacing: try StoredValues.enumValue(PacingMode.self, pacing), revision: revision)
    }
}

private enum AdRow: CatalogTable {
    static let table = "ads"
    static let noun = "ad"
    static func id(of value: Ad) -> Int64 { value.id.rawValue }
    static func with(_ value: Ad, id: Int64) -> Ad { var v = value; v.id = AdID(id); return v }
    static func with(_ value: Ad, revision: Int64) -> Ad { var v = value; v.revision = revision; return v }
    static let columns = [
        "campaign_id", "format", "media_urls", "caption", "company", "product", "description", "embedding", "embedding_status",
        "embedding_error", "image_embedding", "status", "created_at", "revision",
    ]

    static func binds(_ ad: Ad) throws -> PostgresBindings {
        var b = PostgresBindings(capacity: columns.count + 1)
        b.append(ad.campaignID.rawValue)
        b.append(ad.format.rawValue)
        b.append(try StoredValues.encode(ad.mediaURLs))
        b.append(ad.caption)
        b.append(ad.company)
        b.append(ad.product)
        b.append(ad.description)
        try b.append(ad.embedding.map(PostgresStore.bytes))
        b.append(ad.embeddingStatus.rawValue)
        b.append(ad.embeddingError)
        try b.append(ad.imageEmbedding.map(PostgresStore.bytes))
        b.append(ad.status.rawValue)
        b.append(ad.createdAt.milliseconds)
        b.append(ad.revision)
        return b
    }

    static func decode(_ row: PostgresRow) throws -> Ad {
        let (id, campaign, format, media, caption, company, product, description, embedding, embeddingStatus, embeddingError, image, status, createdAt, revision) =
            try row.decode((Int64, Int64, String, String, String, String, String, String, Data?, String, String?, Data?, String, Int64, Int64).self)
        return Ad(
            id: AdID(id), campaignID: CampaignID(campaign), format: try StoredValues.enumValue(AdFormat.self, format),
            mediaURLs: try StoredValues.decode([String].self, media), caption: caption, company: company, product: product, description: description,
            embedding: embedding.map(PostgresStore.floats),
            embeddingStatus: try StoredValues.enumValue(EmbeddingStatus.self, embeddingStatus), embeddingError: embeddingError,
            imageEmbedding: image.map(PostgresStore.floats), status: try StoredValues.enumValue(Status.self, status),
            createdAt: Timestamp(milliseconds: createdAt), revision: revision)
    }
}

/// Which of a deadline's two racers answers: the first to claim.
private final class FirstAnswer: Sendable {
    private let taken = Mutex(false)
    func claim() -> Bool { taken.withLock { taken in defer { taken = true }; return !taken } }
}

extension PostgresConnection {
    /// Runs a statement and collects its rows.
    fileprivate func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await self.query(query, logger: PostgresStore.quiet).collect()
    }

    /// Runs a statement whose rows, if any, are not needed.
    fileprivate func run(_ query: PostgresQuery) async throws {
        _ = try await rows(query)
    }
}

extension PostgresStore {
    fileprivate static let quiet = Logger(label: "adserve.postgres.query", factory: { _ in SwiftLogNoOpLogHandler() })
}
