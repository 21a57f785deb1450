import Domain

/// Campaigns and ads are stored alike: one row per id, columns in a fixed order starting with
/// `id` and ending with the catalog `revision`, so one create/update/fetch serves both.
protocol RevisionedRow: Sendable {
    static var table: String { get }
    static var noun: String { get }
    static var columns: [String] { get }
    var rowID: Int64 { get set }
    var revision: Int64 { get set }
    /// Values in `columns` order.
    func bindings() throws -> [SQLValue]
    init(row: Row) throws
}

extension RevisionedRow {
    static var selectSQL: String { "SELECT \(columns.joined(separator: ", ")) FROM \(table)" }
    static var insertSQL: String {
        "INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ",")))"
    }
    /// Binds every column but `id`, then `id` last.
    static var updateSQL: String {
        "UPDATE \(table) SET \(columns.dropFirst().map { "\($0)=?" }.joined(separator: ", ")) WHERE id=?"
    }
}

extension Campaign: RevisionedRow {
    static let table = "campaigns"
    static let noun = "campaign"
    static let columns = [
        "id", "advertiser_id", "name", "objective", "bid_micros", "daily_budget_micros", "total_budget_micros", "start_at", "end_at",
        "targeting", "cap_impressions", "cap_hours", "status", "created_at", "paused_at", "max_conversion_value_micros", "revision",
        "frequency_caps", "pacing",
    ]

    var rowID: Int64 {
        get { id.rawValue }
        set { id = CampaignID(newValue) }
    }

    func bindings() throws -> [SQLValue] {
        [.integer(id.rawValue), .integer(advertiserID.rawValue), .text(name), .text(objective.rawValue),
         .integer(bidMicros), .integer(dailyBudgetMicros), .integer(totalBudgetMicros),
         startAt.map { .integer($0.milliseconds) } ?? .null, endAt.map { .integer($0.milliseconds) } ?? .null,
         .text(try SQLiteStore.encode(targeting)), frequencyCap.map { .integer(Int64($0.impressions)) } ?? .null,
         frequencyCap.flatMap { $0.perHours.map { .integer(Int64($0)) } } ?? .null, .text(status.rawValue), .integer(createdAt.milliseconds),
         pausedAt.map { .integer($0.milliseconds) } ?? .null, .integer(maxConversionValueMicros), .integer(revision),
         .text(try SQLiteStore.encode(frequencyCaps)), .text(pacing.rawValue)]
    }

    init(row: Row) throws {
        // Rows written before migration 9 hold their one cap in the cap columns only.
        let caps = try row.optionalText(17).map { try SQLiteStore.decode([FrequencyCap].self, $0) }
        let cap: FrequencyCap? = caps != nil ? nil : row.optionalInt(10).flatMap { impressions in
            row.optionalInt(11).map { FrequencyCap(impressions: Int(impressions), perHours: Int($0)) }
        }
        self.init(
            id: CampaignID(row.int(0)), advertiserID: AdvertiserID(row.int(1)), name: row.text(2),
            objective: try SQLiteStore.enumValue(Objective.self, row.text(3)), bidMicros: row.int(4), dailyBudgetMicros: row.int(5),
            totalBudgetMicros: row.int(6), startAt: row.optionalInt(7).map(Timestamp.init(milliseconds:)),
            endAt: row.optionalInt(8).map(Timestamp.init(milliseconds:)), targeting: try SQLiteStore.decode(Targeting.self, row.text(9)),
            frequencyCap: cap, frequencyCaps: caps ?? [], status: try SQLiteStore.enumValue(Status.self, row.text(12)), createdAt: Timestamp(milliseconds: row.int(13)),
            pausedAt: row.optionalInt(14).map(Timestamp.init(milliseconds:)), maxConversionValueMicros: row.int(15),
            pacing: try SQLiteStore.enumValue(PacingMode.self, row.text(18)), revision: row.int(16))
    }
}

extension Ad: RevisionedRow {
    static let table = "ads"
    static let noun = "ad"
    static let columns = [
        "id", "campaign_id", "format", "media_urls", "caption", "company", "product", "description", "embedding", "status",
        "created_at", "embedding_status", "embedding_error", "image_embedding", "revision",
    ]

    var rowID: Int64 {
        get { id.rawValue }
        set { id = AdID(newValue) }
    }

    func bindings() throws -> [SQLValue] {
        [.integer(id.rawValue), .integer(campaignID.rawValue), .text(format.rawValue), .text(try SQLiteStore.encode(mediaURLs)),
         .text(caption), .text(company), .text(product), .text(description),
         embedding.map { .blob(SQLiteStore.floatsToBytes($0)) } ?? .null, .text(status.rawValue), .integer(createdAt.milliseconds),
         .text(embeddingStatus.rawValue), embeddingError.map(SQLValue.text) ?? .null,
         imageEmbedding.map { .blob(SQLiteStore.floatsToBytes($0)) } ?? .null, .integer(revision)]
    }

    init(row: Row) throws {
        self.init(
            id: AdID(row.int(0)), campaignID: CampaignID(row.int(1)), format: try SQLiteStore.enumValue(AdFormat.self, row.text(2)),
            mediaURLs: try SQLiteStore.decode([String].self, row.text(3)), caption: row.text(4), company: row.text(5), product: row.text(6),
            description: row.text(7), embedding: row.blob(8).map(SQLiteStore.bytesToFloats),
            embeddingStatus: try SQLiteStore.enumValue(EmbeddingStatus.self, row.text(11)), embeddingError: row.optionalText(12),
            imageEmbedding: row.blob(13).map(SQLiteStore.bytesToFloats),
            status: try SQLiteStore.enumValue(Status.self, row.text(9)), createdAt: Timestamp(milliseconds: row.int(10)),
            revision: row.int(14))
    }
}
