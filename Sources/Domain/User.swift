import Foundation

/// What the feed backend tells AdServe about a user. Every field is optional: a user AdServe
/// knows nothing about still gets untargeted ads.
public struct UserProfile: Sendable, Equatable, Codable {
    public var id: UserID
    public var age: Int?
    public var gender: String?
    public var country: String?
    public var language: String?
    public var interests: [String]
    /// What the user has been doing, in the content encoder's text space: a recency-weighted
    /// sum of the vectors of what they posted, liked, commented, viewed and clicked (hidden ads
    /// count against), as of `activityVectorAt` (`ActivityVector`). Kept by the server; the
    /// feed backend reports activity and never sets it.
    public var activityVector: [Float]?
    public var activityVectorAt: Timestamp?
    /// The topics, products and companies of the user's recent activity, with decayed weights
    /// (as of `activityVectorAt`): what they have been looking at lately, by name.
    public var recentTopics: [String: Double]
    /// False when the user opted out of personalized ads: decisions then use only the context
    /// and coarse demographics (`depersonalized`).
    public var personalization: Bool

    public init(
        id: UserID, age: Int? = nil, gender: String? = nil, country: String? = nil, language: String? = nil, interests: [String] = [],
        activityVector: [Float]? = nil, activityVectorAt: Timestamp? = nil, recentTopics: [String: Double] = [:], personalization: Bool = true
    ) {
        self.personalization = personalization
        self.id = id
        self.age = age
        self.gender = gender
        self.country = country
        self.language = language
        self.interests = interests
        self.activityVector = activityVector
        self.activityVectorAt = activityVectorAt
        self.recentTopics = recentTopics
    }
}

extension UserProfile {
    /// What a decision may use of a user who opted out of personalization: age, gender,
    /// country and language (what targeting matches); no interests, no activity vector, no
    /// recent topics.
    public func depersonalized() -> UserProfile {
        UserProfile(id: id, age: age, gender: gender, country: country, language: language, personalization: false)
    }
}

/// A user's activity vector: every new item decays what came before by its age (half-life
/// `halfLifeMilliseconds`) and adds the item's vector times its weight.
public enum ActivityVector {
    public static let halfLifeMilliseconds: Int64 = 3 * Timestamp.millisecondsPerDay

    /// `vector` (as of `from`) decayed to `now`, plus `weight × item`. An item of another size
    /// than the vector replaces nothing and is ignored.
    public static func adding(_ item: [Float], weight: Float, to vector: [Float]?, asOf from: Timestamp?, now: Timestamp) -> [Float] {
        guard var sum = vector, sum.count == item.count, let from else { return item.map { $0 * weight } }
        let age = Double(max(0, now.milliseconds - from.milliseconds))
        let decay = Float(pow(0.5, age / Double(halfLifeMilliseconds)))
        for i in sum.indices { sum[i] = sum[i] * decay + weight * item[i] }
        return sum
    }

    /// How much one activity says about the user's taste; 0 for what says nothing.
    public static func weight(_ type: ActivityType, seconds: Double?) -> Float {
        switch type {
        case .post, .comment: 3
        case .like: 2
        case .follow: 1
        // A glance says little; a long look more, up to a like's worth.
        case .view: Float(0.25 + min(max(seconds ?? 2, 0), 30) / 20)
        case .session: 0
        }
    }

    /// Recent topics: decayed with a 1-day half-life (lately, not over the week), at most
    /// `maxRecentTopics` kept (the heaviest).
    public static let topicHalfLifeMilliseconds: Int64 = Timestamp.millisecondsPerDay
    public static let maxRecentTopics = 64

    /// `topics` (as of `from`) decayed to `now`, plus `weight` on each of `adding`.
    public static func topics(_ topics: [String: Double], asOf from: Timestamp?, adding names: [String], weight: Double, now: Timestamp) -> [String: Double] {
        let age = Double(max(0, now.milliseconds - (from ?? now).milliseconds))
        let decay = pow(0.5, age / Double(topicHalfLifeMilliseconds))
        var result = topics.mapValues { $0 * decay }.filter { $0.value > 1e-3 }
        for name in Set(names) where !name.isEmpty { result[name, default: 0] += weight }
        if result.count > maxRecentTopics {
            result = Dictionary(uniqueKeysWithValues: result.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(maxRecentTopics).map { ($0.key, $0.value) })
        }
        return result
    }

    /// How much of a recent-topic weight (as of `from`) is left at `now`.
    public static func topicDecay(from: Timestamp?, to now: Timestamp?) -> Double {
        guard let from, let now, now > from else { return 1 }
        return pow(0.5, Double(now.milliseconds - from.milliseconds) / Double(topicHalfLifeMilliseconds))
    }

    /// What an ad is about, by name, to match against recent topics: its product and company.
    public static func names(of ad: Ad) -> [String] { Array(ad.topicNames) }

    /// A click on an ad says more than a like; hiding it says the opposite.
    public static let clickWeight: Float = 4
    public static let hideWeight: Float = -2

}

public enum ActivityType: String, Sendable, Codable, CaseIterable {
    case post, like, comment, follow, view, session
}

/// One thing a user did in the feed: the history later features and embeddings read.
public struct Activity: Sendable, Equatable, Codable {
    public var userID: UserID
    public var type: ActivityType
    public var topics: [String]
    public var text: String?
    public var adID: AdID?
    public var seconds: Double?
    public var at: Timestamp

    public init(userID: UserID, type: ActivityType, topics: [String] = [], text: String? = nil, adID: AdID? = nil, seconds: Double? = nil, at: Timestamp) {
        self.userID = userID
        self.type = type
        self.topics = topics
        self.text = text
        self.adID = adID
        self.seconds = seconds
        self.at = at
    }
}

/// Where and how the feed shows the page the ads go into.
public struct FeedContext: Sendable, Equatable, Codable {
    public var device: String?
    public var hour: Int?
    public var sessionPosition: Int?
    /// When the decision was made: set by the server from its clock (never by the client), so
    /// features of recency ("hours since the user's last activity") read the same time in
    /// serving as in training from the logs.
    public var at: Timestamp?
    public init(device: String? = nil, hour: Int? = nil, sessionPosition: Int? = nil, at: Timestamp? = nil) {
        self.device = device
        self.hour = hour
        self.sessionPosition = sessionPosition
        self.at = at
    }
}
