import Domain
import Foundation
import Serving
import Storage

/// `adserve user-bench`: what a serving node costs when the users are many. It fills a store
/// once (a store already filled with the same users is reused) with a generated catalog and
/// `users` users, each with `history` past impressions inside the cap window and one in 50
/// with a hide — streamed in chunks, so the generator holds none of them. Then it opens a node
/// over the store, timing the start, and times decisions one after the other:
/// - **cold**: `coldDecisions` users never seen before, each loaded from the store (profile,
///   impressions, lifetime counts, hides) on its decision; more users than the cache holds
///   shows that memory stays bounded;
/// - **warm**: `warmDecisions` decisions of random users among the last ones the cold pass
///   cached.
/// Resident memory is read after the start and after each pass.
public struct UserScaleBenchmark: Sendable {
    public var users: Int
    public var ads: Int
    public var history: Int
    public var userCache: Int
    public var coldDecisions: Int
    public var warmDecisions: Int
    public var seed: UInt64
    public var progress: @Sendable (String) -> Void = { _ in }

    public init(users: Int, ads: Int, history: Int = 2, userCache: Int = ServingConfiguration().userCacheCapacity, coldDecisions: Int, warmDecisions: Int, seed: UInt64 = 1) {
        self.users = users
        self.ads = ads
        self.history = history
        self.userCache = userCache
        self.coldDecisions = coldDecisions
        self.warmDecisions = warmDecisions
        self.seed = seed
    }

    public struct Pass: Sendable, Codable {
        public var requests: Int
        public var p50_ms: Double
        public var p99_ms: Double
        public var mean_ms: Double
        public var decisions_per_s: Double
        public var ads_per_decision: Double
    }

    public struct Result: Sendable, Codable {
        public var users: Int
        public var ads: Int
        public var history_per_user: Int
        public var user_cache: Int
        /// Seconds filling the store; nil when a filled store was reused.
        public var fill_s: Double?
        /// Seconds to open the node over the store (catalog, spend, counters; no user).
        public var start_s: Double
        public var cold: Pass
        public var warm: Pass
        public var rss_mb_after_start: Double
        public var rss_mb_after_cold: Double
        public var rss_mb_after_warm: Double
        public var cached_users: Int
        public var evictions: Int
    }

    /// The benchmark's user ids: fixed width, so they sort (and are stored) in order.
    static func userID(_ index: Int) -> UserID { UserID(trusted: "s" + String(repeating: "0", count: max(0, 9 - String(index).count)) + String(index)) }

    /// The moment the benchmark serves at; the history lies in the week before it.
    static let now = Timestamp(milliseconds: 1_780_315_200_000)

    public func run(store: some AdStore) async throws -> Result {
        let clock = ManualClock(Self.now)
        let world = World(size: World.Size(users: 1, ads: ads), seed: seed, start: Self.now)
        var fill: Double?
        if try await store.user(Self.userID(users - 1)) == nil {
            guard try await store.isEmpty() else { throw AdServeError.invalid("store", "holds something other than this benchmark's users: give an empty store") }
            let started = ContinuousClock.now
            try await self.fill(store, world: world)
            fill = (ContinuousClock.now - started).inSeconds
        } else {
            progress("reusing the filled store")
        }

        progress("opening a node over the store")
        var configuration = ServingConfiguration()
        configuration.userCacheCapacity = userCache
        let opened = ContinuousClock.now
        let serving = try await DecisionService.open(store: store, clock: clock, configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: seed))
        let start = (ContinuousClock.now - opened).inSeconds
        let afterStart = ResidentMemory.read().current

        // Distinct users for the cold pass: i ↦ (a·i + b) mod users visits each once for a coprime to users.
        var rng = SplitMix64(seed: seed ^ 0xC01D)
        var a = Int.random(in: 1..<max(2, users), using: &rng) | 1
        while gcd(a, users) != 1 { a += 2 }
        let b = Int.random(in: 0..<users, using: &rng)
        let coldCount = min(coldDecisions, users)
        func coldUser(_ i: Int) -> Int { Int((UInt64(a) &* UInt64(i) &+ UInt64(b)) % UInt64(users)) }
        func context() -> FeedContext { FeedContext(device: World.devices.randomElement(using: &rng), hour: Int.random(in: 0...23, using: &rng)) }

        progress("cold: \(coldCount) users never seen, each loaded from the store")
        let cold = try await time(serving, count: coldCount) { i in (Self.userID(coldUser(i)), context()) }
        let afterCold = ResidentMemory.read().current
        // The last users the cold pass loaded are still cached (CLOCK evicts the oldest unread first).
        let recent = max(1, min(coldCount, userCache / 2))
        progress("warm: \(warmDecisions) decisions of the last \(recent) users loaded")
        let warm = try await time(serving, count: warmDecisions) { _ in
            (Self.userID(coldUser(coldCount - 1 - Int.random(in: 0..<recent, using: &rng))), context())
        }
        let afterWarm = ResidentMemory.read().current
        let counts = serving.users.counts
        return Result(
            users: users, ads: ads, history_per_user: history, user_cache: userCache, fill_s: fill, start_s: start, cold: cold, warm: warm,
            rss_mb_after_start: afterStart, rss_mb_after_cold: afterCold, rss_mb_after_warm: afterWarm, cached_users: counts.entries,
            evictions: counts.evictions)
    }

    private func time(_ serving: DecisionService, count: Int, next: (Int) -> (UserID, FeedContext)) async throws -> Pass {
        let timed = try await TimedDecisions.run(serving, count: count, organicCount: 20, next: next)
        return Pass(
            requests: count, p50_ms: timed.milliseconds(atPercentile: 50), p99_ms: timed.milliseconds(atPercentile: 99),
            mean_ms: timed.latencies.mean / 1e6, decisions_per_s: timed.decisionsPerSecond, ads_per_decision: timed.adsPerDecision)
    }

    /// The catalog, then the users and their history in chunks of 50,000 users (one transaction each).
    private func fill(_ store: some AdStore, world: World) async throws {
        var catalog = world.batch
        catalog.users = []
        catalog.activities = []
        try await store.importBatch(catalog)
        let ads = world.batch.ads.filter { ad in world.batch.campaigns.first { $0.id == ad.campaignID }?.startAt == nil }
        guard !ads.isEmpty else { throw AdServeError.invalid("ads", "the generated catalog has no ad to build a history from") }
        let interests = World.topics.map(\.interest)
        var rng = SplitMix64(seed: seed ^ 0xF111)
        let week = 6 * Timestamp.millisecondsPerDay
        let chunk = 50_000
        for first in stride(from: 0, to: users, by: chunk) {
            var batch = ImportBatch()
            for u in first..<min(users, first + chunk) {
                let id = Self.userID(u)
                let country = World.countries[Int.random(in: 0..<World.countries.count, using: &rng)]
                batch.users.append(
                    UserProfile(
                        id: id, age: Int.random(in: 13...70, using: &rng), gender: Bool.random(using: &rng) ? "female" : "male", country: country,
                        interests: [interests[Int.random(in: 0..<interests.count, using: &rng)]]))
                // History in user order, so the events' indexes grow at their ends.
                let at = Self.now.milliseconds - week + Int64(u) * week / Int64(users)
                for k in 0..<history {
                    let ad = ads[Int.random(in: 0..<ads.count, using: &rng)]
                    batch.history.append(
                        EventRecord(
                            placementKey: "h\(id.rawValue)/\(k)", type: .impression, userID: id, adID: ad.id, campaignID: ad.campaignID,
                            decisionID: "h\(id.rawValue)", priceMicros: 0, at: Timestamp(milliseconds: at + Int64(k))))
                    if k == 0, u % 50 == 0 {
                        batch.history.append(
                            EventRecord(
                                placementKey: "h\(id.rawValue)/\(k)", type: .hide, userID: id, adID: ad.id, campaignID: ad.campaignID,
                                decisionID: "h\(id.rawValue)", priceMicros: 0, at: Timestamp(milliseconds: at + Int64(k) + 1)))
                    }
                }
            }
            try await store.importBatch(batch)
            progress("stored \(min(users, first + chunk)) of \(users) users")
        }
    }

    private func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
}
