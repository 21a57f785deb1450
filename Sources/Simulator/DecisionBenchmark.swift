import Domain
import Histogram
import Serving
import Storage

/// `adserve bench`: the decision path timed in-process against a generated world. Each timed
/// request is one full decision: profile (store, then cache), eligibility, ranking, ad load
/// and signed tokens. No events are sent, so rates stay at their priors and no cap or budget
/// binds.
public struct DecisionBenchmark: Sendable {
    public var size: World.Size
    public var requests: Int
    public var organicCount: Int
    public var seed: UInt64

    public init(size: World.Size, requests: Int, organicCount: Int = 20, seed: UInt64 = 1) {
        self.size = size
        self.requests = requests
        self.organicCount = organicCount
        self.seed = seed
    }

    public struct Result: Sendable, Codable {
        public var ads: Int
        public var users: Int
        public var requests: Int
        public var p50_ms: Double
        public var p99_ms: Double
        public var mean_ms: Double
        public var max_ms: Double
        public var decisions_per_s: Double
        public var ads_per_decision: Double
        public var active_campaigns: Int
    }

    /// Generates the world into `store` (which must be empty) and times `requests` decisions of
    /// random users on random devices and hours, one after the other.
    public func run(store: some AdStore) async throws -> Result {
        let clock = ManualClock()
        let world = World(size: size, seed: seed, start: clock.now())
        try await store.importBatch(world.batch)
        let serving = try await DecisionService.open(store: store, clock: clock, decisionIDs: DecisionIDGenerator(prefix: seed))

        var rng = SplitMix64(seed: seed ^ 0x5EED)
        // Latencies in nanoseconds, to 3 significant digits.
        var latencies = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        var served = 0
        let begin = ContinuousClock.now
        for _ in 0..<requests {
            let user = world.userIDs[Int.random(in: 0..<world.userIDs.count, using: &rng)]
            let context = FeedContext(device: World.devices.randomElement(using: &rng), hour: Int.random(in: 0...23, using: &rng))
            let started = ContinuousClock.now
            let decision = try await serving.decide(userID: user, context: context, organicCount: organicCount)
            _ = latencies.record(UInt64(max(0, (ContinuousClock.now - started).inSeconds * 1e9)))
            served += decision.placements.count
        }
        let seconds = (ContinuousClock.now - begin).inSeconds
        func milliseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e6 }
        return Result(
            ads: size.ads, users: size.users, requests: requests, p50_ms: milliseconds(latencies.valueAtPercentile(50)),
            p99_ms: milliseconds(latencies.valueAtPercentile(99)), mean_ms: latencies.mean / 1e6, max_ms: milliseconds(latencies.max),
            decisions_per_s: Double(requests) / seconds, ads_per_decision: Double(served) / Double(requests),
            active_campaigns: serving.catalog.snapshot.activeCampaignCount)
    }
}
