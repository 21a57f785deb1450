import Domain
import Signing

/// Stage 5 of a decision, and the first step of every event: signs and verifies impression
/// tokens, `base64url(payload).base64url(HMAC-SHA-256(key, payload))`.
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
