import Domain
import Signing

/// What a served ad's token carries. The feed backend returns it with every event, so events
/// need no server-side lookup and cannot be forged: it is signed with HMAC-SHA-256.
public struct ImpressionToken: Sendable, Equatable {
    public var decisionID: String
    public var afterPost: Int
    public var userID: UserID
    public var adID: AdID
    public var campaignID: CampaignID
    public var objective: Objective
    /// Price of one billed event (set by the auction).
    public var priceMicros: Micros
    public var issuedAt: Timestamp

    public init(decisionID: String, afterPost: Int, userID: UserID, adID: AdID, campaignID: CampaignID, objective: Objective, priceMicros: Micros, issuedAt: Timestamp) {
        self.decisionID = decisionID
        self.afterPost = afterPost
        self.userID = userID
        self.adID = adID
        self.campaignID = campaignID
        self.objective = objective
        self.priceMicros = priceMicros
        self.issuedAt = issuedAt
    }

    /// The key events are deduplicated on: one per served placement.
    public var placementKey: String { Self.placementKey(decisionID: decisionID, afterPost: afterPost) }

    /// "decision id/slot": one impression's key, in the store's events, the join and the logs.
    public static func placementKey(decisionID: String, afterPost: Int) -> String { "\(decisionID)/\(afterPost)" }
}
