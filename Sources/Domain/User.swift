/// What the feed backend tells AdServe about a user. Every field is optional: a user AdServe
/// knows nothing about still gets untargeted ads.
public struct UserProfile: Sendable, Equatable, Codable {
    public var id: UserID
    public var age: Int?
    public var gender: String?
    public var country: String?
    public var language: String?
    public var interests: [String]

    public init(id: UserID, age: Int? = nil, gender: String? = nil, country: String? = nil, language: String? = nil, interests: [String] = []) {
        self.id = id
        self.age = age
        self.gender = gender
        self.country = country
        self.language = language
        self.interests = interests
    }
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
    public init(device: String? = nil, hour: Int? = nil, sessionPosition: Int? = nil) {
        self.device = device
        self.hour = hour
        self.sessionPosition = sessionPosition
    }
}
