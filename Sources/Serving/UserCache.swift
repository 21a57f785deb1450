import Domain
import Storage
import Synchronization

/// What serving needs of what was delivered to one user: recent impressions (windowed frequency
/// caps, fatigue), impressions ever of lifetime-capped campaigns, hidden ads and advertisers,
/// and the content vectors of ads called "not relevant".
public struct UserState: Sendable {
    /// (campaign id, ad id, time in ms) of recent impressions (the longest cap window), oldest first.
    var recent: [(campaign: Int64, ad: Int64, at: Int64)] = []
    /// Impressions ever, per campaign and per ad, of the campaigns with a lifetime cap only.
    var lifetimeCampaigns: [Int64: Int] = [:]
    var lifetimeAds: [Int64: Int] = [:]
    var hiddenAds: Set<Int64> = []
    var hiddenAdvertisers: Set<Int64> = []
    /// Content vectors of the ads the user called "not relevant", newest last, at most
    /// `maxNotRelevant`: ads like them are down-weighted for this user (`Eligibility.relevance`).
    var notRelevant: [[Float]] = []

    /// How many "not relevant" ads are remembered per user.
    static let maxNotRelevant = 16
    /// How long impressions are remembered for frequency caps: the longest cap window.
    static let capMemoryMilliseconds = Int64(Limits.maxCapHours) * Timestamp.millisecondsPerHour

    public init() {}

    /// The state the store's record describes (`record.recent` must start at most
    /// `capMemoryMilliseconds` ago); lifetime counts are kept for lifetime-capped campaigns only.
    init(_ record: UserRecord, snapshot: CatalogSnapshot) {
        recent = record.recent.map { ($0.campaignID.rawValue, $0.adID.rawValue, $0.at.milliseconds) }
        for row in record.lifetime where snapshot.campaignsByID[row.campaignID]?.hasLifetimeCap == true {
            lifetimeCampaigns[row.campaignID.rawValue, default: 0] += row.impressions
            lifetimeAds[row.adID.rawValue, default: 0] += row.impressions
        }
        for hide in record.hides {
            feedback(hide.type, ad: hide.adID.rawValue, advertiser: hide.advertiserID.rawValue, vector: snapshot.adsByID[hide.adID]?.embedding)
        }
    }

    /// Remembers one impression, forgetting those older than the longest cap window.
    mutating func impression(campaign: Int64, ad: Int64, at: Int64, lifetimeCapped: Bool) {
        let horizon = at - Self.capMemoryMilliseconds
        recent.removeAll { $0.at < horizon }
        recent.append((campaign, ad, at))
        if lifetimeCapped {
            lifetimeCampaigns[campaign, default: 0] += 1
            lifetimeAds[ad, default: 0] += 1
        }
    }

    /// Applies one hide, hidden advertiser or "not relevant" (`advertiser` and `vector` from the catalog).
    mutating func feedback(_ type: EventType, ad: Int64, advertiser: Int64?, vector: [Float]?) {
        switch type {
        case .hide: hiddenAds.insert(ad)
        case .hideAdvertiser:
            hiddenAds.insert(ad)
            if let advertiser { hiddenAdvertisers.insert(advertiser) }
        case .notRelevant:
            hiddenAds.insert(ad)
            if let vector, !vector.isEmpty {
                notRelevant.append(vector)
                if notRelevant.count > Self.maxNotRelevant { notRelevant.removeFirst() }
            }
        case .impression, .click, .conversion: break
        }
    }
}

/// Users' serving state in front of the store, which holds the truth (users are too many for
/// one node): each entry is a user's profile and `UserState`, loaded together on a miss
/// (`AdStore.userRecord`) and kept up to date by the events this node records. Remembers
/// unknown users too, so they cost one load.
///
/// Bounded: `capacity` entries over 16 shards (each with its own lock), evicted by CLOCK — an
/// entry read since the hand last passed it gets a second chance — so memory does not grow
/// with the users seen, and a node starts without reading any user. With `maxAge`, an entry
/// older than that is loaded again: what other nodes recorded for the user (impressions under
/// caps, hides) reaches this node within that age.
///
/// A load races the events recorded while it reads: each shard counts the writes to each of
/// its 256 stripes of users, cached or not; a load notes its user's stripe count first and is
/// cached only if no write touched the stripe meanwhile (else it is read again).
public final class UserCache: Sendable {
    public struct Entry: Sendable {
        public var profile: UserProfile?
        var state: UserState
        /// When it was loaded (the serving clock's milliseconds).
        var loadedAt: Int64
        var referenced = false
    }

    private struct Shard {
        var entries: [UserID: Entry] = [:]
        /// The cached ids in insertion slots; `hand` is the next slot CLOCK looks at.
        var ring: [UserID] = []
        var hand = 0
        var writes = [UInt32](repeating: 0, count: UserCache.stripes)
        var evictions = 0

        mutating func insert(_ entry: Entry, for id: UserID, capacity: Int) {
            if entries[id] != nil {
                entries[id] = entry
                return
            }
            if ring.count < capacity {
                ring.append(id)
            } else {
                // Each referenced entry loses its mark once; the loop ends within two turns.
                while entries[ring[hand]]?.referenced == true {
                    entries[ring[hand]]?.referenced = false
                    hand = (hand + 1) % ring.count
                }
                entries[ring[hand]] = nil
                evictions += 1
                ring[hand] = id
                hand = (hand + 1) % ring.count
            }
            entries[id] = entry
        }
    }

    private final class ShardBox: Sendable {
        let state = Mutex(Shard())
    }

    static let shardCount = 16
    static let stripes = 256

    private let shards: [ShardBox]
    /// Entries per shard; 0 caches nothing (every decision reads the store).
    private let shardCapacity: Int
    public let capacity: Int
    /// Milliseconds after which an entry is loaded again; nil: never (one node alone on its store).
    public let maxAge: Int64?

    public init(capacity: Int, maxAge: Int64? = nil) {
        self.capacity = max(0, capacity)
        self.maxAge = maxAge
        shardCapacity = (self.capacity + Self.shardCount - 1) / Self.shardCount
        shards = (0..<Self.shardCount).map { _ in ShardBox() }
    }

    private func place(_ id: UserID) -> (shard: ShardBox, stripe: Int) {
        let hash = UInt(bitPattern: id.hashValue)
        return (shards[Int(hash % UInt(Self.shardCount))], Int((hash / UInt(Self.shardCount)) % UInt(Self.stripes)))
    }

    /// The cached entry, if present and young enough at `now`; marks it recently used.
    public func lookup(_ id: UserID, now: Int64) -> Entry? {
        let (box, _) = place(id)
        return box.state.withLock { shard -> Entry? in
            guard let entry = shard.entries[id] else { return nil }
            if let maxAge, now - entry.loadedAt >= maxAge || now < entry.loadedAt { return nil }
            if !entry.referenced { shard.entries[id]?.referenced = true }
            return entry
        }
    }

    /// The write count of the user's stripe, taken before loading the user from the store.
    public func ticket(for id: UserID) -> UInt32 {
        let (box, stripe) = place(id)
        return box.state.withLock { $0.writes[stripe] }
    }

    /// Caches a loaded entry, unless a write to the user's stripe happened since `ticket`
    /// (the load may have missed it). Returns whether it was cached (or caching is off).
    public func insert(profile: UserProfile?, state: UserState, loadedAt: Int64, for id: UserID, ticket: UInt32) -> Bool {
        guard shardCapacity > 0 else { return true }
        let (box, stripe) = place(id)
        return box.state.withLock { shard in
            guard shard.writes[stripe] == ticket else { return false }
            shard.insert(Entry(profile: profile, state: state, loadedAt: loadedAt), for: id, capacity: shardCapacity)
            return true
        }
    }

    /// Changes a cached user's state (an event this node recorded); counts the write either way.
    public func update(_ id: UserID, _ change: (inout UserState) -> Void) {
        let (box, stripe) = place(id)
        box.state.withLock { shard in
            shard.writes[stripe] &+= 1
            guard var entry = shard.entries[id] else { return }
            change(&entry.state)
            shard.entries[id] = entry
        }
    }

    /// Replaces a cached user's profile (just written to the store); counts the write either way.
    func updateProfile(_ profile: UserProfile?, for id: UserID) {
        let (box, stripe) = place(id)
        box.state.withLock { shard in
            shard.writes[stripe] &+= 1
            shard.entries[id]?.profile = profile
        }
    }

    /// Applies one durably recorded event to its user, if cached.
    func apply(_ event: EventRecord, snapshot: CatalogSnapshot) {
        switch event.type {
        case .impression:
            let lifetimeCapped = snapshot.campaignsByID[event.campaignID]?.hasLifetimeCap == true
            update(event.userID) {
                $0.impression(campaign: event.campaignID.rawValue, ad: event.adID.rawValue, at: event.at.milliseconds, lifetimeCapped: lifetimeCapped)
            }
        case .hide, .hideAdvertiser, .notRelevant:
            // Every campaign and ad the catalog knows, active or not, as a load would see them.
            let advertiser = snapshot.campaignsByID[event.campaignID]?.advertiserID.rawValue
            let vector = snapshot.adsByID[event.adID]?.embedding
            update(event.userID) { $0.feedback(event.type, ad: event.adID.rawValue, advertiser: advertiser, vector: vector) }
        case .click, .conversion:
            break
        }
    }

    /// Cached users and evictions so far, over all shards.
    public var counts: (entries: Int, evictions: Int) {
        shards.reduce(into: (0, 0)) { total, box in
            box.state.withLock { shard in
                total.0 += shard.entries.count
                total.1 += shard.evictions
            }
        }
    }
}
