import Domain
import Events
import Learning
import ModelServing
import Models
import Serving
import Storage
import TestSupport
import Testing
import Training

/// P(hide) learned from hide events: the join labels every impression hidden or not, online
/// learning hears hides, the learned ranker predicts P(hide) for this user, and total value uses
/// it — so a user who hides ads gets fewer of them, within the ad-load rules.
@Suite struct HideModelTests {
    static let t0 = Timestamp(milliseconds: 1_780_315_200_000)

    static func features(ad: Int64, userHides: Int) -> ClickFeatureInput {
        ClickFeatureInput(
            age: 30, gender: "female", country: "us", language: "en", interests: [], adId: ad, campaignId: ad, advertiserId: ad, format: "image",
            objective: "traffic", caption: "caption", adImpressions: 0, adClicks: 0, adAgeHours: 1, userCampaignImpressions: 0, userHides: userHides,
            device: nil, hour: 12, sessionPosition: 0)
    }

    @Test func theJoinLabelsEveryImpressionHiddenOrNot() {
        let windows = AttributionWindows(clickMilliseconds: 60_000, conversionMilliseconds: 3_600_000)
        var join = AttributionJoin(windows: windows, labelsHides: true)
        let f = Self.features(ad: 1, userHides: 0)
        for id in ["hidden", "ignored", "converted", "late"] { join.impression(id: id, features: f, at: Self.t0) }
        join.hide(id: "hidden", at: Self.t0.adding(milliseconds: 5_000))
        join.click(id: "converted", at: Self.t0.adding(milliseconds: 2_000))
        join.conversion(id: "converted", at: Self.t0.adding(milliseconds: 30_000))
        join.hide(id: "late", at: Self.t0.adding(milliseconds: 61_000))  // after its window: not attributed
        #expect(join.unattributed == 1)
        let hides = join.drain(now: Self.t0.adding(milliseconds: 120_000)).filter { $0.target == .hide }
        #expect(Dictionary(uniqueKeysWithValues: hides.map { ($0.id, $0.label) }) == ["hidden": true, "ignored": false, "converted": false, "late": false])
        // A join that does not label hides makes none, and ignores hide events.
        var plain = AttributionJoin(windows: windows)
        plain.impression(id: "a", features: f, at: Self.t0)
        plain.hide(id: "a", at: Self.t0.adding(milliseconds: 1_000))
        #expect(plain.drain(now: Self.t0.adding(milliseconds: 120_000)).allSatisfy { $0.target == .click })
        #expect(plain.unattributed == 0)
    }

    /// `adserve train --target hide` reads hides from the serve log: each impression one example.
    @Test func theServeLogJoinsHidesForTraining() {
        let f = Self.features(ad: 1, userHides: 0)
        let log = ServeLog(lines: [
            ServeLogLine(kind: .impression, impressionId: "a/3", timeMs: Self.t0.milliseconds, features: f),
            ServeLogLine(kind: .impression, impressionId: "b/3", timeMs: Self.t0.milliseconds + 1_000, features: f),
            ServeLogLine(.notRelevant, impressionId: "a/3", at: Self.t0.adding(milliseconds: 4_000)),
            ServeLogLine(kind: .impression, impressionId: "c/3", timeMs: Self.t0.milliseconds + 3_600_000, features: f),
        ])
        let (examples, _) = log.joined(target: .hide, windows: AttributionWindows(clickMilliseconds: 60_000))
        #expect(examples.map(\.id) == ["a/3", "b/3"])  // c's window is still open at the log's end
        #expect(examples.map(\.label) == [true, false])
        #expect(log.joined(target: .click, windows: AttributionWindows(clickMilliseconds: 60_000)).examples.allSatisfy { $0.target == .click })
    }

    /// A hide model on a world where users who have hidden four or more ads hide 40% of what
    /// they see and the others (0 to 3 hides) 1%.
    static func hideModel() throws -> ClickPredictor {
        var rng = SplitMix64(seed: 5)
        var examples: [JoinedExample] = []
        for i in 0..<20_000 {
            let userHides = i % 2 == 0 ? i / 2 % 4 : 4 + i / 2 % 5
            let p = userHides >= 4 ? 0.4 : 0.01
            let at = Self.t0.adding(milliseconds: Int64(i) * 1_000)
            examples.append(JoinedExample(
                target: .hide, id: "\(i)/3", features: Self.features(ad: Int64(1 + i % 5), userHides: userHides),
                label: Double.random(in: 0..<1, using: &rng) < p, servedAt: at, labelledAt: at))
        }
        var configuration = TrainingConfiguration()
        configuration.tune = false
        return try Trainer(configuration: configuration).train(examples, target: .hide, heldOut: [], heldOutName: "none", now: Self.t0).predictor
    }

    @Test func theLearnedRankerPredictsHidesForThisUser() throws {
        let model = try Self.hideModel()
        #expect(model.meta.target == .hide)
        let hide = ModelSlot()
        hide.replace(with: model)
        let ranker = LearnedRanker(click: ModelSlot(), conversion: ModelSlot(), hide: hide)
        let ad = Ad(
            id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: [], caption: "caption", company: "Acme", product: "shoes", description: "",
            createdAt: Self.t0)
        var candidate = Candidate(
            adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000, ad: ad, adAgeHours: 1,
            impressions: 0, clicks: 0, conversions: 0)
        let calm = try #require(ranker.predict(candidate, user: nil, context: FeedContext(hour: 12)).hide)
        candidate.userHides = 6
        let prone = ranker.predict(candidate, user: nil, context: FeedContext(hour: 12))
        let p = try #require(prone.hide)
        #expect(calm < 0.03 && p > 0.25, "P(hide) \(calm) for a user who hid nothing, \(p) for one who hid six ads")
        // Without a click model, P(click) stays the rule-based estimate.
        #expect(prone.click == RuleBasedRanker().predict(candidate, user: nil, context: FeedContext(hour: 12)).click)
        // Total value prices the user's P(hide), not the ad's rate.
        #expect(EngagementCost(hideMicros: 100_000).cost(candidate, hide: p) == 100_000 * p)
        #expect(LearnedRanker(click: ModelSlot(), conversion: ModelSlot()).predict(candidate, user: nil, context: FeedContext()).hide == nil)
    }

    /// Online learning hears hides, hidden advertisers and "not relevant" as hide labels.
    @Test func onlineLearningLabelsHidesFromEvents() throws {
        let learner = OnlineLearner(
            click: ModelSlot(), conversion: ModelSlot(), hide: ModelSlot(), windows: AttributionWindows(clickMilliseconds: 60_000, conversionMilliseconds: 60_000))
        let observer = OnlineLearning(learner)
        let f = Self.features(ad: 1, userHides: 0)
        for (i, type) in [EventType.hide, .hideAdvertiser, .notRelevant, .impression].enumerated() {
            learner.served(id: "d/\(i)", features: f, at: Self.t0)
            learner.reported(id: "d/\(i)")
            observer.recorded(EventRecord(
                placementKey: "d/\(i)", type: type, userID: try UserID(validating: "u"), adID: AdID(1), campaignID: CampaignID(1), decisionID: "d",
                priceMicros: 0, at: Self.t0.adding(milliseconds: 1_000)))
        }
        let hides = learner.advance(to: Self.t0.adding(milliseconds: 120_000)).filter { $0.target == .hide }
        #expect(hides.sorted { $0.id < $1.id }.map(\.label) == [true, true, true, false])
    }

    /// Adaptive ad load: with a hide model and an exchange rate, a page for a user who has hidden
    /// ads gets fewer ads than a page for one who has not — the same ads, the same rules.
    @Test func aUserWhoHidesAdsGetsFewerOfThem() async throws {
        let hide = ModelSlot()
        hide.replace(with: try Self.hideModel())
        var configuration = ServingConfiguration.payingBids
        configuration.engagement = EngagementCost(hideMicros: 100_000)
        let world = try await TestWorld.make(configuration: configuration, ranker: LearnedRanker(click: ModelSlot(), conversion: ModelSlot(), hide: hide))
        for i in 0..<10 { try await world.ad(try await world.campaign(try await world.advertiser("A\(i)"), bid: 1_000_000)) }
        world.publish()
        // One user hides the first ad of each of four pages.
        let ingestor = EventIngestor(serving: world.serving)
        for _ in 0..<4 {
            let placement = try #require(try await world.decide("hider").placements.first)
            _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
            _ = try await ingestor.ingest(IncomingEvent(type: .hide, impressionToken: placement.impressionToken))
            world.clock.advance(milliseconds: 1_000)
        }
        let calm = try await world.decide("calm")
        let hider = try await world.decide("hider")
        // Value 1,000,000 × 1% = 10,000 micros a slot: worth it at P(hide) ≈ 1% (cost ≈ 1,000), not at ≈ 40% (≈ 40,000).
        #expect(calm.placements.count == AdLoadPolicy().positions(organicCount: 20).count)
        #expect(hider.placements.isEmpty)
        #expect(calm.placements.allSatisfy { $0.candidate.userHides == 0 && ($0.prediction.hide ?? 1) < 0.03 })
    }
}
