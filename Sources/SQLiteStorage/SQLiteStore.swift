import Dispatch
import Domain
import Foundation
import Storage

/// The embedded store: one SQLite file in WAL mode. One writer connection on its own serial
/// queue (transactions never interleave) and one reader connection on another, so reads are not
/// stuck behind a commit's fsync. `synchronous=FULL`: an acknowledged write survives a crash.
public final class SQLiteStore: AdStore {
    private let writer: Worker
    private let reader: Worker
    public let path: String

    /// How a commit reaches the disk.
    public enum Durability: Sendable {
        /// fsync at every commit: what the server acknowledges survives a crash or power loss.
        case durable
        /// No fsync: for scratch stores (the simulator's temporary file, benchmarks) only.
        case scratch
    }

    public init(path: String, durability: Durability = .durable) throws {
        self.path = path
        // Owner only: the store holds the token-signing secret and every user's history.
        // SQLite gives the -wal and -shm files the database file's permissions.
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        if fd >= 0 {
            _ = fchmod(fd, 0o600)
            close(fd)
        }
        let writeConnection = try SQLiteConnection(path: path)
        let synchronous = durability == .durable ? "FULL" : "OFF"
        try writeConnection.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=\(synchronous); PRAGMA foreign_keys=ON;")
        try Self.migrate(writeConnection)
        let readConnection = try SQLiteConnection(path: path)
        try readConnection.execute("PRAGMA query_only=ON;")
        self.writer = Worker(label: "adserve.sqlite.writer", connection: writeConnection)
        self.reader = Worker(label: "adserve.sqlite.reader", connection: readConnection)
    }

    static func migrate(_ db: SQLiteConnection) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        let applied = try db.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") { $0.int(0) }.first ?? 0
        for (offset, sql) in Schema.migrations.enumerated() where offset + 1 > applied {
            try db.transaction {
                try db.execute(sql)
                try db.run("INSERT INTO schema_migrations(version, applied_at) VALUES (?, strftime('%s','now'))", [.integer(Int64(offset + 1))])
            }
        }
    }

    // MARK: Secrets

    public func secret(named name: String, orCreate make: @escaping @Sendable () -> [UInt8]) async throws -> [UInt8] {
        try await writer.run { db in
            try db.transaction {
                if let existing = try db.query("SELECT value FROM secrets WHERE name = ?", [.text(name)], { $0.blob(0) ?? [] }).first {
                    return existing
                }
                let value = make()
                try db.run("INSERT INTO secrets(name, value) VALUES (?, ?)", [.text(name), .blob(value)])
                return value
            }
        }
    }

    public func rotateSecret(named name: String, to value: [UInt8], previousValidUntil: Timestamp) async throws {
        try await writer.run { db in
            try db.transaction {
                let upsert = "INSERT INTO secrets(name, value, valid_until) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, valid_until = excluded.valid_until"
                if let current = try db.query("SELECT value FROM secrets WHERE name = ?", [.text(name)], { $0.blob(0) ?? [] }).first {
                    try db.run(upsert, [.text(name + "/previous"), .blob(current), .integer(previousValidUntil.milliseconds)])
                }
                try db.run(upsert, [.text(name), .blob(value), .null])
            }
        }
    }

    public func previousSecret(named name: String) async throws -> (value: [UInt8], validUntil: Timestamp)? {
        try await reader.run { db in
            try db.query("SELECT value, valid_until FROM secrets WHERE name = ?", [.text(name + "/previous")]) {
                (value: $0.blob(0) ?? [], validUntil: Timestamp(milliseconds: $0.optionalInt(1) ?? 0))
            }.first
        }
    }

    /// Limits the store's size to about what it holds now plus `pages` pages: inserts beyond it
    /// fail as on a full disk. For tests of the full-disk path.
    func simulateFullDisk(extraPages pages: Int64 = 0) async throws {
        try await writer.run { db in
            let used = try db.query("PRAGMA page_count") { $0.int(0) }.first ?? 0
            try db.limitPages(to: used + pages)
        }
    }

    // MARK: Advertisers

    public func createAdvertiser(name: String, keyHash: String, at: Timestamp) async throws -> Advertiser {
        try await writer.run { db in
            try db.transaction {
                try db.run("INSERT INTO advertisers(name, key_hash, created_at) VALUES (?, ?, ?)", [.text(name), .text(keyHash), .integer(at.milliseconds)])
                let id = db.lastInsertRowID
                try db.run("INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (?, ?, ?)", [.integer(id), .text(keyHash), .integer(at.milliseconds)])
                return Advertiser(id: AdvertiserID(id), name: name)
            }
        }
    }

    public func addKey(to advertiser: AdvertiserID, keyHash: String, at: Timestamp) async throws -> AdvertiserKey {
        try await writer.run { db in
            try db.run("INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (?, ?, ?)", [.integer(advertiser.rawValue), .text(keyHash), .integer(at.milliseconds)])
            return AdvertiserKey(id: db.lastInsertRowID, advertiserID: advertiser, createdAt: at)
        }
    }

    public func revokeKey(_ id: Int64, of advertiser: AdvertiserID, at: Timestamp) async throws -> AdvertiserKey? {
        try await writer.run { db in
            try db.query(
                "UPDATE advertiser_keys SET revoked_at = ? WHERE id = ? AND advertiser_id = ? AND revoked_at IS NULL RETURNING id, advertiser_id, created_at, revoked_at",
                [.integer(at.milliseconds), .integer(id), .integer(advertiser.rawValue)]
            ) { $0.advertiserKey }.first
        }
    }

    public func keys(of advertiser: AdvertiserID) async throws -> [AdvertiserKey] {
        try await reader.run { db in
            try db.query("SELECT id, advertiser_id, created_at, revoked_at FROM advertiser_keys WHERE advertiser_id = ? ORDER BY id", [.integer(advertiser.rawValue)]) {
                $0.advertiserKey
            }
        }
    }

    public func catalogSize(of advertiser: AdvertiserID) async throws -> (campaigns: Int, ads: Int) {
        try await reader.run { db in
            try db.query(
                """
                SELECT (SELECT COUNT(*) FROM campaigns WHERE advertiser_id = ?1),
                       (SELECT COUNT(*) FROM ads JOIN campaigns ON ads.campaign_id = campaigns.id WHERE campaigns.advertiser_id = ?1)
                """, [.integer(advertiser.rawValue)]
            ) { (campaigns: Int($0.int(0)), ads: Int($0.int(1))) }.first ?? (0, 0)
        }
    }

    public func advertiser(_ id: AdvertiserID) async throws -> Advertiser? {
        try await reader.run { db in
            try db.query("SELECT id, name FROM advertisers WHERE id = ?", [.integer(id.rawValue)]) { $0.advertiser }.first
        }
    }

    public func advertiser(keyHash: String) async throws -> Advertiser? {
        try await reader.run { db in
            try db.query(
                "SELECT a.id, a.name FROM advertiser_keys k JOIN advertisers a ON a.id = k.advertiser_id WHERE k.key_hash = ? AND k.revoked_at IS NULL",
                [.text(keyHash)]
            ) { $0.advertiser }.first
        }
    }

    // MARK: Campaigns and ads

    public func createCampaign(_ campaign: Campaign) async throws -> Campaign { try await create(campaign) }

    public func updateCampaign(_ id: CampaignID, _ change: @escaping @Sendable (inout Campaign) throws -> Void) async throws -> Campaign {
        try await update(id.rawValue, change)
    }

    public func campaign(_ id: CampaignID) async throws -> Campaign? {
        try await fetch(Campaign.self, "WHERE id = ?", [.integer(id.rawValue)]).first
    }

    public func campaigns(of advertiser: AdvertiserID) async throws -> [Campaign] {
        try await fetch(Campaign.self, "WHERE advertiser_id = ? ORDER BY id", [.integer(advertiser.rawValue)])
    }

    public func createAd(_ ad: Ad) async throws -> Ad { try await create(ad) }

    public func updateAd(_ id: AdID, _ change: @escaping @Sendable (inout Ad) throws -> Void) async throws -> Ad {
        try await update(id.rawValue, change)
    }

    public func ad(_ id: AdID) async throws -> Ad? { try await fetch(Ad.self, "WHERE id = ?", [.integer(id.rawValue)]).first }

    public func ads(of campaign: CampaignID) async throws -> [Ad] {
        try await fetch(Ad.self, "WHERE campaign_id = ? ORDER BY id", [.integer(campaign.rawValue)])
    }

    public func allAds() async throws -> [Ad] { try await fetch(Ad.self, "ORDER BY id", []) }

    public func adsPendingEmbedding(limit: Int) async throws -> [Ad] {
        try await fetch(Ad.self, "WHERE embedding_status = 'pending' ORDER BY id LIMIT ?", [.integer(Int64(limit))])
    }

    public func catalogChanges(after revision: Int64) async throws -> CatalogChanges {
        try await reader.run { db in
            // One read transaction: both lists come from the same snapshot.
            try db.readTransaction {
                let campaigns = try db.query("\(Campaign.selectSQL) WHERE revision > ? ORDER BY revision", [.integer(revision)], Campaign.init(row:))
                let ads = try db.query("\(Ad.selectSQL) WHERE revision > ? ORDER BY revision", [.integer(revision)]) { try Ad(row: $0).compacted() }
                let latest = try db.query("SELECT value FROM catalog_revision WHERE id = 1") { $0.int(0) }.first ?? revision
                let highest = max(revision, latest, campaigns.last?.revision ?? revision, ads.last?.revision ?? revision)
                return CatalogChanges(campaigns: campaigns, ads: ads, revision: highest)
            }
        }
    }

    /// Inserts a row with a new catalog revision; the store assigns the id.
    private func create<T: RevisionedRow>(_ value: T) async throws -> T {
        try await writer.run { db in
            try db.transaction {
                var created = value
                created.revision = try Self.nextRevision(db)
                var bindings = try created.bindings()
                bindings[0] = .null
                try db.run(T.insertSQL, bindings)
                created.rowID = db.lastInsertRowID
                return created
            }
        }
    }

    /// Read, change, write in one transaction, with a new catalog revision.
    private func update<T: RevisionedRow>(_ id: Int64, _ change: @escaping @Sendable (inout T) throws -> Void) async throws -> T {
        try await writer.run { db in
            try db.transaction {
                guard var value = try db.query("\(T.selectSQL) WHERE id = ?", [.integer(id)], T.init(row:)).first else {
                    throw AdServeError.notFound("\(T.noun) \(id)")
                }
                try change(&value)
                value.rowID = id
                value.revision = try Self.nextRevision(db)
                var bindings = try value.bindings()
                bindings.append(bindings.removeFirst())
                try db.run(T.updateSQL, bindings)
                return value
            }
        }
    }

    private func fetch<T: RevisionedRow>(_ type: T.Type, _ clause: String, _ bindings: [SQLValue]) async throws -> [T] {
        try await reader.run { db in try db.query("\(T.selectSQL) \(clause)", bindings, T.init(row:)) }
    }

    /// The next catalog revision: a counter bumped inside the caller's write transaction.
    private static func nextRevision(_ db: SQLiteConnection) throws -> Int64 {
        guard let value = try db.query("UPDATE catalog_revision SET value = value + 1 WHERE id = 1 RETURNING value", [], { $0.int(0) }).first else {
            throw AdServeError(.storage, "catalog_revision row is missing")
        }
        return value
    }

    public func importBatch(_ batch: ImportBatch) async throws {
        try await writer.run { db in
            try db.transaction {
                for (advertiser, keyHash) in batch.advertisers {
                    try db.run("INSERT INTO advertisers(id, name, key_hash, created_at) VALUES (?, ?, ?, 0)", [.integer(advertiser.id.rawValue), .text(advertiser.name), .text(keyHash)])
                    try db.run("INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) VALUES (?, ?, 0)", [.integer(advertiser.id.rawValue), .text(keyHash)])
                }
                for campaign in batch.campaigns { try db.run(Campaign.insertSQL, try campaign.bindings()) }
                for ad in batch.ads { try db.run(Ad.insertSQL, try ad.bindings()) }
                for user in batch.users {
                    try Self.upsert(user, db)
                    guard user.activityVector != nil || !user.recentTopics.isEmpty else { continue }
                    try db.run(
                        "UPDATE users SET activity_vector = ?, activity_vector_at = ?, recent_topics = ? WHERE id = ?",
                        [user.activityVector.map { .blob(Self.floatsToBytes($0)) } ?? .null, user.activityVectorAt.map { .integer($0.milliseconds) } ?? .null,
                         .text(try Self.encode(user.recentTopics)), .text(user.id.rawValue)])
                }
                for activity in batch.activities { try Self.insert(activity, db) }
                for event in batch.history { try Self.insertEvent(event, db) }
            }
        }
    }

    /// Inserts an event row, uncharged; a repeated one changes nothing (`db.changes` says which).
    private static func insertEvent(_ event: EventRecord, _ db: SQLiteConnection) throws {
        try db.run(
            """
            INSERT OR IGNORE INTO events(placement_key, type, user_id, ad_id, campaign_id, decision_id, price_micros, charged_micros, value_micros, at, invalid_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
            """,
            [.text(event.placementKey), .text(event.type.rawValue), .text(event.userID.rawValue), .integer(event.adID.rawValue),
             .integer(event.campaignID.rawValue), .text(event.decisionID), .integer(event.priceMicros),
             event.valueMicros.map { .integer($0) } ?? .null, .integer(event.at.milliseconds),
             event.invalidReason.map { .text($0.rawValue) } ?? .null])
    }

    public func isEmpty() async throws -> Bool {
        try await reader.run { db in
            try db.query("SELECT NOT EXISTS (SELECT 1 FROM campaigns) AND NOT EXISTS (SELECT 1 FROM users)") { $0.int(0) == 1 }.first ?? true
        }
    }

    // MARK: Users

    public func upsertUser(_ user: UserProfile) async throws {
        try await writer.run { db in try Self.upsert(user, db) }
    }

    public func user(_ id: UserID) async throws -> UserProfile? {
        try await reader.run { db in try Self.profile(id, db) }
    }

    private static func profile(_ id: UserID, _ db: SQLiteConnection) throws -> UserProfile? {
        try db.query(
            "SELECT id, age, gender, country, language, interests, activity_vector, activity_vector_at, recent_topics, personalization FROM users WHERE id = ?",
            [.text(id.rawValue)]
        ) { row in
            UserProfile(
                id: try UserID(validating: row.text(0)), age: row.optionalInt(1).map { Int($0) }, gender: row.optionalText(2),
                country: row.optionalText(3), language: row.optionalText(4), interests: try Self.decode([String].self, row.text(5)),
                activityVector: row.blob(6).map(Self.bytesToFloats), activityVectorAt: row.optionalInt(7).map(Timestamp.init(milliseconds:)),
                recentTopics: try row.optionalText(8).map { try Self.decode([String: Double].self, $0) } ?? [:], personalization: row.int(9) != 0)
        }.first
    }

    public func activities(after id: Int64, limit: Int) async throws -> [(id: Int64, activity: Activity)] {
        try await reader.run { db in
            try db.query(
                "SELECT id, user_id, type, topics, text, ad_id, seconds, at FROM activities WHERE id > ? ORDER BY id LIMIT ?",
                [.integer(id), .integer(Int64(limit))]
            ) { row in
                (id: row.int(0), activity: Activity(
                    userID: try UserID(validating: row.text(1)), type: try Self.enumValue(ActivityType.self, row.text(2)),
                    topics: try Self.decode([String].self, row.text(3)), text: row.optionalText(4), adID: row.optionalInt(5).map(AdID.init),
                    seconds: row.optionalDouble(6), at: Timestamp(milliseconds: row.int(7))))
            }
        }
    }

    public func addToActivityVector(
        of user: UserID, item: [Float]?, topics: [String], weight: Float, at: Timestamp, cursor: (name: String, value: Int64)?
    ) async throws {
        try await writer.run { db in
            try db.transaction {
                // An item at or before the cursor was already added (by this process or another).
                if let cursor, try db.query("SELECT value FROM cursors WHERE name = ?", [.text(cursor.name)], { $0.int(0) }).first ?? 0 >= cursor.value {
                    return
                }
                let current = try db.query("SELECT activity_vector, activity_vector_at, recent_topics FROM users WHERE id = ?", [.text(user.rawValue)]) {
                    (vector: $0.blob(0).map(Self.bytesToFloats), at: $0.optionalInt(1).map(Timestamp.init(milliseconds:)),
                     topics: try $0.optionalText(2).map { try Self.decode([String: Double].self, $0) } ?? [:])
                }.first
                if current == nil { try db.run("INSERT INTO users(id, interests) VALUES (?, '[]')", [.text(user.rawValue)]) }
                // Items arrive roughly in time order; one from before the vector's time adds undecayed.
                let asOf = max(at, current?.at ?? at)
                let vector = item.map { ActivityVector.adding($0, weight: weight, to: current?.vector, asOf: current?.at, now: asOf) } ?? current?.vector
                let recent = ActivityVector.topics(current?.topics ?? [:], asOf: current?.at, adding: topics, weight: Double(weight), now: asOf)
                try db.run(
                    "UPDATE users SET activity_vector = ?, activity_vector_at = ?, recent_topics = ? WHERE id = ?",
                    [vector.map { .blob(Self.floatsToBytes($0)) } ?? .null, .integer(asOf.milliseconds), .text(try Self.encode(recent)),
                     .text(user.rawValue)])
                if let cursor {
                    try db.run(
                        "INSERT INTO cursors(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                        [.text(cursor.name), .integer(cursor.value)])
                }
            }
        }
    }

    public func setCursor(named name: String, to value: Int64) async throws {
        try await writer.run { db in
            // Never backwards: another process may have read further.
            try db.run(
                "INSERT INTO cursors(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)", [.text(name), .integer(value)])
        }
    }

    public func cursor(named name: String) async throws -> Int64 {
        try await reader.run { db in
            try db.query("SELECT value FROM cursors WHERE name = ?", [.text(name)]) { $0.int(0) }.first ?? 0
        }
    }

    public func appendActivity(_ activity: Activity) async throws {
        try await writer.run { db in try Self.insert(activity, db) }
    }

    public func recentActivity(of user: UserID, limit: Int) async throws -> [Activity] {
        try await reader.run { db in
            try db.query(
                "SELECT user_id, type, topics, text, ad_id, seconds, at FROM activities WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?",
                [.text(user.rawValue), .integer(Int64(limit))]
            ) { row in
                Activity(
                    userID: try UserID(validating: row.text(0)), type: try Self.enumValue(ActivityType.self, row.text(1)),
                    topics: try Self.decode([String].self, row.text(2)), text: row.optionalText(3), adID: row.optionalInt(4).map(AdID.init),
                    seconds: row.optionalDouble(5), at: Timestamp(milliseconds: row.int(6)))
            }
        }
    }

    // MARK: Events and billing

    public func record(_ event: EventRecord) async throws -> EventOutcome {
        try await writer.run { db in
            try db.transaction {
                try Self.insertEvent(event, db)
                guard db.changes == 1 else { return EventOutcome(duplicate: true, chargedMicros: 0) }
                let day = event.at.day
                var charged: Micros = 0
                if event.priceMicros > 0 && event.invalidReason == nil {
                    let budgets = try db.query("SELECT daily_budget_micros, total_budget_micros FROM campaigns WHERE id = ?", [.integer(event.campaignID.rawValue)]) { ($0.int(0), $0.int(1)) }.first
                    guard let (daily, total) = budgets else { throw AdServeError.notFound("campaign \(event.campaignID)") }
                    let spent = try db.query(
                        "SELECT COALESCE(SUM(CASE WHEN day = ? THEN spend_micros ELSE 0 END), 0), COALESCE(SUM(spend_micros), 0) FROM campaign_daily WHERE campaign_id = ?",
                        [.integer(day), .integer(event.campaignID.rawValue)]
                    ) { ($0.int(0), $0.int(1)) }.first ?? (0, 0)
                    charged = Budget.chargeable(price: event.priceMicros, dailyBudget: daily, spentToday: spent.0, totalBudget: total, spentTotal: spent.1)
                    if charged > 0 {
                        try db.run("UPDATE events SET charged_micros = ? WHERE placement_key = ? AND type = ?", [.integer(charged), .text(event.placementKey), .text(event.type.rawValue)])
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
                    try db.run(
                        """
                        INSERT INTO \(table)(\(key), day, \(column), spend_micros) VALUES (?, ?, 1, ?)
                        ON CONFLICT(\(key), day) DO UPDATE SET \(column) = \(column) + 1, spend_micros = spend_micros + excluded.spend_micros
                        """,
                        [.integer(id), .integer(day), .integer(charged)])
                }
                return EventOutcome(duplicate: false, chargedMicros: charged)
            }
        }
    }

    public func hasEvent(placementKey: String, type: EventType) async throws -> Bool {
        try await reader.run { db in
            !(try db.query("SELECT 1 FROM events WHERE placement_key = ? AND type = ?", [.text(placementKey), .text(type.rawValue)]) { _ in () }.isEmpty)
        }
    }

    public func clickCount(of user: UserID, campaign: CampaignID?, since: Timestamp, upTo limit: Int) async throws -> Int {
        try await reader.run { db in
            let (filter, bindings): (String, [SQLValue]) = campaign.map { ("AND campaign_id = ?", [.integer($0.rawValue)]) } ?? ("", [])
            return try db.query(
                "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE user_id = ? AND type = 'click' AND at >= ? \(filter) LIMIT ?)",
                [.text(user.rawValue), .integer(since.milliseconds)] + bindings + [.integer(Int64(limit))]
            ) { Int($0.int(0)) }.first ?? 0
        }
    }

    public func campaignSpend(day: Int64) async throws -> [CampaignSpend] {
        try await reader.run { db in
            try db.query(
                "SELECT campaign_id, SUM(CASE WHEN day = ? THEN spend_micros ELSE 0 END), SUM(spend_micros) FROM campaign_daily GROUP BY campaign_id",
                [.integer(day)]
            ) { CampaignSpend(campaignID: CampaignID($0.int(0)), todayMicros: $0.int(1), totalMicros: $0.int(2)) }
        }
    }

    public func adCounters() async throws -> [AdID: DeliveryCounters] {
        try await reader.run { db in
            var result: [AdID: DeliveryCounters] = [:]
            try db.forEachRow("SELECT ad_id, SUM(impressions), SUM(clicks), SUM(conversions), SUM(hides), SUM(spend_micros), SUM(invalid_clicks) FROM ad_daily GROUP BY ad_id", []) { row in
                result[AdID(row.int(0))] = Self.counters(row, from: 1)
            }
            return result
        }
    }

    public func userRecord(_ id: UserID, impressionsSince since: Timestamp) async throws -> UserRecord {
        try await reader.run { db in
            // One read transaction: the four reads see the same moment.
            try db.readTransaction {
                let user = SQLValue.text(id.rawValue)
                let recent = try db.query(
                    "SELECT campaign_id, ad_id, at FROM events WHERE user_id = ? AND type = 'impression' AND at >= ? ORDER BY at",
                    [user, .integer(since.milliseconds)]
                ) { ImpressionRecord(userID: id, campaignID: CampaignID($0.int(0)), adID: AdID($0.int(1)), at: Timestamp(milliseconds: $0.int(2))) }
                let lifetime = try db.query(
                    "SELECT campaign_id, ad_id, COUNT(*) FROM events WHERE user_id = ? AND type = 'impression' GROUP BY campaign_id, ad_id ORDER BY campaign_id, ad_id",
                    [user]
                ) { ImpressionCount(userID: id, campaignID: CampaignID($0.int(0)), adID: AdID($0.int(1)), impressions: Int($0.int(2))) }
                let hides = try db.query(
                    """
                    SELECT e.ad_id, c.advertiser_id, e.type FROM events e JOIN campaigns c ON c.id = e.campaign_id
                    WHERE e.user_id = ? AND e.type IN ('hide', 'hide_advertiser', 'not_relevant') ORDER BY e.at, e.placement_key
                    """, [user]
                ) {
                    HideRecord(userID: id, adID: AdID($0.int(0)), advertiserID: AdvertiserID($0.int(1)), type: try Self.enumValue(EventType.self, $0.text(2)))
                }
                return UserRecord(profile: try Self.profile(id, db), recent: recent, lifetime: lifetime, hides: hides)
            }
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
        return try await reader.run { db in
            var hours = [Micros](repeating: 0, count: 24)
            try db.forEachRow(
                """
                SELECT (at - ?1) / 3600000, SUM(charged_micros) FROM events
                WHERE campaign_id = ?2 AND at >= ?1 AND at < ?1 + 86400000 AND charged_micros > 0 GROUP BY 1
                """, [.integer(start), .integer(campaign.rawValue)]
            ) { row in
                let hour = Int(row.int(0))
                if (0..<24).contains(hour) { hours[hour] = row.int(1) }
            }
            return hours
        }
    }

    private func daily(table: String, key: String, id: Int64) async throws -> [DailyCounters] {
        try await reader.run { db in
            try db.query("SELECT day, impressions, clicks, conversions, hides, spend_micros, invalid_clicks FROM \(table) WHERE \(key) = ? ORDER BY day", [.integer(id)]) {
                DailyCounters(day: $0.int(0), counters: Self.counters($0, from: 1))
            }
        }
    }
}

// MARK: Row mapping

extension SQLiteStore {
    fileprivate static func counters(_ row: Row, from column: Int32) -> DeliveryCounters {
        DeliveryCounters(
            impressions: row.int(column), clicks: row.int(column + 1), conversions: row.int(column + 2),
            hides: row.int(column + 3), spendMicros: row.int(column + 4), invalidClicks: row.int(column + 5))
    }

    fileprivate static func upsert(_ user: UserProfile, _ db: SQLiteConnection) throws {
        try db.run(
            """
            INSERT INTO users(id, age, gender, country, language, interests, personalization) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET age=excluded.age, gender=excluded.gender, country=excluded.country,
            language=excluded.language, interests=excluded.interests, personalization=excluded.personalization
            """,
            [.text(user.id.rawValue), user.age.map { .integer(Int64($0)) } ?? .null, user.gender.map(SQLValue.text) ?? .null,
             user.country.map(SQLValue.text) ?? .null, user.language.map(SQLValue.text) ?? .null, .text(try encode(user.interests)),
             .integer(user.personalization ? 1 : 0)])
    }

    fileprivate static func insert(_ activity: Activity, _ db: SQLiteConnection) throws {
        try db.run(
            "INSERT INTO activities(user_id, type, topics, text, ad_id, seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(activity.userID.rawValue), .text(activity.type.rawValue), .text(try encode(activity.topics)),
             activity.text.map(SQLValue.text) ?? .null, activity.adID.map { .integer($0.rawValue) } ?? .null,
             activity.seconds.map(SQLValue.real) ?? .null, .integer(activity.at.milliseconds)])
    }

    static func encode<T: Encodable>(_ value: T) throws -> String { try StoredValues.encode(value) }
    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try StoredValues.decode(type, text) }
    static func enumValue<T: RawRepresentable<String>>(_ type: T.Type, _ raw: String) throws -> T { try StoredValues.enumValue(type, raw) }
    static func floatsToBytes(_ floats: [Float]) -> [UInt8] { StoredValues.floatsToBytes(floats) }
    static func bytesToFloats(_ bytes: [UInt8]) -> [Float] { StoredValues.bytesToFloats(bytes) }
}

extension Row {
    fileprivate var advertiser: Advertiser { Advertiser(id: AdvertiserID(int(0)), name: text(1)) }
    fileprivate var advertiserKey: AdvertiserKey {
        AdvertiserKey(id: int(0), advertiserID: AdvertiserID(int(1)), createdAt: Timestamp(milliseconds: int(2)), revokedAt: optionalInt(3).map(Timestamp.init(milliseconds:)))
    }
}

/// A connection and the serial queue that alone may touch it.
private final class Worker: @unchecked Sendable {
    private let queue: DispatchQueue
    private let connection: SQLiteConnection

    init(label: String, connection: SQLiteConnection) {
        self.queue = DispatchQueue(label: label)
        self.connection = connection
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }
}
