import Domain

/// A retrieval model in front of the ranker: an index of ad vectors searched with the user's
/// vector. The decision path asks it for the user's top K eligible ads (and a small pool of
/// fresh ones) instead of scoring every eligible ad. Ads are named by `RetrievalKey`
/// (`CatalogSnapshot.ActiveAd.key`), stable across snapshots.
public protocol CandidateRetriever: Sendable {
    /// Brings the index up to `snapshot`: new and changed ads in, ads no longer active out.
    /// Called when a snapshot is published, off the request path.
    func sync(_ snapshot: CatalogSnapshot, at now: Timestamp)

    /// Appends to `keys` (emptied first; `RetrievalKey` raw values) up to `k` ads, best first for this user, among those
    /// `admits` accepts, and after them the fresh ads `admits` accepts (a fresh ad the search
    /// found among the best is moved after them, so the fresh ads come last, each once); and to
    /// `scores` (emptied first), for each key, the user's affinity with it as the search
    /// measured it (on the scale of `affinities`), NaN where none did (a fresh ad it did not
    /// find). Returns how many of `keys` come before the fresh ads, or nil when it cannot
    /// retrieve (no model yet): the decision path then scores every eligible ad.
    func retrieve(
        user: UserProfile?, context: FeedContext, k: Int, now: Timestamp, admits: RetrievalFilter, into keys: inout [Int64], scores: inout [Float]
    ) -> Int?

    /// Writes this user's affinity with each of `keys` into `affinities`: the retrieval model's
    /// score, higher for a closer ad, on one scale for the whole call; NaN for an ad it holds no
    /// vector of. Returns false when it has no scores (no model yet, or no model that scores):
    /// pre-ranking then goes by the ads' value with no user alone.
    func affinities(user: UserProfile?, context: FeedContext, keys: UnsafeBufferPointer<Int64>, into affinities: UnsafeMutableBufferPointer<Float>) -> Bool
}

extension CandidateRetriever {
    /// A retriever that finds ads without scoring them for the user.
    public func affinities(user: UserProfile?, context: FeedContext, keys: UnsafeBufferPointer<Int64>, into affinities: UnsafeMutableBufferPointer<Float>) -> Bool {
        false
    }
}

/// The decision's eligibility as the retriever asks it: a batch of keys at a time (writing
/// `admitted[j]` for `keys[j]`), so that the misses judging them takes overlap.
public typealias RetrievalFilter = (_ keys: UnsafeBufferPointer<Int64>, _ admitted: UnsafeMutableBufferPointer<Bool>) -> Void

/// How a retriever names an ad: the ad's state slot in the low half, its campaign's state slot
/// in the high half (both stable while they exist). The search's filter judges the campaign from
/// the key alone, once per campaign and request, without looking the ad up.
public struct RetrievalKey: Hashable, Comparable, Sendable {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    init(adSlot: Int32, campaignSlot: Int32) { rawValue = Int64(campaignSlot) << 32 | Int64(UInt32(bitPattern: adSlot)) }
    public var adSlot: Int64 { rawValue & 0xFFFF_FFFF }
    var campaignSlot: Int { Int(rawValue >> 32) }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// How often the candidate stage hands the ranker what the ranker would have chosen from every
/// eligible ad: on a sample of decisions the exhaustive ranking runs too (off the answer: it only
/// counts), and the winners it places are looked up among the retrieved candidates.
public final class CandidateAudit: Sendable {
    /// Share of decisions audited, 0…1.
    public let sampleRate: Double
    public struct Counts: Sendable, Equatable {
        public var decisions = 0
        /// Ads the exhaustive ranking placed, and how many of them were among the candidates.
        public var chosen = 0
        public var found = 0
        /// found ÷ chosen: the stage's recall of the full ranker's choices; nil before any.
        public var recall: Double? { chosen > 0 ? Double(found) / Double(chosen) : nil }
        /// Expected value (micros) of the page the exhaustive ranking would have placed, and of
        /// the page placed from the candidates, summed over audited decisions.
        public var fullValue = 0.0
        public var stagedValue = 0.0
        /// stagedValue ÷ fullValue: how much of the full ranking's value the stage keeps.
        public var valueShare: Double? { fullValue > 0 ? stagedValue / fullValue : nil }
        /// Expected revenue (micros per impression: each winner's price times its billed events
        /// per impression) of the page the exhaustive ranking would have placed, and of the
        /// page placed from the candidates, each priced by its own auction, summed over audited
        /// decisions. Under second price a stage can lose revenue its value share does not show:
        /// the last winner pays what the best ad left out is worth, and that ad may be one the
        /// stage cut.
        public var fullRevenue = 0.0
        public var stagedRevenue = 0.0
        /// stagedRevenue ÷ fullRevenue.
        public var revenueShare: Double? { fullRevenue > 0 ? stagedRevenue / fullRevenue : nil }
    }
    private let counts = Mutex(Counts())

    public init(sampleRate: Double) { self.sampleRate = min(max(sampleRate, 0), 1) }

    public var current: Counts { counts.withLock { $0 } }

    /// Deterministic per decision, so a seeded run audits the same decisions.
    func samples(_ decisionID: String) -> Bool {
        sampleRate > 0 && Double(StableHash.fnv1a(decisionID) % 1_000_000) < sampleRate * 1_000_000
    }

    func record(chosen: Int, found: Int, fullValue: Double, stagedValue: Double, fullRevenue: Double, stagedRevenue: Double) {
        counts.withLock {
            $0.decisions += 1
            $0.chosen += chosen
            $0.found += found
            $0.fullValue += fullValue
            $0.stagedValue += stagedValue
            $0.fullRevenue += fullRevenue
            $0.stagedRevenue += stagedRevenue
        }
    }
}

import Synchronization
