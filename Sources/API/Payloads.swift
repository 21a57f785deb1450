import Domain
import Events
import Hummingbird
import Serving
import Storage

// Wire shapes of the JSON API (snake_case on the wire via the coders in `JSON`). These names
// are the contract clients are written against: add fields, never rename.

struct CreateAdvertiserBody: Decodable {
    var name: String
}

struct AdvertiserPayload: Encodable {
    var id: Int64
    var name: String
    var apiKey: String?
}

struct TargetingPayload: Codable {
    var ageMin: Int?
    var ageMax: Int?
    var genders: [String]?
    var countries: [String]?
    var languages: [String]?
    var interests: [String]?
    var devices: [String]?

    init(_ t: Targeting) {
        ageMin = t.ageMin
        ageMax = t.ageMax
        genders = t.genders
        countries = t.countries
        languages = t.languages
        interests = t.interests
        devices = t.devices
    }

    var targeting: Targeting {
        Targeting(
            ageMin: ageMin, ageMax: ageMax, genders: genders ?? [], countries: countries ?? [], languages: languages ?? [],
            interests: interests ?? [], devices: devices ?? [])
    }
}

/// A frequency cap: `per_hours` left out caps for ever; `per` is "campaign" (default) or "ad".
struct FrequencyCapPayload: Codable {
    var impressions: Int
    var perHours: Int?
    var per: FrequencyCap.Scope?

    init(_ cap: FrequencyCap) {
        impressions = cap.impressions
        perHours = cap.perHours
        per = cap.per
    }

    var cap: FrequencyCap { FrequencyCap(impressions: impressions, perHours: perHours, per: per ?? .campaign) }

    /// The caps a body sets: `frequency_cap` (one) or `frequency_caps` (all of them), not both.
    static func caps(single: FrequencyCapPayload?, list: [FrequencyCapPayload]?) throws(AdServeError) -> (single: FrequencyCap?, list: [FrequencyCap]?) {
        if single != nil && list != nil { throw .invalid("frequency_caps", "give frequency_cap or frequency_caps, not both") }
        if let single, single.perHours == nil || (single.per ?? .campaign) != .campaign {
            throw .invalid("frequency_cap", "is the campaign's cap within per_hours hours; use frequency_caps for per-ad and lifetime caps")
        }
        return (single?.cap, list?.map(\.cap))
    }
}

struct CreateCampaignBody: Decodable {
    var advertiserId: Int64
    var name: String
    var objective: Objective
    var bidMicros: Int64
    var dailyBudgetMicros: Int64
    var totalBudgetMicros: Int64
    var startAt: String?
    var endAt: String?
    var targeting: TargetingPayload?
    var frequencyCap: FrequencyCapPayload?
    var frequencyCaps: [FrequencyCapPayload]?
    var status: Status?
    var maxConversionValueMicros: Int64?
    var pacing: PacingMode?
}

struct PatchCampaignBody: Decodable {
    var name: String?
    var status: Status?
    var bidMicros: Int64?
    var dailyBudgetMicros: Int64?
    var totalBudgetMicros: Int64?
    var startAt: String?
    var endAt: String?
    var targeting: TargetingPayload?
    var frequencyCap: FrequencyCapPayload?
    var frequencyCaps: [FrequencyCapPayload]?
    var maxConversionValueMicros: Int64?
    var pacing: PacingMode?
}

struct CampaignPayload: Encodable {
    var id: Int64
    var advertiserId: Int64
    var name: String
    var objective: Objective
    var billing: String
    var bidMicros: Int64
    var dailyBudgetMicros: Int64
    var totalBudgetMicros: Int64
    var startAt: String?
    var endAt: String?
    var targeting: TargetingPayload
    var frequencyCap: FrequencyCapPayload?
    var frequencyCaps: [FrequencyCapPayload]
    var status: Status
    var pausedAt: String?
    var maxConversionValueMicros: Int64
    var pacing: PacingMode
    var createdAt: String
    var spentTodayMicros: Int64?
    var spentTotalMicros: Int64?

    init(_ c: Campaign, spend: (today: Micros, total: Micros)? = nil) {
        id = c.id.rawValue
        advertiserId = c.advertiserID.rawValue
        name = c.name
        objective = c.objective
        billing = switch c.objective {
        case .awareness: "cpm"
        case .traffic: "cpc"
        case .conversions: "cpa"
        }
        bidMicros = c.bidMicros
        dailyBudgetMicros = c.dailyBudgetMicros
        totalBudgetMicros = c.totalBudgetMicros
        startAt = c.startAt.map(\.iso8601)
        endAt = c.endAt.map(\.iso8601)
        targeting = TargetingPayload(c.targeting)
        frequencyCap = c.frequencyCap.map(FrequencyCapPayload.init)
        frequencyCaps = c.frequencyCaps.map(FrequencyCapPayload.init)
        status = c.status
        pausedAt = c.pausedAt.map(\.iso8601)
        maxConversionValueMicros = c.maxConversionValueMicros
        pacing = c.pacing
        createdAt = c.createdAt.iso8601
        spentTodayMicros = spend?.today
        spentTotalMicros = spend?.total
    }
}

struct CampaignListPayload: Encodable {
    var campaigns: [CampaignPayload]
}

struct AdListPayload: Encodable {
    var ads: [AdPayload]
}

/// `GET /v1/whoami`: what the key is — what the dashboard shows its holder.
struct WhoAmIPayload: Encodable {
    var role: String
    var advertiserId: Int64?
    var advertiserName: String?
}

struct CreateAdBody: Decodable {
    var campaignId: Int64
    var format: AdFormat
    var mediaUrls: [String]
    var caption: String
    var company: String
    var product: String
    var description: String
    var embedding: [Float]?
    var status: Status?
}

struct PatchAdBody: Decodable {
    var status: Status?
    var mediaUrls: [String]?
    var caption: String?
    var company: String?
    var product: String?
    var description: String?
    var embedding: [Float]?
}

struct AdPayload: Encodable {
    var id: Int64
    var campaignId: Int64
    var format: AdFormat
    var mediaUrls: [String]
    var caption: String
    var company: String
    var product: String
    var description: String
    var embedding: [Float]?
    var embeddingStatus: EmbeddingStatus
    var embeddingError: String?
    var status: Status
    var createdAt: String

    init(_ ad: Ad) {
        id = ad.id.rawValue
        campaignId = ad.campaignID.rawValue
        format = ad.format
        mediaUrls = ad.mediaURLs
        caption = ad.caption
        company = ad.company
        product = ad.product
        description = ad.description
        embedding = ad.embedding
        embeddingStatus = ad.embeddingStatus
        embeddingError = ad.embeddingError
        status = ad.status
        createdAt = ad.createdAt.iso8601
    }
}

struct PutUserBody: Decodable {
    var age: Int?
    var gender: String?
    var country: String?
    var language: String?
    var interests: [String]?
    /// False: the user opted out of personalized ads.
    var personalization: Bool?
}

struct UserPayload: Encodable {
    var id: String
    var age: Int?
    var gender: String?
    var country: String?
    var language: String?
    var interests: [String]
    var personalization: Bool

    init(_ u: UserProfile) {
        personalization = u.personalization
        id = u.id.rawValue
        age = u.age
        gender = u.gender
        country = u.country
        language = u.language
        interests = u.interests
    }
}

struct ActivityBody: Decodable {
    var type: ActivityType
    var topics: [String]?
    var text: String?
    var adId: Int64?
    var seconds: Double?
}

struct AcceptedPayload: Encodable {
    var accepted: Bool
    var duplicate: Bool?
    /// Set when a click was recorded as invalid traffic (not charged): why.
    var invalid: InvalidClickReason?
}

struct KeyPayload: Encodable {
    var keyId: Int64
    var advertiserId: Int64
    /// The key itself: in the answer that creates it only.
    var apiKey: String?
    var createdAt: String
    var revokedAt: String?

    init(_ key: AdvertiserKey, apiKey: String? = nil) {
        keyId = key.id
        advertiserId = key.advertiserID.rawValue
        self.apiKey = apiKey
        createdAt = key.createdAt.iso8601
        revokedAt = key.revokedAt.map(\.iso8601)
    }
}

struct KeyListPayload: Encodable {
    var keys: [KeyPayload]
}

struct RotateSecretBody: Decodable {
    /// How long tokens signed with the old secret still verify (default: the token lifetime).
    var graceSeconds: Int64?
}

struct RotatedSecretPayload: Encodable {
    var rotated: Bool
    var previousValidUntil: String
}

struct ContextPayload: Decodable {
    var device: String?
    var hour: Int?
    var sessionPosition: Int?
}

struct DecisionBody: Decodable {
    var userId: String
    var context: ContextPayload?
    var organicCount: Int
}

/// `POST /v1/decisions`'s answer. The route writes it by hand (`DecisionResponse.swift`); this
/// `Encodable` conformance is what the hand-written bytes are checked against.
struct DecisionPayload: Encodable {
    struct AdSlot: Encodable {
        var afterPost: Int
        var adId: Int64
        var campaignId: Int64
        var advertiserId: Int64
        var format: AdFormat
        var caption: String
        var mediaUrls: [String]
        var company: String
        var product: String
        var impressionToken: String
        /// Given its slot by exploration rather than by winning the auction.
        var explored: Bool
    }

    var decisionId: String
    var ads: [AdSlot]
}

extension DecisionPayload {
    init(_ d: Decision) {
        decisionId = d.decisionID
        ads = d.placements.map {
            AdSlot(
                afterPost: $0.afterPost, adId: $0.ad.id.rawValue, campaignId: $0.campaignID.rawValue, advertiserId: $0.advertiserID.rawValue,
                format: $0.ad.format, caption: $0.ad.caption, mediaUrls: $0.ad.mediaURLs, company: $0.ad.company, product: $0.ad.product,
                impressionToken: $0.impressionToken, explored: $0.explored)
        }
    }
}

struct EventBody: Decodable {
    var type: EventType
    var impressionToken: String
    var valueMicros: Int64?
}

/// A delivery report written exactly as `GET /v1/reports/campaigns/{id}` and
/// `GET /v1/reports/ads/{id}` write it: what `adserve report … --json` prints.
public enum ReportDocument {
    public static func campaign(_ id: CampaignID, _ report: DeliveryReport, pretty: Bool = true) throws -> String {
        try JSONFormat.string(ReportPayload(campaignID: id, report), pretty: pretty)
    }

    public static func ad(_ id: AdID, _ report: DeliveryReport, pretty: Bool = true) throws -> String {
        try JSONFormat.string(ReportPayload(adID: id, report), pretty: pretty)
    }
}

/// `GET /v1/reports/campaigns/{id}/pacing`: target against actual spend by hour.
struct PacingPayload: ResponseEncodable {
    struct Hour: Encodable {
        var hour: Int
        var targetMicros: Int64
        var spendMicros: Int64?
    }
    var campaignId: Int64
    var day: String
    var dailyBudgetMicros: Int64
    /// Whether this node paces budgets (`serve --no-pacing` turns it off).
    var paced: Bool
    /// The campaign's current pass rate on this node: the share of decisions that consider it.
    var passRate: Double
    /// The largest gap between spend and target so far, as a share of the daily budget.
    var largestError: Double
    var hours: [Hour]

    init(campaignId: Int64, day: String, paced: Bool, passRate: Double, _ report: PacingReport) {
        self.campaignId = campaignId
        self.day = day
        self.dailyBudgetMicros = report.dailyBudgetMicros
        self.paced = paced
        self.passRate = passRate
        self.largestError = report.largestError
        self.hours = report.hours.map { Hour(hour: $0.hour, targetMicros: $0.targetMicros, spendMicros: $0.spendMicros) }
    }
}

struct ReportPayload: Encodable {
    struct Day: Encodable {
        var day: String
        var impressions: Int64
        var clicks: Int64
        var conversions: Int64
        var hides: Int64
        var spendMicros: Int64
        var ctr: Double
        var invalidClicks: Int64
    }

    var campaignId: Int64?
    var adId: Int64?
    var impressions: Int64
    var clicks: Int64
    var conversions: Int64
    var hides: Int64
    var spendMicros: Int64
    var ctr: Double
    /// What was paid on average (the auction's prices): per 1,000 impressions, per click, per
    /// conversion; absent where there was none.
    var ecpmMicros: Int64?
    var cpcMicros: Int64?
    var cpaMicros: Int64?
    /// Clicks recorded as invalid traffic: not in `clicks`, not charged.
    var invalidClicks: Int64
    var byDay: [Day]

    init(campaignID: CampaignID? = nil, adID: AdID? = nil, _ report: DeliveryReport) {
        campaignId = campaignID?.rawValue
        adId = adID?.rawValue
        impressions = report.totals.impressions
        clicks = report.totals.clicks
        conversions = report.totals.conversions
        hides = report.totals.hides
        spendMicros = report.totals.spendMicros
        ctr = report.totals.ctr
        let totals = report.totals
        // In Double: spend × 1,000 may not fit in Int64.
        ecpmMicros = totals.impressions > 0 ? Int64(Double(totals.spendMicros) * 1000 / Double(totals.impressions)) : nil
        cpcMicros = totals.clicks > 0 ? totals.spendMicros / totals.clicks : nil
        cpaMicros = totals.conversions > 0 ? totals.spendMicros / totals.conversions : nil
        invalidClicks = report.totals.invalidClicks
        byDay = report.days.map {
            Day(
                day: Timestamp.isoDate(day: $0.day), impressions: $0.counters.impressions, clicks: $0.counters.clicks,
                conversions: $0.counters.conversions, hides: $0.counters.hides, spendMicros: $0.counters.spendMicros, ctr: $0.counters.ctr,
                invalidClicks: $0.counters.invalidClicks)
        }
    }
}

struct ErrorPayload: Encodable {
    struct Body: Encodable {
        var message: String
        var field: String?
        var code: String
    }
    var error: Body
}

// MARK: From bodies to domain values (the handlers and the fuzz tests use these same ones)

extension CreateCampaignBody {
    /// The campaign this body describes, not yet validated (the catalog validates).
    func draft(at now: Timestamp) throws(AdServeError) -> Campaign {
        let caps = try FrequencyCapPayload.caps(single: frequencyCap, list: frequencyCaps)
        return Campaign(
            id: CampaignID(0), advertiserID: AdvertiserID(advertiserId), name: name, objective: objective,
            bidMicros: bidMicros, dailyBudgetMicros: dailyBudgetMicros, totalBudgetMicros: totalBudgetMicros,
            startAt: try startAt.map { s throws(AdServeError) in try Timestamp(iso8601: s, field: "start_at") },
            endAt: try endAt.map { s throws(AdServeError) in try Timestamp(iso8601: s, field: "end_at") },
            targeting: targeting?.targeting ?? Targeting(),
            frequencyCap: caps.single, frequencyCaps: caps.list ?? [],
            status: status ?? .active, createdAt: now,
            maxConversionValueMicros: maxConversionValueMicros ?? Limits.defaultMaxConversionValueMicros, pacing: pacing ?? .standard)
    }
}

extension PatchCampaignBody {
    /// Dates parsed first, so a bad one is refused before anything is read or written.
    func change() throws(AdServeError) -> @Sendable (inout Campaign) -> Void {
        let startAt = try startAt.map { s throws(AdServeError) in try Timestamp(iso8601: s, field: "start_at") }
        let endAt = try endAt.map { s throws(AdServeError) in try Timestamp(iso8601: s, field: "end_at") }
        let caps = try FrequencyCapPayload.caps(single: frequencyCap, list: frequencyCaps)
        let patch = self
        return { campaign in
            if let v = patch.name { campaign.name = v }
            if let v = patch.status { campaign.status = v }
            if let v = patch.bidMicros { campaign.bidMicros = v }
            if let v = patch.dailyBudgetMicros { campaign.dailyBudgetMicros = v }
            if let v = patch.totalBudgetMicros { campaign.totalBudgetMicros = v }
            if let startAt { campaign.startAt = startAt }
            if let endAt { campaign.endAt = endAt }
            if let v = patch.targeting { campaign.targeting = v.targeting }
            if let v = caps.single { campaign.frequencyCap = v }
            if let v = caps.list { campaign.frequencyCaps = v }
            if let v = patch.maxConversionValueMicros { campaign.maxConversionValueMicros = v }
            if let v = patch.pacing { campaign.pacing = v }
        }
    }
}

extension CreateAdBody {
    func draft(at now: Timestamp) -> Ad {
        Ad(
            id: AdID(0), campaignID: CampaignID(campaignId), format: format, mediaURLs: mediaUrls, caption: caption,
            company: company, product: product, description: description, embedding: embedding,
            status: status ?? .active, createdAt: now)
    }
}

extension PatchAdBody {
    func apply(to ad: inout Ad) {
        if let v = status { ad.status = v }
        if let v = mediaUrls { ad.mediaURLs = v }
        if let v = caption { ad.caption = v }
        if let v = company { ad.company = v }
        if let v = product { ad.product = v }
        if let v = description { ad.description = v }
        if let v = embedding { ad.embedding = v }
    }
}

/// One stored model (`GET /v1/models`, promote, roll back). A metric that could not be computed
/// (no held-out data) is left out.
struct ModelPayload: Encodable {
    var version: Int
    var target: String
    var kind: String
    var createdAt: String
    var trainingExamples: Int
    var heldOutExamples: Int
    var auc: Double?
    var logloss: Double?
    var ne: Double?
    var calibration: Double?
    var serving: Bool

    init(_ m: ModelSummary) {
        func finite(_ v: Double) -> Double? { v.isFinite ? v : nil }
        version = m.version
        target = m.target
        kind = m.kind
        createdAt = m.createdAt.iso8601
        trainingExamples = m.trainingExamples
        heldOutExamples = m.heldOutExamples
        auc = finite(m.auc)
        logloss = finite(m.logloss)
        ne = finite(m.ne)
        calibration = finite(m.calibration)
        serving = m.serving
    }
}

struct ModelListPayload: Encodable {
    var models: [ModelPayload]
}

struct ChartListPayload: Encodable {
    var charts: [String]
}

struct RollbackBody: Decodable {
    var target: String
}

// Handlers return these; the context's encoder writes them.
extension ModelPayload: ResponseEncodable {}
extension ModelListPayload: ResponseEncodable {}
extension ChartListPayload: ResponseEncodable {}
extension AdvertiserPayload: ResponseEncodable {}
extension KeyPayload: ResponseEncodable {}
extension KeyListPayload: ResponseEncodable {}
extension CampaignPayload: ResponseEncodable {}
extension CampaignListPayload: ResponseEncodable {}
extension AdPayload: ResponseEncodable {}
extension AdListPayload: ResponseEncodable {}
extension WhoAmIPayload: ResponseEncodable {}
extension UserPayload: ResponseEncodable {}
extension AcceptedPayload: ResponseEncodable {}
extension RotatedSecretPayload: ResponseEncodable {}
extension ReportPayload: ResponseEncodable {}
extension ExplainPayload: ResponseEncodable {}
extension WhyPayload: ResponseEncodable {}
extension LossesPayload: ResponseEncodable {}
