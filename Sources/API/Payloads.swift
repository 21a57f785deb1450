import Domain
import Events
import Serving

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

struct FrequencyCapPayload: Codable {
    var impressions: Int
    var perHours: Int
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
    var status: Status?
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
    var status: Status
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
        frequencyCap = c.frequencyCap.map { FrequencyCapPayload(impressions: $0.impressions, perHours: $0.perHours) }
        status = c.status
        createdAt = c.createdAt.iso8601
        spentTodayMicros = spend?.today
        spentTotalMicros = spend?.total
    }
}

struct CampaignListPayload: Encodable {
    var campaigns: [CampaignPayload]
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
}

struct UserPayload: Encodable {
    var id: String
    var age: Int?
    var gender: String?
    var country: String?
    var language: String?
    var interests: [String]

    init(_ u: UserProfile) {
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
    }

    var decisionId: String
    var ads: [AdSlot]

    init(_ d: Decision) {
        decisionId = d.decisionID
        ads = d.placements.map {
            AdSlot(
                afterPost: $0.afterPost, adId: $0.ad.id.rawValue, campaignId: $0.campaignID.rawValue, advertiserId: $0.advertiserID.rawValue,
                format: $0.ad.format, caption: $0.ad.caption, mediaUrls: $0.ad.mediaURLs, company: $0.ad.company, product: $0.ad.product,
                impressionToken: $0.impressionToken)
        }
    }
}

struct EventBody: Decodable {
    var type: EventType
    var impressionToken: String
    var valueMicros: Int64?
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
    }

    var campaignId: Int64?
    var adId: Int64?
    var impressions: Int64
    var clicks: Int64
    var conversions: Int64
    var hides: Int64
    var spendMicros: Int64
    var ctr: Double
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
        byDay = report.days.map {
            Day(
                day: Timestamp.isoDate(day: $0.day), impressions: $0.counters.impressions, clicks: $0.counters.clicks,
                conversions: $0.counters.conversions, hides: $0.counters.hides, spendMicros: $0.counters.spendMicros, ctr: $0.counters.ctr)
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
