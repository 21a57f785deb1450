import Domain

/// The application-level store: everything AdServe keeps durably. One contract, several
/// implementations (SQLite embedded by default; PostgreSQL for a fleet), checked by one
/// contract test suite. Every method either applies completely or not at all.
public protocol AdStore: Sendable {
    // MARK: Secrets

    /// The named secret, created by `make` and stored on first use, so it survives restarts.
    func secret(named name: String, orCreate make: @escaping @Sendable () -> [UInt8]) async throws -> [UInt8]
    /// Replaces the named secret with `value` in one transaction; the value it replaces stays
    /// readable through `previousSecret` until `previousValidUntil` (a rotation's grace period).
    func rotateSecret(named name: String, to value: [UInt8], previousValidUntil: Timestamp) async throws
    /// The value the last rotation replaced, and until when it is still accepted.
    func previousSecret(named name: String) async throws -> (value: [UInt8], validUntil: Timestamp)?

    // MARK: Advertisers

    /// Creates an advertiser with its first API key (stored as its hash only).
    func createAdvertiser(name: String, keyHash: String, at: Timestamp) async throws -> Advertiser
    func advertiser(_ id: AdvertiserID) async throws -> Advertiser?
    /// The advertiser whose unrevoked key has this hash.
    func advertiser(keyHash: String) async throws -> Advertiser?
    /// Adds an API key to an advertiser (rotation: add the new key, then revoke the old one).
    func addKey(to advertiser: AdvertiserID, keyHash: String, at: Timestamp) async throws -> AdvertiserKey
    /// Revokes one of the advertiser's keys; nil if it has no such unrevoked key.
    func revokeKey(_ id: Int64, of advertiser: AdvertiserID, at: Timestamp) async throws -> AdvertiserKey?
    /// Every key of the advertiser, revoked ones included, oldest first.
    func keys(of advertiser: AdvertiserID) async throws -> [AdvertiserKey]
    /// How many campaigns and ads the advertiser has (any status): its quotas count these.
    func catalogSize(of advertiser: AdvertiserID) async throws -> (campaigns: Int, ads: Int)

    // MARK: Campaigns and ads

    /// Inserts a campaign; its `id` and `revision` are ignored and assigned by the store.
    func createCampaign(_ campaign: Campaign) async throws -> Campaign
    /// Reads, changes and writes one campaign in a single write transaction (no lost updates),
    /// giving it a new catalog revision. `change` may throw to abort; nothing is then written.
    func updateCampaign(_ id: CampaignID, _ change: @escaping @Sendable (inout Campaign) throws -> Void) async throws -> Campaign
    func campaign(_ id: CampaignID) async throws -> Campaign?
    func campaigns(of advertiser: AdvertiserID) async throws -> [Campaign]

    /// Inserts an ad; its `id` and `revision` are ignored and assigned by the store.
    func createAd(_ ad: Ad) async throws -> Ad
    /// Reads, changes and writes one ad in a single write transaction (see `updateCampaign`).
    func updateAd(_ id: AdID, _ change: @escaping @Sendable (inout Ad) throws -> Void) async throws -> Ad
    func ad(_ id: AdID) async throws -> Ad?
    /// One campaign's ads, oldest first.
    func ads(of campaign: CampaignID) async throws -> [Ad]
    func allAds() async throws -> [Ad]
    /// Ads whose content vector is still to be computed, oldest first.
    func adsPendingEmbedding(limit: Int) async throws -> [Ad]
    /// The campaigns and ads written after catalog revision `revision`, read from one snapshot:
    /// how a serving node sees what other nodes wrote. Revisions are handed out in commit order,
    /// so `next.revision` is a cursor that never skips a write.
    func catalogChanges(after revision: Int64) async throws -> CatalogChanges

    /// Loads a whole generated world in one transaction, with the ids it carries (users' activity
    /// vectors and recent topics too, where the world gives them).
    func importBatch(_ batch: ImportBatch) async throws
    func isEmpty() async throws -> Bool

    // MARK: Users

    func upsertUser(_ user: UserProfile) async throws
    func user(_ id: UserID) async throws -> UserProfile?
    func appendActivity(_ activity: Activity) async throws
    func recentActivity(of user: UserID, limit: Int) async throws -> [Activity]
    /// Activities in the order they were stored, after the one numbered `id`, with their numbers.
    func activities(after id: Int64, limit: Int) async throws -> [(id: Int64, activity: Activity)]
    /// Adds `weight × item` to the user's activity vector, decayed to `at`
    /// (`ActivityVector.adding`), creating the user if unknown; and, in the same transaction,
    /// sets the named cursor to `cursor` if given (so an item is added exactly once).
    /// Adds `topics` to the user's recent topics (`ActivityVector.topics`) in the same way.
    func addToActivityVector(
        of user: UserID, item: [Float]?, topics: [String], weight: Float, at: Timestamp, cursor: (name: String, value: Int64)?
    ) async throws
    /// A cursor's value; 0 if never set.
    func cursor(named name: String) async throws -> Int64
    func setCursor(named name: String, to value: Int64) async throws

    // MARK: Events and billing

    /// Records one event exactly once (keyed by placement key and type) and, for a billed event,
    /// charges its price cut to the campaign's remaining daily and total budget — all in one
    /// durable transaction. A repeated event changes nothing and says so.
    func record(_ event: EventRecord) async throws -> EventOutcome
    func hasEvent(placementKey: String, type: EventType) async throws -> Bool
    /// How many clicks (valid or invalid) the user made since a time — on one campaign, or on
    /// any — counting no further than `limit`, so a bot's long history costs no more to check
    /// than a person's: what invalid-traffic filtering looks at.
    func clickCount(of user: UserID, campaign: CampaignID?, since: Timestamp, upTo limit: Int) async throws -> Int

    // MARK: State the serving path rebuilds at start

    /// Spend per campaign: on `day`, and in total.
    func campaignSpend(day: Int64) async throws -> [CampaignSpend]
    /// All-time counters per ad: the historical rates of the rule-based ranking.
    func adCounters() async throws -> [AdID: DeliveryCounters]

    // MARK: State the serving path loads per user

    /// What serving keeps of one user, read on one connection: the profile, the impressions
    /// since `since` (the frequency-cap windows), impressions ever per campaign and ad (lifetime
    /// caps), and every hide, hidden advertiser and "not relevant", oldest first.
    func userRecord(_ id: UserID, impressionsSince since: Timestamp) async throws -> UserRecord

    // MARK: Reports

    func dailyCounters(campaign: CampaignID) async throws -> [DailyCounters]
    func dailyCounters(ad: AdID) async throws -> [DailyCounters]
    /// What the campaign was charged in each hour (UTC) of `day`: 24 values, for its pacing curve.
    func hourlySpend(campaign: CampaignID, day: Int64) async throws -> [Micros]
}

/// A generated catalog with its own ids, for `importBatch`.
public struct ImportBatch: Sendable {
    public var advertisers: [(Advertiser, keyHash: String)]
    public var campaigns: [Campaign]
    public var ads: [Ad]
    public var users: [UserProfile]
    public var activities: [Activity]
    /// Past events, stored as history: they count in users' caps and hides (`userRecord`),
    /// never in spend or counters (nothing is charged). A repeated one is ignored.
    public var history: [EventRecord]

    public init(
        advertisers: [(Advertiser, keyHash: String)] = [], campaigns: [Campaign] = [], ads: [Ad] = [], users: [UserProfile] = [], activities: [Activity] = [],
        history: [EventRecord] = []
    ) {
        self.advertisers = advertisers
        self.campaigns = campaigns
        self.ads = ads
        self.users = users
        self.activities = activities
        self.history = history
    }
}

/// What `catalogChanges(after:)` found: the rows, and the revision to ask after next time.
/// The serving catalog is its reader, so the ads come compacted (`Ad.compacted()`: content
/// vectors as bytes). SQLite compacts each row as it reads it, so a node loading a million ads
/// never holds all their vectors as floats at once nor keeps the pages they leave behind;
/// PostgreSQL compacts the decoded rows.
public struct CatalogChanges: Sendable {
    public var campaigns: [Campaign]
    public var ads: [Ad]
    public var revision: Int64
    public init(campaigns: [Campaign], ads: [Ad], revision: Int64) {
        self.campaigns = campaigns
        self.ads = ads
        self.revision = revision
    }
}

/// One user event, with what its signed token says.
public struct EventRecord: Sendable, Equatable {
    /// The impression's placement key (`ImpressionToken.placementKey`): one per served ad.
    public var placementKey: String
    public var type: EventType
    public var userID: UserID
    public var adID: AdID
    public var campaignID: CampaignID
    public var decisionID: String
    /// What one such event costs before budgets; zero when the event is not billed.
    public var priceMicros: Micros
    /// An advertiser-reported value (e.g. a conversion's order value); stored, not billed.
    public var valueMicros: Micros?
    public var at: Timestamp
    /// Set for a click found to be invalid traffic: recorded and counted as `invalid_clicks`,
    /// never charged (its `priceMicros` must be 0).
    public var invalidReason: InvalidClickReason?

    public init(
        placementKey: String, type: EventType, userID: UserID, adID: AdID, campaignID: CampaignID, decisionID: String, priceMicros: Micros,
        valueMicros: Micros? = nil, at: Timestamp, invalidReason: InvalidClickReason? = nil
    ) {
        self.placementKey = placementKey
        self.type = type
        self.userID = userID
        self.adID = adID
        self.campaignID = campaignID
        self.decisionID = decisionID
        self.priceMicros = priceMicros
        self.valueMicros = valueMicros
        self.at = at
        self.invalidReason = invalidReason
    }
}

/// What recording one event did: whether it was already recorded (then nothing changed), and
/// what it was charged. Event ingestion returns it as the API's acknowledgement.
public struct EventOutcome: Sendable, Equatable {
    public var duplicate: Bool
    public var chargedMicros: Micros
    public init(duplicate: Bool, chargedMicros: Micros) {
        self.duplicate = duplicate
        self.chargedMicros = chargedMicros
    }
}

public struct CampaignSpend: Sendable, Equatable {
    public var campaignID: CampaignID
    public var todayMicros: Micros
    public var totalMicros: Micros
    public init(campaignID: CampaignID, todayMicros: Micros, totalMicros: Micros) {
        self.campaignID = campaignID
        self.todayMicros = todayMicros
        self.totalMicros = totalMicros
    }
}

/// One user's serving state as the store holds it (`AdStore.userRecord`).
public struct UserRecord: Sendable, Equatable {
    public var profile: UserProfile?
    /// Impressions since the time asked for, oldest first.
    public var recent: [ImpressionRecord]
    public var lifetime: [ImpressionCount]
    public var hides: [HideRecord]
    public init(profile: UserProfile?, recent: [ImpressionRecord] = [], lifetime: [ImpressionCount] = [], hides: [HideRecord] = []) {
        self.profile = profile
        self.recent = recent
        self.lifetime = lifetime
        self.hides = hides
    }
}

public struct ImpressionRecord: Sendable, Equatable {
    public var userID: UserID
    public var campaignID: CampaignID
    public var adID: AdID
    public var at: Timestamp
    public init(userID: UserID, campaignID: CampaignID, adID: AdID, at: Timestamp) {
        self.userID = userID
        self.campaignID = campaignID
        self.adID = adID
        self.at = at
    }
}

/// How many impressions of one ad (of one campaign) a user has had, ever.
public struct ImpressionCount: Sendable, Equatable {
    public var userID: UserID
    public var campaignID: CampaignID
    public var adID: AdID
    public var impressions: Int
    public init(userID: UserID, campaignID: CampaignID, adID: AdID, impressions: Int) {
        self.userID = userID
        self.campaignID = campaignID
        self.adID = adID
        self.impressions = impressions
    }
}

/// A user's negative feedback on an ad: a hide, a hidden advertiser or "not relevant".
public struct HideRecord: Sendable, Equatable {
    public var userID: UserID
    public var adID: AdID
    public var advertiserID: AdvertiserID
    public var type: EventType
    public init(userID: UserID, adID: AdID, advertiserID: AdvertiserID, type: EventType = .hide) {
        self.userID = userID
        self.adID = adID
        self.advertiserID = advertiserID
        self.type = type
    }
}

public struct DailyCounters: Sendable, Equatable {
    public var day: Int64
    public var counters: DeliveryCounters
    public init(day: Int64, counters: DeliveryCounters) {
        self.day = day
        self.counters = counters
    }
}

/// One of an advertiser's API keys. The key itself is shown once, when it is made; the store
/// keeps only its hash.
public struct AdvertiserKey: Sendable, Equatable {
    public var id: Int64
    public var advertiserID: AdvertiserID
    public var createdAt: Timestamp
    public var revokedAt: Timestamp?
    public init(id: Int64, advertiserID: AdvertiserID, createdAt: Timestamp, revokedAt: Timestamp? = nil) {
        self.id = id
        self.advertiserID = advertiserID
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
