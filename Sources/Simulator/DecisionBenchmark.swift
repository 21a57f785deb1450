import CMalloc
import Domain
import Foundation
import Histogram
import Learning
import ModelServing
import Models
import Serving
import Storage
import Synchronization
import Training

/// `adserve bench`: the decision path timed in-process against a generated world. Each timed
/// request is one full decision: profile (store, then cache), eligibility, candidates, ranking,
/// ad load and signed tokens. No events are sent while timing, so rates stay where they were,
/// and no cap or budget binds.
///
/// The world carries content and activity vectors: each of the world's latent dimensions gets
/// a random direction of the 384-float text space; an ad's content vector is its latent mix of
/// those directions plus noise, a user's activity vector likewise (synthetic: encoding a
/// million captions would take hours and measure the encoder, not the decision path).
///
/// `ml` first trains what it serves: `trainingDecisions` decisions of uniformly random ads,
/// logged through the serve logger, with clicks and conversions drawn from the world's
/// behaviour model; a click model and a conversion model (FTRL) and the two-tower candidate
/// model are trained on that log, and the retriever indexes every ad before timing starts.
public struct DecisionBenchmark: Sendable {
    public enum RankerChoice: String, Sendable, CaseIterable {
        case rule, ml
    }

    public var size: World.Size
    public var requests: Int
    public var organicCount: Int
    public var seed: UInt64
    public var ranker: RankerChoice
    /// K of the candidate stage with `ml`; 0 scores every eligible ad.
    public var candidates: Int
    public var trainingDecisions: Int
    public var buildThreads: Int
    /// Told each phase as it starts (`adserve bench` writes them to stderr).
    public var progress: @Sendable (String) -> Void = { _ in }
    /// With `ml` and a candidate stage: decisions audited after timing (not timed), each ranked
    /// over every eligible ad too, to measure how many of the full ranker's choices the
    /// candidate stage found.
    public var auditDecisions: Int
    /// With `ml` and a candidate stage: ads of the value order added to the retrieved ones, and
    /// of each objective's order after them (`ServingConfiguration.objectivePool`).
    public var valuePool: Int
    public var objectivePool = ServingConfiguration().objectivePool
    /// How many of each of the user's interests' own order (`ServingConfiguration.interestPool`).
    public var interestPool = ServingConfiguration().interestPool
    /// The index search's effort (`TwoTowerRetriever.Settings.ef`; the search uses `max(ef, K)`).
    public var searchEffort = TwoTowerRetriever.Settings().ef
    /// How many candidates the learned ranker scores (`ServingConfiguration.preRankCount`; 0: all).
    public var preRank = ServingConfiguration().preRankCount
    /// Whether pre-ranking weighs the user's affinity (`ServingConfiguration.preRankAffinity`).
    public var preRankAffinity = ServingConfiguration().preRankAffinity
    /// Share of slots that explore young ads (`ExplorationPolicy`); 0: off, the library default.
    public var exploreShare = 0.0
    /// Share of decisions that tally every campaign's loss reason (`ServingConfiguration.lossSampleRate`).
    public var lossSampleRate = ServingConfiguration().lossSampleRate
    /// Times the same `requests` are timed, one round after another in this process; the
    /// headline figures are the median round's (by decisions/s; of an even number of rounds, the
    /// slower middle one), and every round is reported. Round 1 also loads the users into the
    /// user cache and fills the ranker's ad-part cache, which later rounds find full. On
    /// a shared machine one round can run a third slower than the next, so comparing two builds
    /// needs several.
    public var rounds = 1

    public init(
        size: World.Size, requests: Int, organicCount: Int = 20, seed: UInt64 = 1, ranker: RankerChoice = .rule, candidates: Int = ServingConfiguration().candidateCount,
        trainingDecisions: Int = 20_000, buildThreads: Int = 2, auditDecisions: Int = 100, valuePool: Int = ServingConfiguration().valuePool
    ) {
        self.size = size
        self.requests = requests
        self.organicCount = organicCount
        self.seed = seed
        self.ranker = ranker
        self.candidates = candidates
        self.trainingDecisions = trainingDecisions
        self.buildThreads = buildThreads
        self.auditDecisions = auditDecisions
        self.valuePool = valuePool
    }

    public struct Result: Sendable, Codable {
        public var ranker: String
        public var candidates: Int
        public var value_pool: Int
        public var objective_pool: Int
        public var interest_pool: Int
        /// With `ml` and a candidate stage: how many candidates the learned ranker scored at most (0: all).
        public var pre_rank: Int
        /// ... and whether pre-ranking weighed the user's two-tower affinity.
        public var pre_rank_affinity: Bool
        /// With `ml` and a candidate stage: the index search's effort (ef) in use, `max(ef, K)`.
        public var search_effort: Int
        /// With `ml` and a candidate stage: seconds the value order (with its objective and
        /// interest orders) took to build.
        public var value_order_s: Double?
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
        /// Resident memory after timing, and its peak over the run (world generation and
        /// training included). Freed memory is returned to the system before timing
        /// (`ResidentMemory.returnFreed`), so `rss_mb` is mostly what serving holds (with the
        /// binary, the runtime, the store's page cache and the request list), not the generated
        /// world the harness dropped.
        public var rss_mb: Double
        public var peak_rss_mb: Double
        /// What the allocator had handed out and not had back after timing: the live heap,
        /// without the binary, the stacks, or freed pages the allocator keeps.
        public var heap_mb: Double
        /// With `ml`: seconds spent training and building the candidate index, the index's size.
        public var training_s: Double?
        public var index_build_s: Double?
        public var index_mb: Double?
        public var training_clicks: Int?
        /// With a candidate stage: the share of the ads the full ranker placed in the audited
        /// decisions that were among the candidates (`CandidateAudit`).
        public var candidate_recall: Double?
        /// ... and the share of the full ranking's expected value the staged pages kept.
        public var candidate_value_share: Double?
        /// ... and the share of its expected revenue, each page priced by its own auction
        /// (`CandidateAudit.Counts.revenueShare`).
        public var candidate_revenue_share: Double?
        public var audited_decisions: Int?
        /// With several rounds: each round's p50, p99 and decisions/s, in the order run.
        public var rounds: [Round]?
    }

    public struct Round: Sendable, Codable {
        public var p50_ms: Double
        public var p99_ms: Double
        public var decisions_per_s: Double
    }

    /// The candidate stage's retriever with `ml`: its index built on `buildThreads`, searched at `searchEffort`.
    var retrieverSettings: TwoTowerRetriever.Settings {
        var settings = TwoTowerRetriever.Settings()
        settings.buildThreads = buildThreads
        settings.ef = searchEffort
        return settings
    }

    /// Generates the world into `store` (which must be empty), trains what `ml` serves, and
    /// times `requests` decisions of random users on random devices and hours, one after the other.
    public func run(store: some AdStore) async throws -> Result {
        let clock = ManualClock()
        let (userIDs, trained) = try await prepare(store: store, clock: clock)
        var training: (seconds: Double, clicks: Int)?
        var indexBuild: (seconds: Double, megabytes: Double)?
        let serving: DecisionService
        // What both rankers are served with; `ml` adds its candidate stage's settings.
        var configuration = ServingConfiguration()
        configuration.exploration.share = exploreShare
        configuration.lossSampleRate = lossSampleRate
        // `prepare` trains exactly when the ranker is `ml`.
        switch trained {
        case nil:
            serving = try await DecisionService.open(store: store, clock: clock, configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: seed))
        case let (models, seconds)?:
            training = (seconds, models.clicks)
            let retriever = candidates > 0 ? TwoTowerRetriever(settings: retrieverSettings) : nil
            configuration.candidateCount = max(1, candidates)
            configuration.valuePool = valuePool
            configuration.objectivePool = objectivePool
            configuration.interestPool = interestPool
            configuration.preRankCount = preRank
            configuration.preRankAffinity = preRankAffinity
            serving = try await DecisionService.open(
                store: store, clock: clock, configuration: configuration, ranker: LearnedRanker(click: models.click, conversion: models.conversion),
                decisionIDs: DecisionIDGenerator(prefix: seed), retriever: retriever)
            if let retriever {
                progress("building the candidate index")
                let building = ContinuousClock.now
                retriever.install(models.twoTower, snapshot: serving.catalog.snapshot)
                indexBuild = ((ContinuousClock.now - building).inSeconds, Double(retriever.indexMemoryBytes) / 1_048_576)
            }
        }

        ResidentMemory.returnFreed()
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        func request() -> (UserID, FeedContext) {
            let user = userIDs[Int.random(in: 0..<userIDs.count, using: &rng)]
            return (user, FeedContext(device: World.devices.randomElement(using: &rng), hour: Int.random(in: 0...23, using: &rng)))
        }
        let stream = (0..<requests).map { _ in request() }
        var timings: [TimedDecisions] = []
        for round in 1...max(1, rounds) {
            progress("timing \(requests) decisions" + (rounds > 1 ? " (round \(round) of \(rounds))" : ""))
            timings.append(try await TimedDecisions.run(serving, count: requests, organicCount: organicCount) { stream[$0] })
        }
        // The median round; of an even number, the slower of the two middle ones.
        let timed = timings.sorted { $0.decisionsPerSecond < $1.decisionsPerSecond }[(timings.count - 1) / 2]
        let memory = ResidentMemory.read()
        let heap = ResidentMemory.heapInUse()
        var audit: CandidateAudit.Counts?
        if let retriever = serving.retriever, auditDecisions > 0 {
            var auditing = serving.configuration
            auditing.candidateAuditRate = 1
            let audited = serving.variant(
                ranker: serving.ranker, configuration: auditing, decisionIDs: DecisionIDGenerator(prefix: ~seed), retriever: retriever)
            for _ in 0..<auditDecisions {
                let (user, context) = request()
                _ = try await audited.decide(userID: user, context: context, organicCount: organicCount)
            }
            audit = audited.candidateAudit?.current
        }
        return Result(
            ranker: ranker.rawValue, candidates: ranker == .ml ? candidates : 0, value_pool: ranker == .ml && candidates > 0 ? valuePool : 0,
            objective_pool: ranker == .ml && candidates > 0 ? objectivePool : 0,
            interest_pool: ranker == .ml && candidates > 0 ? interestPool : 0, pre_rank: ranker == .ml && candidates > 0 ? preRank : 0,
            pre_rank_affinity: ranker == .ml && candidates > 0 && preRank > 0 && preRankAffinity,
            search_effort: ranker == .ml && candidates > 0 ? retrieverSettings.effort(k: candidates) : 0, value_order_s: serving.valueOrderBuildSeconds,
            ads: size.ads, users: size.users, requests: requests,
            p50_ms: timed.round.p50_ms, p99_ms: timed.round.p99_ms,
            mean_ms: timed.latencies.mean / 1e6, max_ms: Double(timed.latencies.max) / 1e6, decisions_per_s: timed.round.decisions_per_s,
            ads_per_decision: timed.adsPerDecision, active_campaigns: serving.catalog.snapshot.activeCampaignCount,
            rss_mb: memory.current, peak_rss_mb: memory.peak, heap_mb: heap, training_s: training?.seconds, index_build_s: indexBuild?.seconds,
            index_mb: indexBuild?.megabytes, training_clicks: training?.clicks, candidate_recall: audit?.recall,
            candidate_value_share: audit?.valueShare, candidate_revenue_share: audit?.revenueShare, audited_decisions: audit?.decisions,
            rounds: timings.count > 1 ? timings.map(\.round) : nil)
    }

    typealias Models = (click: ModelSlot, conversion: ModelSlot, twoTower: TwoTowerModel, clicks: Int)

    /// Generates the world into `store` and, with `ml`, trains what it serves (and how many
    /// seconds that took). The generated world — its import batch with every vector, its
    /// latent factors, its profiles — is the harness's, not the server's: it is gone when this
    /// returns, so the resident memory measured after timing is the serving path's own. The
    /// requests need only the users' ids.
    private func prepare(store: some AdStore, clock: ManualClock) async throws -> (userIDs: [UserID], trained: (models: Models, seconds: Double)?) {
        progress("generating and storing a world of \(size.ads) ads and \(size.users) users")
        let world = World(size: size, seed: seed, start: clock.now())
        try await store.importBatch(Self.batch(of: world, seed: seed))
        guard ranker == .ml else { return (world.userIDs, nil) }
        progress("training what ml serves on \(trainingDecisions) random decisions")
        let started = ContinuousClock.now
        let models = try await train(world: world, store: store, clock: clock)
        return (world.userIDs, (models, (ContinuousClock.now - started).inSeconds))
    }

    /// The world's import batch with synthetic content and activity vectors and recent topics.
    private static func batch(of world: World, seed: UInt64) -> ImportBatch {
        var batch = world.batch
        SyntheticVectors.add(to: &batch, world: world, seed: seed)
        SyntheticVectors.addRecentTopics(to: &batch, seed: seed)
        return batch
    }

    /// What `ml` serves, trained on a log of uniformly random decisions with clicks and
    /// conversions drawn from the world's behaviour.
    private func train(world: World, store: some AdStore, clock: ManualClock) async throws -> Models {
        var configuration = ServingConfiguration()
        configuration.policy = .uniformRandom(seed: seed)
        configuration.userCacheCapacity = 0
        let explorer = try await DecisionService.open(store: store, clock: clock, configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: ~seed))
        let log = LogBuffer()
        explorer.observers.add(ServeLogger { log.append($0) })
        let behaviour = Behaviour()
        var rng = SplitMix64(seed: seed ^ 0x7EA1)
        for _ in 0..<trainingDecisions {
            clock.advance(milliseconds: 1_000)
            let u = Int.random(in: 0..<world.userIDs.count, using: &rng)
            let hour = Int.random(in: 0...23, using: &rng)
            let decision = try await explorer.decide(
                userID: world.userIDs[u], context: FeedContext(device: world.userDevice[u], hour: hour), organicCount: organicCount)
            for placement in decision.placements {
                let ad = Int(placement.candidate.adID.rawValue) - 1
                let affinity = world.affinity(user: u, ad: ad)
                let p = behaviour.clickProbability(affinity: affinity, quality: world.adQuality[ad], afterPost: placement.afterPost, seenBefore: 0, hour: hour)
                guard Double.random(in: 0..<1, using: &rng) < p else { continue }
                let key = decision.placementKey(placement)
                log.append(ServeLogLine(.click, impressionId: key, at: clock.now().adding(milliseconds: 500)))
                let rate = behaviour.conversionProbability(advertiserRate: world.advertiserConversionRate[world.adAdvertiser[ad]], affinity: affinity)
                if Double.random(in: 0..<1, using: &rng) < rate {
                    log.append(ServeLogLine(.conversion, impressionId: key, at: clock.now().adding(milliseconds: 900)))
                }
            }
        }
        // Close every attribution window.
        clock.advance(milliseconds: 8 * Timestamp.millisecondsPerDay)
        let serveLog = ServeLog(lines: log.lines.sorted { $0.timeMs < $1.timeMs })
        let windows = AttributionWindows()
        func model(_ target: PredictionTarget) throws -> ModelSlot {
            let examples = serveLog.joined(target: target, windows: windows, asOf: clock.now()).examples
            let cut = examples.count * 9 / 10
            guard cut > 0, cut < examples.count else { return ModelSlot() }
            var training = TrainingConfiguration()
            training.calibrationWindowMilliseconds = Int64(trainingDecisions / 10) * 1_000
            let result = try Trainer(configuration: training).train(
                Array(examples[..<cut]), target: target, heldOut: Array(examples[cut...]), heldOutName: "bench", now: clock.now())
            return ModelSlot(result.predictor)
        }
        let clickExamples = serveLog.joined(target: .click, windows: windows, asOf: clock.now()).examples
        var twoTower = TwoTowerModel()
        let clicks = CandidateRecall.clicks(clickExamples, model: twoTower)
        twoTower.train(clicks)
        return (try model(.click), try model(.conversion), twoTower, clicks.count)
    }
}

/// Serve-log lines kept in memory.
final class LogBuffer: Sendable {
    private let stored = Mutex<[ServeLogLine]>([])
    func append(_ line: ServeLogLine) { stored.withLock { $0.append(line) } }
    var lines: [ServeLogLine] { stored.withLock { $0 } }
}

/// Decisions timed one after the other, each from its request to its answer.
struct TimedDecisions {
    /// Latencies in nanoseconds, to 3 significant digits.
    var latencies = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var count = 0
    var adsPlaced = 0
    var seconds = 0.0

    /// Times `count` decisions of the users and contexts `next` gives for each index.
    static func run(
        _ serving: DecisionService, count: Int, organicCount: Int, next: (Int) -> (UserID, FeedContext)
    ) async throws -> TimedDecisions {
        var timed = TimedDecisions(count: count)
        let begin = ContinuousClock.now
        for i in 0..<count {
            let (user, context) = next(i)
            let started = ContinuousClock.now
            let decision = try await serving.decide(userID: user, context: context, organicCount: organicCount)
            _ = timed.latencies.record(UInt64(max(0, (ContinuousClock.now - started).inSeconds * 1e9)))
            timed.adsPlaced += decision.placements.count
        }
        timed.seconds = (ContinuousClock.now - begin).inSeconds
        return timed
    }

    func milliseconds(atPercentile percentile: Double) -> Double { Double(latencies.valueAtPercentile(percentile)) / 1e6 }
    var decisionsPerSecond: Double { Double(count) / max(seconds, 1e-9) }
    var adsPerDecision: Double { Double(adsPlaced) / Double(max(1, count)) }
    /// The figures a round reports.
    var round: DecisionBenchmark.Round {
        DecisionBenchmark.Round(p50_ms: milliseconds(atPercentile: 50), p99_ms: milliseconds(atPercentile: 99), decisions_per_s: decisionsPerSecond)
    }
}

/// This process's resident memory from /proc/self/status (Linux), in megabytes; zeros elsewhere.
enum ResidentMemory {
    static func read() -> (current: Double, peak: Double) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kilobytes / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Megabytes the allocator has handed out and not had back (glibc's `mallinfo2`).
    static func heapInUse() -> Double { Double(cmalloc_bytes_in_use()) / 1_048_576 }

    /// Returns the pages of freed memory to the system (`malloc_trim`): after a setup that
    /// allocated and dropped gigabytes, glibc keeps them resident otherwise.
    static func returnFreed() { _ = cmalloc_trim() }
}

/// Synthetic content and activity vectors for a generated world (the benchmark's, and tests').
public enum SyntheticVectors {
    /// Content vectors for the ads and activity vectors for the users of `world`'s batch: one
    /// random unit direction per latent dimension, mixed by the latent vector, plus noise.
    public static func add(to batch: inout ImportBatch, world: World, seed: UInt64) {
        let width = Limits.embeddingDimensions
        let k = world.dimensions
        var rng = SplitMix64(seed: seed ^ 0xC0_17E7)
        func gaussian() -> Float { Float(rng.gaussian()) }
        let directions = (0..<k).map { _ in VectorMath.unitLength((0..<width).map { _ in gaussian() }) }
        func vector(_ latent: ArraySlice<Float>, noise: Float) -> [Float] {
            var v = (0..<width).map { _ in gaussian() * noise / Float(width).squareRoot() }
            for (d, weight) in zip(0..<k, latent) {
                for i in 0..<width { v[i] += weight * directions[d][i] }
            }
            return VectorMath.unitLength(v)
        }
        for i in batch.ads.indices {
            let ad = Int(batch.ads[i].id.rawValue) - 1
            batch.ads[i].embedding = vector(world.adLatent[(ad * k)..<((ad + 1) * k)], noise: 0.6)
            batch.ads[i].embeddingStatus = .ready
        }
        for i in batch.users.indices {
            batch.users[i].activityVector = vector(world.userLatent[(i * k)..<((i + 1) * k)], noise: 0.8)
            batch.users[i].activityVectorAt = world.start
        }
    }

    /// Recent topics for every user with an activity vector, as the activity updater leaves
    /// them (`UserProfile.recentTopics`): two to four products or companies of the world's ads,
    /// lowercased, with weights from 0.5 to 4 — so that the ranker's recent-topic features do
    /// their per-candidate work, as they do for any active user.
    public static func addRecentTopics(to batch: inout ImportBatch, seed: UInt64) {
        var rng = SplitMix64(seed: seed ^ 0x70_1C5)
        let companies = batch.advertisers.map { $0.0.name.lowercased() }
        let products = World.products
        for i in batch.users.indices where batch.users[i].activityVector != nil {
            var topics: [String: Double] = [:]
            for _ in 0..<Int.random(in: 2...4, using: &rng) {
                let name = Double.random(in: 0..<1, using: &rng) < 0.75 || companies.isEmpty
                    ? products[Int.random(in: 0..<products.count, using: &rng)] : companies[Int.random(in: 0..<companies.count, using: &rng)]
                topics[name, default: 0] += Double.random(in: 0.5...4, using: &rng)
            }
            batch.users[i].recentTopics = topics
        }
    }
}
