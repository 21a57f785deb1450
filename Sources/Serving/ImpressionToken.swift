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

/// Signs and verifies impression tokens: `base64url(payload).base64url(HMAC-SHA-256(key, payload))`.
public struct TokenSigner: Sendable {
    private let key: HMAC.Key
    /// How long a token is accepted after it was issued.
    public let lifetimeMilliseconds: Int64

    public init(key: [UInt8], lifetimeMilliseconds: Int64 = 7 * Timestamp.millisecondsPerDay) {
        self.key = HMAC.Key(key)
        self.lifetimeMilliseconds = lifetimeMilliseconds
    }

    public func sign(_ token: ImpressionToken) -> String {
        let payload = [
            "1", token.decisionID, String(token.afterPost), token.userID.rawValue, String(token.adID.rawValue),
            String(token.campaignID.rawValue), token.objective.rawValue, String(token.priceMicros), String(token.issuedAt.milliseconds),
        ].joined(separator: "|")
        let bytes = Array(payload.utf8)
        return Base64URL.encode(bytes) + "." + Base64URL.encode(key.authenticationCode(for: bytes))
    }

    public func verify(_ text: String, now: Timestamp) throws(AdServeError) -> ImpressionToken {
        let invalid = AdServeError(.invalidInput, "impression token is invalid", field: "impression_token")
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 1024, parts.count == 2,
            let payload = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[1]),
            HMAC.constantTimeEquals(key.authenticationCode(for: payload), mac)
        else { throw invalid }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 9, fields[0] == "1",
            let afterPost = Int(fields[2]), let userID = try? UserID(validating: fields[3]),
            let ad = Int64(fields[4]), let campaign = Int64(fields[5]), let objective = Objective(rawValue: fields[6]),
            let price = Int64(fields[7]), let issued = Int64(fields[8])
        else { throw invalid }
        let token = ImpressionToken(
            decisionID: fields[1], afterPost: afterPost, userID: userID, adID: AdID(ad), campaignID: CampaignID(campaign),
            objective: objective, priceMicros: price, issuedAt: Timestamp(milliseconds: issued))
        guard now.milliseconds - issued <= lifetimeMilliseconds else {
            throw AdServeError(.expired, "impression token has expired", field: "impression_token")
        }
        return token
    }
}
