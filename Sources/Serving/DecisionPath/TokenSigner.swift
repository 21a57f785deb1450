import Domain
import Signing
import Synchronization

/// Stage 5 of a decision, and the first step of every event: signs and verifies impression
/// tokens, `base64url(payload).base64url(HMAC-SHA-256(key, payload))`.
///
/// The key can be rotated: new tokens are signed with the new key at once, and tokens signed
/// with the previous key still verify until the rotation's grace period ends. Copies of a
/// signer (every serving variant holds one) share their keys.
public struct TokenSigner: Sendable {
    private struct Keys {
        var current: HMAC.Key
        /// The current key's bytes, to tell whether the store holds another.
        var currentBytes: [UInt8]
        var previous: HMAC.Key?
        var previousValidUntil: Int64
    }

    private final class SharedKeys: Sendable {
        let keys: Mutex<Keys>
        init(_ keys: Keys) { self.keys = Mutex(keys) }
    }

    private let shared: SharedKeys
    /// How long a token is accepted after it was issued.
    public let lifetimeMilliseconds: Int64

    public init(key: [UInt8], lifetimeMilliseconds: Int64 = 7 * Timestamp.millisecondsPerDay, previous: (value: [UInt8], validUntil: Timestamp)? = nil) {
        self.shared = SharedKeys(Keys(
            current: HMAC.Key(key), currentBytes: key, previous: previous.map { HMAC.Key($0.value) },
            previousValidUntil: previous?.validUntil.milliseconds ?? 0))
        self.lifetimeMilliseconds = lifetimeMilliseconds
    }

    /// Signs from now on with `key`; the key it replaces verifies until `previousValidUntil`.
    public func rotate(to key: [UInt8], previousValidUntil: Timestamp) {
        shared.keys.withLock { keys in
            keys = Keys(current: HMAC.Key(key), currentBytes: key, previous: keys.current, previousValidUntil: previousValidUntil.milliseconds)
        }
    }

    /// Takes the keys the store holds, when its current key is not this signer's (another node
    /// rotated it). Returns whether anything changed.
    @discardableResult
    public func adopt(current key: [UInt8], previous: (value: [UInt8], validUntil: Timestamp)?) -> Bool {
        shared.keys.withLock { keys in
            guard keys.currentBytes != key else { return false }
            keys = Keys(
                current: HMAC.Key(key), currentBytes: key, previous: previous.map { HMAC.Key($0.value) },
                previousValidUntil: previous?.validUntil.milliseconds ?? 0)
            return true
        }
    }

    private var key: HMAC.Key { shared.keys.withLock { $0.current } }

    /// Whether `mac` is the MAC of `payload` under the current key, or under the previous one
    /// within its grace period.
    private func authentic(_ payload: [UInt8], mac: [UInt8], now: Timestamp) -> Bool {
        let keys = shared.keys.withLock { $0 }
        if HMAC.constantTimeEquals(keys.current.authenticationCode(for: payload), mac) { return true }
        guard let previous = keys.previous, now.milliseconds <= keys.previousValidUntil else { return false }
        return HMAC.constantTimeEquals(previous.authenticationCode(for: payload), mac)
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
            authentic(payload, mac: mac, now: now)
        else { throw invalid }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 9, fields[0] == "1",
            let afterPost = Int(fields[2]), let userID = try? UserID(validating: fields[3]),
            let ad = Int64(fields[4]), let campaign = Int64(fields[5]), let objective = Objective(rawValue: fields[6]),
            let price = Int64(fields[7]), let issued = Int64(fields[8]),
            // Only a key holder can sign a time, but a time outside 1970–9999 would overflow
            // the window arithmetic below and downstream.
            (0...Timestamp.latest.milliseconds).contains(issued)
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
