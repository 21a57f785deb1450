/// Money is integer micros (1 unit of currency = 1,000,000 micros), never floating point.
public typealias Micros = Int64

/// What the advertiser pays for; it also says which event is billed.
public enum Objective: String, Sendable, Codable, CaseIterable {
    /// CPM: the bid is the price of 1000 impressions.
    case awareness
    /// CPC: the bid is the price of one click.
    case traffic
    /// CPA: the bid is the price of one conversion.
    case conversions

    /// The event that is charged for.
    public var billedEvent: EventType {
        switch self {
        case .awareness: .impression
        case .traffic: .click
        case .conversions: .conversion
        }
    }

    /// The price of one billed event for a price in the bid's units. Awareness is priced per
    /// 1,000 impressions and charged per impression, rounded up to a micro: a price at or above
    /// the reserve stays there, and one at most a bid (a multiple of 1,000 micros) stays at most it.
    public func pricePerBilledEvent(bid: Micros) -> Micros {
        self == .awareness ? (bid + 999) / 1000 : bid
    }
}

/// How a campaign's daily budget is spent over the day.
public enum PacingMode: String, Sendable, Codable, CaseIterable {
    /// Spread over the day, following its traffic (budget pacing throttles the campaign when it
    /// runs ahead): the default.
    case standard
    /// As fast as it wins: for a launch or a flash sale; the budget may be gone by morning.
    case accelerated
}

public enum AdFormat: String, Sendable, Codable, CaseIterable {
    case image, video
}

public enum Status: String, Sendable, Codable, CaseIterable {
    case active, paused
}

public enum EventType: String, Sendable, Codable, CaseIterable {
    case impression, click, conversion
    /// The user hid this ad.
    case hide
    /// The user hid every ad of this ad's advertiser.
    case hideAdvertiser = "hide_advertiser"
    /// The user said this ad is not relevant to them: it is hidden, and ads like it (by content
    /// vector) are down-weighted for them.
    case notRelevant = "not_relevant"

    /// A user's negative feedback on an ad: counted as a hide in reports.
    public var isHide: Bool { self == .hide || self == .hideAdvertiser || self == .notRelevant }
}

public struct Advertiser: Sendable, Equatable, Codable {
    public var id: AdvertiserID
    public var name: String
    public init(id: AdvertiserID, name: String) {
        self.id = id
        self.name = name
    }
}

/// Who a campaign wants to reach. An empty list or a nil bound means "anyone".
public struct Targeting: Sendable, Equatable, Codable {
    public var ageMin: Int?
    public var ageMax: Int?
    public var genders: [String]
    public var countries: [String]
    public var languages: [String]
    public var interests: [String]
    public var devices: [String]

    public init(
        ageMin: Int? = nil, ageMax: Int? = nil, genders: [String] = [], countries: [String] = [],
        languages: [String] = [], interests: [String] = [], devices: [String] = []
    ) {
        self.ageMin = ageMin
        self.ageMax = ageMax
        self.genders = genders
        self.countries = countries
        self.languages = languages
        self.interests = interests
        self.devices = devices
    }
}

/// At most `impressions` impressions per user within `perHours` hours (nil: ever), of the
/// campaign's ads together or of each of its ads.
public struct FrequencyCap: Sendable, Equatable, Codable {
    public enum Scope: String, Sendable, Codable, CaseIterable {
        case campaign, ad
    }
    public var impressions: Int
    public var perHours: Int?
    public var per: Scope
    public init(impressions: Int, perHours: Int?, per: Scope = .campaign) {
        self.impressions = impressions
        self.perHours = perHours
        self.per = per
    }
}

public struct Campaign: Sendable, Equatable, Codable {
    public var id: CampaignID
    public var advertiserID: AdvertiserID
    public var name: String
    public var objective: Objective
    public var bidMicros: Micros
    public var dailyBudgetMicros: Micros
    public var totalBudgetMicros: Micros
    public var startAt: Timestamp?
    public var endAt: Timestamp?
    public var targeting: Targeting
    /// Frequency caps per user: per hours or lifetime, per campaign or per ad.
    public var frequencyCaps: [FrequencyCap]
    public var status: Status
    public var createdAt: Timestamp
    /// When the campaign was last paused (nil while active): events on tokens issued before the
    /// pause are charged only within `Billing.pauseGraceMilliseconds` of it.
    public var pausedAt: Timestamp?
    /// The largest `value_micros` a conversion of this campaign may report.
    public var maxConversionValueMicros: Micros
    /// Whether the daily budget is spread over the day or spent as fast as it wins.
    public var pacing: PacingMode
    /// The store's catalog revision of this version of the campaign: newer writes have higher
    /// revisions, so an out-of-order update never replaces a newer one in memory.
    public var revision: Int64

    public init(
        id: CampaignID, advertiserID: AdvertiserID, name: String, objective: Objective, bidMicros: Micros,
        dailyBudgetMicros: Micros, totalBudgetMicros: Micros, startAt: Timestamp? = nil, endAt: Timestamp? = nil,
        targeting: Targeting = Targeting(), frequencyCap: FrequencyCap? = nil, frequencyCaps: [FrequencyCap] = [], status: Status = .active,
        createdAt: Timestamp, pausedAt: Timestamp? = nil, maxConversionValueMicros: Micros = Limits.defaultMaxConversionValueMicros,
        pacing: PacingMode = .standard, revision: Int64 = 0
    ) {
        self.id = id
        self.advertiserID = advertiserID
        self.name = name
        self.objective = objective
        self.bidMicros = bidMicros
        self.dailyBudgetMicros = dailyBudgetMicros
        self.totalBudgetMicros = totalBudgetMicros
        self.startAt = startAt
        self.endAt = endAt
        self.targeting = targeting
        self.frequencyCaps = (frequencyCap.map { [$0] } ?? []) + frequencyCaps
        self.status = status
        self.createdAt = createdAt
        self.pausedAt = pausedAt
        self.maxConversionValueMicros = maxConversionValueMicros
        self.pacing = pacing
        self.revision = revision
    }

    /// The campaign's first windowed campaign-wide cap: the API's original `frequency_cap`.
    /// Setting it replaces that cap and keeps the others.
    /// Whether a cap counts impressions for ever.
    public var hasLifetimeCap: Bool { frequencyCaps.contains { $0.perHours == nil } }

    public var frequencyCap: FrequencyCap? {
        get { frequencyCaps.first { $0.per == .campaign && $0.perHours != nil } }
        set {
            if let i = frequencyCaps.firstIndex(where: { $0.per == .campaign && $0.perHours != nil }) { frequencyCaps.remove(at: i) }
            if let newValue { frequencyCaps.insert(newValue, at: 0) }
        }
    }
}

/// Where an ad's content vector stands: computed off the request path after the ad is created
/// or its text changes; the ad serves meanwhile.
public enum EmbeddingStatus: String, Sendable, Codable, CaseIterable {
    case pending, ready, failed
}

/// An ad. Its fields live in one immutable shared box, so copying an ad — the decision path
/// copies candidates, and each carries its ad — costs one reference count, not one per string
/// and array; setting a field makes a new box. Coded in JSON as its fields.
public struct Ad: Sendable, Equatable, Codable {
    /// What an ad holds.
    public struct Fields: Sendable, Equatable, Codable {
        public var id: AdID
        public var campaignID: CampaignID
        public var format: AdFormat
        public var mediaURLs: [String]
        public var caption: String
        public var company: String
        public var product: String
        public var description: String
        /// The ad's content vector in the text space (`Limits.embeddingDimensions`): supplied by the
        /// advertiser, or computed from its text by the content encoder.
        public var embedding: [Float]?
        public var embeddingStatus: EmbeddingStatus
        /// Why encoding failed, when it did.
        public var embeddingError: String?
        /// The picture's (or video's) image vector (EfficientNet-Lite0, 1,280 floats), when the
        /// media could be read.
        public var imageEmbedding: [Float]?
        public var status: Status
        public var createdAt: Timestamp
        /// The store's catalog revision of this version of the ad (see `Campaign.revision`).
        public var revision: Int64
    }

    private final class Box: Sendable {
        // What a ranker reads of every candidate, copied from `fields` and declared first, so
        // that they sit next to the object's header (the fields proper span three more lines).
        let createdAt: Timestamp
        let revision: Int64
        /// Σ x² of the content vector, kept with it: a ranker's cosine per candidate needs it.
        let embeddingSquaredNorm: Double
        /// The content vector as given, or (`compacted()`) as bytes, with `fields.embedding` nil.
        let embedding: [Float]?
        let compactEmbedding: QuantizedVector?
        /// The names recent topics are matched by for every candidate of an active user, made
        /// once per ad version and kept in place (`TopicNames`).
        let topicNames: TopicNames
        let fields: Fields
        /// When compacted: the caption, the description and the media URLs in one string
        /// (`PackedText`), with those fields empty in `fields`: one allocation instead of two to
        /// five (the caption, the description, the URLs' array and each URL).
        let text: PackedText?
        /// When compacted: the vector's sketch and content code as given, made before its floats
        /// are let go, so the models' inputs stay what they were (declared last: read once per
        /// ad version, not per candidate).
        let contentSketch: VectorSketch?
        let contentCode: Int?
        /// Made by `compacted()` (from complete fields: a box that is not compact holds them as given).
        let compact: Bool
        init(_ fields: Fields, compact: Bool = false) {
            self.compact = compact
            createdAt = fields.createdAt
            revision = fields.revision
            topicNames = TopicNames(product: fields.product, company: fields.company)
            var rest = fields
            text = compact ? PackedText(caption: fields.caption, description: fields.description, mediaURLs: fields.mediaURLs) : nil
            if text != nil {
                rest.caption = ""
                rest.description = ""
                rest.mediaURLs = []
            }
            if compact, let vector = fields.embedding {
                let quantized = QuantizedVector(vector)
                embedding = nil
                compactEmbedding = quantized
                contentSketch = VectorSketch(vector)
                contentCode = ContentCode.of(vector)
                embeddingSquaredNorm = quantized.squaredNorm
                rest.embedding = nil
            } else {
                embedding = fields.embedding
                compactEmbedding = nil
                contentSketch = nil
                contentCode = nil
                embeddingSquaredNorm = fields.embedding.map(VectorMath.squaredNorm) ?? 0
            }
            self.fields = rest
        }

        var caption: String { text?.caption ?? fields.caption }
        var description: String { text?.description ?? fields.description }
        var mediaURLs: [String] { text?.mediaURLs ?? fields.mediaURLs }

        /// All fields, the content vector made from its bytes and the text unpacked when compacted.
        var allFields: Fields {
            var all = textFields
            if let compactEmbedding { all.embedding = compactEmbedding.floats }
            return all
        }

        /// `fields` with the text unpacked, without making the floats of a compacted vector.
        var textFields: Fields {
            guard let text else { return fields }
            var all = fields
            all.caption = text.caption
            all.description = text.description
            all.mediaURLs = text.mediaURLs
            return all
        }
    }

    /// An ad's product and company, lowercased, the empty ones left out: what recent topics are
    /// matched by. At most two names, kept in place (an array would be one more allocation per
    /// ad); read without allocating.
    public struct TopicNames: RandomAccessCollection, Sendable, Equatable {
        private let product: String
        private let company: String
        public let count: Int

        init(product: String, company: String) {
            let names = [product, company].map { $0.lowercased() }.filter { !$0.isEmpty }
            self.product = names.first ?? ""
            self.company = names.count > 1 ? names[1] : ""
            count = names.count
        }

        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(position: Int) -> String {
            precondition(position >= 0 && position < count, "topic name \(position) of \(count)")
            return position == 0 ? product : company
        }
    }

    /// A compacted ad's caption, description and media URLs in one string, separated by U+001E
    /// (record separator). An ad whose text holds that character is not packed.
    struct PackedText: Sendable {
        static let separator: Character = "\u{1E}"
        let joined: String

        init?(caption: String, description: String, mediaURLs: [String]) {
            let parts = [caption, description] + mediaURLs
            guard !parts.contains(where: { $0.contains(Self.separator) }) else { return nil }
            joined = parts.joined(separator: String(Self.separator))
        }

        private var parts: [Substring] { joined.split(separator: Self.separator, omittingEmptySubsequences: false) }
        var caption: String { String(joined.prefix { $0 != Self.separator }) }
        var description: String { String(parts[1]) }
        var mediaURLs: [String] { parts.dropFirst(2).map(String.init) }
    }

    private var box: Box

    /// All fields at once.
    public var fields: Fields {
        get { box.allFields }
        set { box = Box(newValue) }
    }

    private mutating func change(_ body: (inout Fields) -> Void) {
        var fields = box.allFields
        body(&fields)
        box = Box(fields)
    }

    public var id: AdID {
        get { box.fields.id }
        set { change { $0.id = newValue } }
    }
    public var campaignID: CampaignID {
        get { box.fields.campaignID }
        set { change { $0.campaignID = newValue } }
    }
    public var format: AdFormat {
        get { box.fields.format }
        set { change { $0.format = newValue } }
    }
    public var mediaURLs: [String] {
        get { box.mediaURLs }
        set { change { $0.mediaURLs = newValue } }
    }
    public var caption: String {
        get { box.caption }
        set { change { $0.caption = newValue } }
    }
    /// What the ad is about, by name (`ActivityVector.names(of:)`): its product and company,
    /// lowercased.
    public var topicNames: TopicNames { box.topicNames }

    public var company: String {
        get { box.fields.company }
        set { change { $0.company = newValue } }
    }
    public var product: String {
        get { box.fields.product }
        set { change { $0.product = newValue } }
    }
    public var description: String {
        get { box.description }
        set { change { $0.description = newValue } }
    }
    /// The ad's content vector in the text space (`Limits.embeddingDimensions`): supplied by the
    /// advertiser, or computed from its text by the content encoder.
    public var embedding: [Float]? {
        get { box.embedding ?? box.compactEmbedding?.floats }
        set {
            // Dropping a compacted vector needs no floats made first.
            if newValue == nil, isCompacted { box = Box(box.textFields) } else { change { $0.embedding = newValue } }
        }
    }
    /// `VectorMath.squaredNorm` of `embedding` (0 without one), computed when the ad is made.
    public var embeddingSquaredNorm: Double { box.embeddingSquaredNorm }

    /// The same ad with its content vector kept as bytes (`QuantizedVector`, a quarter of the
    /// memory; each component off by at most 1/254 of the largest): what the serving catalog
    /// holds. `embedding` then returns the floats the bytes stand for, made anew on each read;
    /// a ranker reads the vector through `contentCosine`, which makes nothing.
    /// Its caption, description and media URLs are kept in one string too (read back as
    /// they were given).
    public func compacted() -> Ad {
        guard !box.compact else { return self }
        var ad = self
        ad.box = Box(box.fields, compact: true)
        return ad
    }

    /// Whether the content vector is kept as bytes (`compacted()`).
    public var isCompacted: Bool { box.compactEmbedding != nil }

    /// Of a compacted ad, the sketch of its content vector as it was given (`VectorSketch`),
    /// made when it was compacted; nil otherwise (`AdSketches` makes and caches it then).
    public var contentSketch: VectorSketch? { box.contentSketch }

    /// `ContentCode.of(embedding)`, of a compacted ad as it was given.
    public var contentCode: Int? { isCompacted ? box.contentCode : ContentCode.of(box.embedding) }

    /// Loads the first line of the ad's storage, where a ranker's reads start (its age and the
    /// address of its content bytes), without retaining it (`CacheTouch`).
    public func touchStorage() -> UInt64 {
        UInt64(bitPattern: box.createdAt.milliseconds)
    }

    /// Loads the lines of the content bytes (after `touchStorage`, so that their address is at
    /// hand); the topic names are in the ad's own storage.
    public func touchContent() -> UInt64 {
        box.compactEmbedding?.touch() ?? 0
    }

    /// Cosine of the content vector and `other`, whose `VectorMath.squaredNorm` is
    /// `squaredNorm`; nil without a content vector or when the sizes differ. Of a vector as
    /// given, bit for bit `VectorMath.cosine(other, embedding, …)`.
    @inline(__always)
    public func contentCosine(_ other: [Float], squaredNorm: Double) -> Double? {
        if let embedding = box.embedding {
            guard other.count == embedding.count else { return nil }
            return VectorMath.cosine(other, embedding, squaredNormA: squaredNorm, squaredNormB: box.embeddingSquaredNorm)
        }
        guard let compact = box.compactEmbedding, other.count == compact.count else { return nil }
        guard !other.isEmpty, squaredNorm > 0, box.embeddingSquaredNorm > 0 else { return 0 }
        return compact.dot(other) / (squaredNorm * box.embeddingSquaredNorm).squareRoot()
    }
    public var embeddingStatus: EmbeddingStatus {
        get { box.fields.embeddingStatus }
        set { change { $0.embeddingStatus = newValue } }
    }
    /// Why encoding failed, when it did.
    public var embeddingError: String? {
        get { box.fields.embeddingError }
        set { change { $0.embeddingError = newValue } }
    }
    /// The picture's (or video's) image vector (EfficientNet-Lite0, 1,280 floats), when the
    /// media could be read.
    public var imageEmbedding: [Float]? {
        get { box.fields.imageEmbedding }
        set { change { $0.imageEmbedding = newValue } }
    }
    public var status: Status {
        get { box.fields.status }
        set { change { $0.status = newValue } }
    }
    public var createdAt: Timestamp {
        get { box.createdAt }
        set { change { $0.createdAt = newValue } }
    }
    /// The store's catalog revision of this version of the ad (see `Campaign.revision`).
    public var revision: Int64 {
        get { box.revision }
        set { change { $0.revision = newValue } }
    }

    public init(
        id: AdID, campaignID: CampaignID, format: AdFormat, mediaURLs: [String], caption: String, company: String,
        product: String, description: String, embedding: [Float]? = nil, embeddingStatus: EmbeddingStatus? = nil,
        embeddingError: String? = nil, imageEmbedding: [Float]? = nil, status: Status = .active, createdAt: Timestamp, revision: Int64 = 0
    ) {
        box = Box(Fields(
            id: id, campaignID: campaignID, format: format, mediaURLs: mediaURLs, caption: caption, company: company, product: product,
            description: description, embedding: embedding, embeddingStatus: embeddingStatus ?? (embedding == nil ? .pending : .ready),
            embeddingError: embeddingError, imageEmbedding: imageEmbedding, status: status, createdAt: createdAt, revision: revision))
    }

    public init(from decoder: any Decoder) throws { box = Box(try Fields(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try box.allFields.encode(to: encoder) }

    public static func == (lhs: Ad, rhs: Ad) -> Bool { lhs.box === rhs.box || lhs.box.allFields == rhs.box.allFields }
}

extension Ad {
    /// The text its content vector is computed from: company, product, caption and description.
    public var contentText: String {
        [company, product, caption, description].filter { !$0.isEmpty }.joined(separator: ". ")
    }

    /// What its vectors are computed from: its text and its media.
    public var contentSource: String { contentText + "\n" + mediaURLs.joined(separator: "\n") }

    /// Whole hours since the ad was created (0 for a clock before it).
    public func ageHours(at now: Timestamp) -> Int64 {
        max(0, (now.milliseconds - createdAt.milliseconds) / Timestamp.millisecondsPerHour)
    }
}
