import Domain
import Hummingbird
import Signing
import Storage

/// Who is calling.
enum Principal: Sendable, Equatable {
    /// The ads team: everything.
    case admin
    /// The feed backend: decisions, events and users.
    case feed
    /// One advertiser: its own campaigns, ads and reports.
    case advertiser(AdvertiserID)

    func requireFeed() throws(AdServeError) {
        if case .advertiser = self { throw AdServeError(.forbidden, "this route needs the feed key or the admin key") }
    }

    func requireAdmin() throws(AdServeError) {
        guard self == .admin else { throw AdServeError(.forbidden, "this route needs the admin key") }
    }

    /// Admin, or the advertiser that owns the thing. Anyone else gets `hidden`, the error the
    /// caller would get if the thing did not exist: a key learns nothing about other
    /// advertisers' objects, not even whether they exist.
    func requireOwner(_ owner: AdvertiserID, else hidden: AdServeError) throws(AdServeError) {
        switch self {
        case .admin: return
        case .advertiser(let id) where id == owner: return
        default: throw hidden
        }
    }
}

/// Keys: `Authorization: Bearer KEY`. Admin and feed keys come from configuration; advertiser
/// keys are looked up by their SHA-256, which is all the store keeps.
/// A wrong key counts against the caller's address (`FailedAuthLimiter`).
struct Authenticator: Sendable {
    let adminKeyHash: String
    let feedKeyHash: String?
    let metricsKeyHash: String?
    let store: any AdStore
    let limiter: FailedAuthLimiter

    init(adminKey: String, feedKey: String?, metricsKey: String? = nil, store: any AdStore, limiter: FailedAuthLimiter) {
        self.adminKeyHash = Secrets.keyHash(adminKey)
        self.feedKeyHash = feedKey.map(Secrets.keyHash)
        self.metricsKeyHash = metricsKey.map(Secrets.keyHash)
        self.store = store
        self.limiter = limiter
    }

    /// `/metrics` with a metrics key configured: that key or the admin key.
    func requireMetrics(_ request: Request, _ context: AdServeRequestContext) throws(AdServeError) {
        try limiter.check(context.clientAddress)
        let hash = Array(try Self.keyHash(request).utf8)
        if HMAC.constantTimeEquals(hash, Array(adminKeyHash.utf8)) { return }
        if let metricsKeyHash, HMAC.constantTimeEquals(hash, Array(metricsKeyHash.utf8)) { return }
        limiter.recordFailure(context.clientAddress)
        throw AdServeError(.unauthorized, "unknown metrics key")
    }

    func principal(_ request: Request, _ context: AdServeRequestContext) async throws -> Principal {
        try limiter.check(context.clientAddress)
        let hash = try Self.keyHash(request)
        // Hashes of equal length compared in constant time: no timing oracle on the keys.
        if HMAC.constantTimeEquals(Array(hash.utf8), Array(adminKeyHash.utf8)) { return .admin }
        if let feedKeyHash, HMAC.constantTimeEquals(Array(hash.utf8), Array(feedKeyHash.utf8)) { return .feed }
        if let advertiser = try await store.advertiser(keyHash: hash) { return .advertiser(advertiser.id) }
        limiter.recordFailure(context.clientAddress)
        throw AdServeError(.unauthorized, "unknown API key")
    }

    private static func keyHash(_ request: Request) throws(AdServeError) -> String {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw AdServeError(.unauthorized, "missing Authorization: Bearer KEY header")
        }
        return Secrets.keyHash(String(header.dropFirst("Bearer ".count)))
    }
}
