import ContentEncoding
import Domain
import Foundation
import ModelServing
import Models
import SQLiteStorage
import Serving
import Simulator
import TestSupport
import Testing
import Training

/// The simulator's activity and content: users whose reported views are the only clue (the
/// products world), the policies compared in it, generated media encoded by the real encoders,
/// and the ads created mid-run whose learning is measured.
@Suite struct SimulatedActivityTests {
    static func products(users: Int = 600, ads: Int = 200, days: Int = 2, arms: [String]) -> Simulation.Configuration {
        var c = Simulation.Configuration()
        c.size = World.Size(users: users, ads: ads)
        c.world = .products
        c.days = days
        c.seed = 5
        c.arms = arms
        return c
    }

    @Test func productsWorldStatesNoInterestAndSellsTheCampaignsProduct() {
        let world = World(size: World.Size(users: 200, ads: 100), seed: 2, start: Timestamp(milliseconds: 0), kind: .products)
        #expect(world.dimensionNames == World.products)
        #expect(world.batch.users.allSatisfy { $0.interests.isEmpty })
        #expect(world.batch.campaigns.allSatisfy { $0.targeting.interests.isEmpty })
        #expect(world.batch.activities.allSatisfy { $0.type == .view && World.products.contains($0.topics.first ?? "") })
        for (i, ad) in world.batch.ads.enumerated() { #expect(ad.product == World.products[world.adDimension[i]]) }
    }

    /// Reported views reach the profiles (`recentTopics`) through the server's updater before
    /// the next page, and a policy that reads them serves the most viewed product far more
    /// often than random ads do.
    @Test func mostViewedPolicyServesTheMostViewedProduct() async throws {
        let report = try await Simulation(configuration: Self.products(users: 800, ads: 1_000, arms: ["most-viewed", "random"])).run().report
        let policy = try #require(report.arms["most-viewed"])
        let random = try #require(report.arms["random"])
        #expect(policy.impressions > 1_000 && random.impressions > 1_000)
        // Two slots a page, one per advertiser: the second often goes to another product.
        #expect(policy.mostViewedShare > 0.4, "\(policy.mostViewedShare)")
        #expect(random.mostViewedShare < 0.25, "\(random.mostViewedShare)")
        // Views predict clicks in this world: the policy's ads are clicked more (by the world's
        // own probabilities, which carry no sampling noise).
        #expect(policy.expectedCtr > random.expectedCtr * 1.2, "\(policy.expectedCtr) \(random.expectedCtr)")
    }

    /// `ml` ranks and learns with what the user just did; `ml-plain` is blind to it: its logged
    /// features never carry the recent-topic weight, the similarity or the activity time.
    @Test func plainLearnedArmIsBlindToActivity() async throws {
        let logs = LineCollector()
        _ = try await Simulation(configuration: Self.products(users: 400, ads: 100, days: 1, arms: ["ml", "ml-plain"])).run(log: { logs.add($0) })
        let impressions = logs.lines.filter { $0.kind == .impression }
        let ml = impressions.filter { $0.arm == "ml" }.compactMap(\.features)
        let plain = impressions.filter { $0.arm == "ml-plain" }.compactMap(\.features)
        #expect(!ml.isEmpty && !plain.isEmpty)
        #expect(ml.contains { $0.recentTopicWeight != nil } && ml.contains { $0.hoursSinceActivity != nil })
        // The serve log keeps what the profile held; the arm's ranker and learner saw it blind:
        // its predictions match the rule-based fallback until its first retrain, like `ml`'s.
        #expect(plain.allSatisfy { $0.interests.isEmpty })
    }

    @Test func armsNamedTwiceRunTwiceUnderTwoLabels() throws {
        #expect(try Arms.list(["baseline", "ml", "baseline"]).map(\.name) == ["baseline", "ml", "baseline-2"])
        #expect(throws: AdServeError.self) { try Arms.list(["baseline", "nope"]) }
    }

    /// New campaigns start on their day: none of their ads is shown before, and the report
    /// says how fast each arm's predictions for them came within 20% of the truth.
    @Test func newAdsStartOnTheirDayAndTheirLearningIsMeasured() async throws {
        var c = Simulation.Configuration()
        c.size = World.Size(users: 1_500, ads: 200, newCampaigns: 4, newCampaignDay: 1)
        c.days = 2
        c.seed = 4
        c.arms = ["baseline", "random"]
        let logs = LineCollector()
        let report = try await Simulation(configuration: c).run(log: { logs.add($0) }).report
        #expect(report.newAds == 40 && report.newAdsDay == 2 && report.ads == 240)
        let dayTwo = Simulation.start.adding(milliseconds: Timestamp.millisecondsPerDay)
        // Each arm serves its own copy of every ad (budgets are split): ad ids map back to the world's.
        let newAdImpressions = logs.lines.filter { $0.kind == .impression && CampaignSlice.original(of: $0.features?.adId ?? 1, count: 2) > 200 }
        #expect(!newAdImpressions.isEmpty)
        #expect(newAdImpressions.allSatisfy { $0.timeMs >= dayTwo.milliseconds })
        for arm in report.arms.values { #expect(arm.newAds.reached <= arm.newAds.ads) }
    }

    /// The count is of impressions before the first window of 50 whose mean prediction is
    /// within 20% of their mean truth.
    @Test func newAdLearningCountsImpressionsBeforeTheFirstGoodWindow() {
        let w = SimulationReport.NewAdLearning.window
        let early = Array(repeating: (predicted: 0.05, truth: 0.02), count: 30) + Array(repeating: (predicted: 0.021, truth: 0.02), count: w)
        let never = Array(repeating: (predicted: 0.04, truth: 0.02), count: 2 * w)
        let short = Array(repeating: (predicted: 0.02, truth: 0.02), count: w - 1)
        let learning = SimulationReport.NewAdLearning([early, never, short])
        #expect(learning.ads == 2 && learning.reached == 1)
        // A window starting at s holds 30 − s early predictions of 0.05 and 20 + s of 0.021:
        // its mean is within 20% of 0.02 (≤ 0.024) from s = 25 on.
        #expect(learning.medianImpressions == 25)
    }

    /// With content, every ad gets a generated picture or video and is encoded by the real
    /// encoders before the first day; users' activity gets vectors in the same space.
    @Test func contentRunEncodesEveryAdAndUser() async throws {
        let encoder = try ContentEncoderTests.encoder.get()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-sim-media-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = Simulation.Configuration()
        c.size = World.Size(users: 150, ads: 30, adsPerCampaign: 10)
        c.days = 1
        c.seed = 2
        c.arms = ["ml"]
        c.content = true
        c.encoder = encoder
        c.mediaDirectory = directory.path
        let database = TemporaryDatabase()
        let store = try SQLiteStore(path: database.path, durability: .scratch)
        _ = try await Simulation(configuration: c).run(store: store)
        let ads = try await store.allAds()
        #expect(ads.count == 30)
        #expect(ads.allSatisfy { $0.embeddingStatus == .ready && $0.embedding?.count == Limits.embeddingDimensions && $0.imageEmbedding?.count == 1280 },
            "\(ads.map { $0.embeddingError ?? "-" })")
        #expect(ads.contains { $0.format == .video } && ads.contains { $0.format == .image })
        // Ads of one campaign share their medium; campaigns of different topics look different.
        let byCampaign = Dictionary(grouping: ads, by: \.campaignID)
        for (_, same) in byCampaign { #expect(Set(same.map { $0.imageEmbedding! }).count == 1) }
        var withVectors = 0
        for i in 1...150 where try await store.user(UserID(trusted: "u\(i)"))?.activityVector?.count == Limits.embeddingDimensions { withVectors += 1 }
        #expect(withVectors == 150)
        withExtendedLifetime(database) {}
    }
}

/// Feature version 5: the content codes, the hours since the last activity, and recent-topic
/// weights decayed to the decision.
@Suite struct ActivityFeatureTests {
    static func unit(_ seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return VectorMath.unitLength((0..<Limits.embeddingDimensions).map { _ in Float.random(in: -1...1, using: &rng) })
    }

    @Test func nearbyVectorsShareAContentCodeAndOppositeOnesDoNot() throws {
        let v = Self.unit(1)
        let code = try #require(ContentCode.of(v))
        #expect(ContentCode.of(v) == code)  // fixed hyperplanes: the same code every time
        let nudged = VectorMath.unitLength(zip(v, Self.unit(2)).map { $0 + 0.02 * $1 })
        #expect(ContentCode.of(nudged) == code)
        #expect(ContentCode.of(v.map { -$0 }) == code ^ ((1 << ContentCode.bits) - 1))
        #expect(ContentCode.of([1, 0, 0]) == nil)
        #expect(ContentCode.of(nil) == nil)
    }

    @Test func contentCodesAndRecencyChangeTheEncoding() {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 20))
        var a = TrainingTests.input()
        let plain = features.encode(a)
        a.adContentCode = 5
        let withAd = features.encode(a)
        #expect(withAd != plain)
        a.userContentCode = 9
        let withBoth = features.encode(a)
        // The user's code alone, and crossed with the ad's: two more features.
        #expect(withBoth.indices.count == withAd.indices.count + 2)
        a.adContentCode = 6
        #expect(features.encode(a) != withBoth)
        var b = TrainingTests.input()
        b.hoursSinceActivity = 1
        var c = b
        c.hoursSinceActivity = 50
        #expect(features.encode(b) != features.encode(c))
    }

    /// The ranker reads recent topics as they stand at the decision: a day later, half.
    @Test func recentTopicWeightsDecayToTheDecisionsTime() {
        let ad = Ad(id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: ["https://x.example/a.jpg"], caption: "Run", company: "Acme",
            product: "Sneakers", description: "", createdAt: Timestamp(milliseconds: 0))
        let candidate = Candidate(adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000,
            ad: ad, adAgeHours: 1, impressions: 0, clicks: 0, conversions: 0)
        let at = Timestamp(milliseconds: 1_000_000_000)
        let user = UserProfile(id: UserID(trusted: "u"), activityVectorAt: at, recentTopics: ["sneakers": 4, "coffee": 9])
        let now = ClickFeatureInput(candidate: candidate, user: user, context: FeedContext(at: at))
        #expect(now.recentTopicWeight == 4 && now.hoursSinceActivity == 0)
        // Sneakers are second to coffee, a third of all recent activity.
        #expect(now.recentTopicRank == 2 && abs((now.recentTopicShare ?? 0) - 4.0 / 13) < 1e-9)
        let dayLater = ClickFeatureInput(candidate: candidate, user: user, context: FeedContext(at: at.adding(milliseconds: Timestamp.millisecondsPerDay)))
        #expect(abs((dayLater.recentTopicWeight ?? 0) - 2) < 1e-9 && dayLater.hoursSinceActivity == 24)
    }

    /// What the logs and online learning keep of a decision's placements is made with the user's
    /// side once per decision: it is each placement's input made alone, with the two sketches.
    @Test func placementsAreLoggedAsEachAloneWouldBe() {
        let at = Timestamp(milliseconds: 1_000_000_000)
        let products = ["Sneakers", "Boots", "Coffee"]
        let n = Limits.embeddingDimensions
        let embeddings: [[Float]?] = [[Float](repeating: 0.5, count: n), nil, (0..<n).map { Float($0 % 7) - 3 }]
        var candidates: [Candidate] = []
        for index in products.indices {
            let ad = Ad(id: AdID(Int64(index + 1)), campaignID: CampaignID(1), format: .image, mediaURLs: ["https://x.example/a.jpg"], caption: "Ad \(index)",
                company: "Acme", product: products[index], description: "", embedding: embeddings[index], createdAt: Timestamp(milliseconds: 0))
            candidates.append(Candidate(adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000,
                ad: ad, adAgeHours: Int64(index), impressions: Int64(10 * index), clicks: Int64(index), conversions: 0))
        }
        let user = UserProfile(
            id: UserID(trusted: "u"), age: 30, interests: ["running"], activityVector: (0..<n).map { Float($0 % 3) }, activityVectorAt: at,
            recentTopics: ["sneakers": 4, "coffee": 9, "acme": 1])
        let context = FeedContext(device: "ios", hour: 9, sessionPosition: 20, at: at.adding(milliseconds: 3 * Timestamp.millisecondsPerHour))
        let placed = ClickFeatureInput.placed(candidates, user: user, context: context)
        let alone = candidates.map { candidate in
            var input = ClickFeatureInput(candidate: candidate, user: user, context: context)
            input.userSketch = VectorSketch(user.activityVector)
            input.adSketch = AdSketches.shared.sketch(of: candidate.ad)
            return input
        }
        #expect(placed == alone)
        // Each keeps its own ad's side: its topics, its similarity, its sketch.
        #expect(placed.map { $0.adId } == [1, 2, 3])
        #expect(placed.map { $0.recentTopicRank } == [2, 3, 1])
        #expect(placed[0].userAdSimilarity != nil && placed[1].userAdSimilarity == nil && placed[0].userAdSimilarity != placed[2].userAdSimilarity)
        #expect(placed[0].adSketch != nil && placed[1].adSketch == nil && placed.allSatisfy { $0.userSketch != nil })
        #expect(ClickFeatureInput.placed([], user: user, context: context).isEmpty)
    }

    /// An ad's names match the user's topics as Swift compares strings, by canonical
    /// equivalence: an ASCII name and one that is not can be equal ("a;" and "a" U+037E), and
    /// so can two spellings of "café". The ranker's integer matching of ASCII names must agree.
    @Test func recentTopicsMatchAdNamesAsStringsCompare() {
        let at = Timestamp(milliseconds: 1_000_000_000)
        func input(product: String, topics: [String: Double]) -> ClickFeatureInput {
            let ad = Ad(id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: ["https://x.example/a.jpg"], caption: "Run", company: "Acme",
                product: product, description: "", createdAt: Timestamp(milliseconds: 0))
            let candidate = Candidate(adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000,
                ad: ad, adAgeHours: 1, impressions: 0, clicks: 0, conversions: 0)
            let user = UserProfile(id: UserID(trusted: "u"), activityVectorAt: at, recentTopics: topics)
            return ClickFeatureInput(candidate: candidate, user: user, context: FeedContext(at: at))
        }
        // Both names match (product and company); the better rank of the two counts.
        let ascii = input(product: "Sneakers", topics: ["sneakers": 4, "acme": 1, "coffee": 9])
        #expect(ascii.recentTopicWeight == 5 && ascii.recentTopicRank == 2)
        let nfd = input(product: "Cafe\u{301}", topics: ["café": 3, "tea": 1])
        #expect(nfd.recentTopicWeight == 3 && nfd.recentTopicRank == 1)
        let greekTopic = input(product: "A;", topics: ["a\u{37E}": 2, "tea": 1])
        #expect(greekTopic.recentTopicWeight == 2)
        let greekAd = input(product: "a\u{37E}", topics: ["a;": 2, "tea": 1])
        #expect(greekAd.recentTopicWeight == 2)
        #expect(input(product: "Boots", topics: ["sneakers": 4]).recentTopicWeight == nil)
    }

    /// The share of the user's activity an ad's topic holds does not depend on the order a
    /// dictionary happens to keep the topics in (which changes with its capacity, its history
    /// and the process's hash seed): the same profile gives the same bytes in every run's log.
    @Test func recentTopicShareIsTheSameWhateverTheTopicsOrder() {
        let at = Timestamp(milliseconds: 1_000_000_000)
        let ad = Ad(id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: ["https://x.example/a.jpg"], caption: "Run", company: "Acme",
            product: "shoe", description: "", createdAt: Timestamp(milliseconds: 0))
        let candidate = Candidate(adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000,
            ad: ad, adAgeHours: 1, impressions: 0, clicks: 0, conversions: 0)
        // Summed with 1 first, each tiny weight rounds away; summed before it, they add up.
        let entries = [("acme", 1.0)] + (0..<40).map { ("topic\($0)", 1.1e-16) }
        var rng = SplitMix64(seed: 0x70_91C5)
        var shares: Set<Double> = []
        for capacity in [0, 64, 1024, 4096] {
            for _ in 0..<8 {
                var topics: [String: Double] = [:]
                topics.reserveCapacity(capacity)
                for (name, weight) in entries.shuffled(using: &rng) { topics[name] = weight }
                let user = UserProfile(id: UserID(trusted: "u"), activityVectorAt: at, recentTopics: topics)
                shares.insert(ClickFeatureInput(candidate: candidate, user: user, context: FeedContext(at: at)).recentTopicShare ?? -1)
            }
        }
        #expect(shares.count == 1, "\(shares.sorted())")
    }
}

/// Remote media: https only, and a failure names the field.
@Suite struct RemoteMediaTests {
    @Test func onlyHttpsIsFetchedAndAFailureNamesTheField() {
        let plain = #expect(throws: AdServeError.self) { try MediaSource.fetch("http://127.0.0.1:9/a.png", field: "media_urls[0]") }
        #expect(plain?.field == "media_urls[0]")
        // Nothing listens on port 9 here: refused at once, reported with curl's reason.
        let refused = #expect(throws: AdServeError.self) { try MediaSource.fetch("https://127.0.0.1:9/a.png", field: "media_urls[0]") }
        #expect(refused?.field == "media_urls[0]" && refused?.message.contains("cannot fetch") == true, "\(String(describing: refused))")
    }
}
