import Domain
import Events
import Foundation
import ModelServing
import Models
import Serving
import Synchronization
import TestSupport
import Testing
import Training

/// Caps, hides, "not relevant" and the opt-out of personalization take effect on the user's
/// next decision, and survive a restart.
@Suite struct UserProtectionTests {
    static func oneSlot() -> ServingConfiguration {
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        return configuration
    }

    /// Decides one page for `user` and reports its impression (and `then`, if given).
    @discardableResult
    static func see(_ world: TestWorld, _ user: String, then event: EventType? = nil) async throws -> Ad? {
        let ingestor = EventIngestor(serving: world.serving)
        guard let placement = try await world.decide(user).placements.first else { return nil }
        _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
        if let event { _ = try await ingestor.ingest(IncomingEvent(type: event, impressionToken: placement.impressionToken)) }
        world.clock.advance(milliseconds: 60_000)
        return placement.ad
    }

    static func ad(_ world: TestWorld, _ campaign: Campaign, vector: [Float]? = nil) async throws -> Ad {
        try await world.catalog.createAd(
            Ad(
                id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: "caption", company: "Acme",
                product: "thing", description: "a thing", embedding: vector, createdAt: world.clock.now()))
    }

    @Test func perAdAndLifetimeCapsShutOutOnTheNextDecisionAndAfterARestart() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let capped = try await world.catalog.createCampaign(
            Campaign(
                id: CampaignID(0), advertiserID: try await world.advertiser("Capped").id, name: "capped", objective: .traffic, bidMicros: 2_000_000,
                dailyBudgetMicros: 100_000_000, totalBudgetMicros: 1_000_000_000,
                frequencyCaps: [FrequencyCap(impressions: 1, perHours: 24, per: .ad), FrequencyCap(impressions: 3, perHours: nil)],
                createdAt: world.clock.now()))
        let first = try await world.ad(capped)
        let second = try await world.ad(capped)
        let filler = try await world.ad(try await world.campaign(try await world.advertiser("Filler"), bid: 500_000))
        world.publish()

        // One impression per ad per day: the first ad, then the second, then the other advertiser.
        #expect(try await Self.see(world, "u1")?.id == first.id)
        #expect(try await Self.see(world, "u1")?.id == second.id)
        #expect(try await Self.see(world, "u1")?.id == filler.id)
        // Two days later the per-ad window has passed: one more impression reaches the lifetime cap of 3.
        world.clock.advance(milliseconds: 2 * Timestamp.millisecondsPerDay)
        #expect(try await Self.see(world, "u1")?.id == first.id)
        world.clock.advance(milliseconds: 2 * Timestamp.millisecondsPerDay)
        #expect(try await Self.see(world, "u1")?.id == filler.id)
        // Another user is not capped.
        #expect(try await Self.see(world, "u2")?.id == first.id)

        // Beyond every window, after a restart, the lifetime cap still holds.
        world.clock.advance(milliseconds: 30 * Timestamp.millisecondsPerDay)
        let restarted = try await world.reopened()
        restarted.publish()
        #expect(try await Self.see(restarted, "u1")?.id == filler.id)
        // (Which of the two: the restart rebuilt the order from the counters, and fewer impressions
        // without clicks smooth to a higher rate.)
        #expect(try await Self.see(restarted, "u2")?.campaignID == capped.id)
    }

    @Test func theOriginalSingleCapReadsBackAsBefore() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let campaign = try await world.campaign(try await world.advertiser(), cap: FrequencyCap(impressions: 2, perHours: 24))
        #expect(campaign.frequencyCaps == [FrequencyCap(impressions: 2, perHours: 24, per: .campaign)])
        let restarted = try await world.reopened()
        #expect(restarted.serving.catalog.campaign(campaign.id)?.frequencyCap == FrequencyCap(impressions: 2, perHours: 24))
    }

    @Test func hidingAnAdvertiserHidesAllItsAdsAndLasts() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let hidden = try await world.advertiser("Hidden")
        let a = try await world.ad(try await world.campaign(hidden, bid: 3_000_000))
        let b = try await world.ad(try await world.campaign(hidden, bid: 2_000_000))
        let other = try await world.ad(try await world.campaign(try await world.advertiser("Other"), bid: 500_000))
        world.publish()

        #expect(try await Self.see(world, "u1", then: .hideAdvertiser)?.id == a.id)
        // Neither of the advertiser's campaigns reaches this user again; other users still see it.
        for _ in 0..<3 { #expect(try await Self.see(world, "u1")?.id == other.id) }
        #expect(try await Self.see(world, "u2")?.id == a.id)
        let restarted = try await world.reopened()
        restarted.publish()
        #expect(try await Self.see(restarted, "u1")?.id == other.id)
        // A plain hide hides only that ad.
        #expect(try await Self.see(restarted, "u3", then: .hide)?.id == a.id)
        #expect(try await Self.see(restarted, "u3")?.id == b.id)
        let report = try await Reports(store: world.store).campaign(a.campaignID)
        #expect(report.totals.hides == 2)
    }

    @Test func notRelevantHidesTheAdAndDownWeightsAdsLikeIt() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        var shoes = [Float](repeating: 0, count: Limits.embeddingDimensions)
        shoes[0] = 1
        var boots = [Float](repeating: 0, count: Limits.embeddingDimensions)
        boots[0] = 0.95
        boots[1] = (1 - 0.95 * 0.95).squareRoot()
        var cheese = [Float](repeating: 0, count: Limits.embeddingDimensions)
        cheese[2] = 1
        let shoeAd = try await Self.ad(world, try await world.campaign(try await world.advertiser("Shoes"), bid: 1_000_000), vector: shoes)
        let bootAd = try await Self.ad(world, try await world.campaign(try await world.advertiser("Boots"), bid: 900_000), vector: boots)
        let cheeseAd = try await Self.ad(world, try await world.campaign(try await world.advertiser("Cheese"), bid: 500_000), vector: cheese)
        world.publish()

        #expect(try await Self.see(world, "u1", then: .notRelevant)?.id == shoeAd.id)
        // Boots keep 1 − 0.8 × 0.95² = 28% of their value (252,000 < cheese's 500,000).
        #expect(try await Self.see(world, "u1")?.id == cheeseAd.id)
        // Another user's ranking is untouched; after a restart the feedback still counts.
        #expect(try await Self.see(world, "u2")?.id == shoeAd.id)
        let restarted = try await world.reopened()
        restarted.publish()
        #expect(try await Self.see(restarted, "u1")?.id == cheeseAd.id)
        // Once cheese is gone (hidden), boots are next: down-weighted, not hidden.
        #expect(try await Self.see(restarted, "u1", then: .hide)?.id == cheeseAd.id)
        #expect(try await Self.see(restarted, "u1")?.id == bootAd.id)
    }

    @Test func optingOutLeavesOnlyContextAndCoarseDemographics() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let runners = try await world.ad(try await world.campaign(try await world.advertiser("Run"), bid: 2_000_000, targeting: Targeting(interests: ["running"])))
        let everyone = try await world.ad(try await world.campaign(try await world.advertiser("All"), bid: 1_000_000))
        world.publish()
        let user = try await world.user("u1", interests: ["running"])
        #expect(try await Self.see(world, "u1")?.id == runners.id)

        var profile = try #require(try await world.store.user(user))
        profile.personalization = false
        try await world.serving.putUser(profile)
        // The next decision no longer matches interests, and what it saw (its trace, which the
        // serve log and the learners see too) has no interests, activity or recent topics.
        let decision = try await world.decide("u1")
        #expect(decision.placements.first?.ad.id == everyone.id)
        let used = try #require(decision.trace?.profile)
        #expect(used.interests.isEmpty && used.activityVector == nil && used.recentTopics.isEmpty && used.country == "us" && !used.personalization)
        let stored = try #require(try await world.store.user(user))
        #expect(!stored.personalization && stored.interests == ["running"])
        let restarted = try await world.reopened()
        restarted.publish()
        #expect(try await Self.see(restarted, "u1")?.id == everyone.id)
    }

    /// Records what the ranker saw of the user in each candidate: how often they saw its
    /// campaign, and how many ads they hid.
    final class ActivityRecorder: Ranker, Sendable {
        let seen = Mutex<[(campaign: CampaignID, times: Int, hides: Int)]>([])
        /// What it was asked about since the last call, once per campaign (ranking asks again
        /// for the ads it keeps).
        func taken() -> [(campaign: CampaignID, times: Int, hides: Int)] {
            seen.withLock { seen in
                defer { seen.removeAll() }
                return seen.enumerated().filter { item in !seen[..<item.offset].contains { $0.campaign == item.element.campaign } }.map(\.element)
            }
        }
        func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
            seen.withLock { $0.append((candidate.campaignID, candidate.userCampaignImpressions, candidate.userHides)) }
            return RuleBasedRanker().predict(candidate, user: user, context: context)
        }
    }

    /// Opted out, a user's activity no longer reaches the ranker: not how often they saw a
    /// campaign (fatigue) nor how many ads they hid (tolerance). Their hides and caps still hold.
    @Test func anOptedOutUsersActivityDoesNotReachTheRanker() async throws {
        let recorder = ActivityRecorder()
        let world = try await TestWorld.make(configuration: Self.oneSlot(), ranker: recorder)
        let hidden = try await world.ad(try await world.campaign(try await world.advertiser("Hidden"), bid: 3_000_000))
        let capped = try await world.campaign(try await world.advertiser("Capped"), bid: 2_000_000, cap: FrequencyCap(impressions: 3, perHours: 24))
        try await world.ad(capped)
        let other = try await world.campaign(try await world.advertiser("Other"), bid: 1_000_000)
        try await world.ad(other)
        world.publish()
        let user = try await world.user("u1")
        #expect(try await Self.see(world, "u1", then: .hide)?.id == hidden.id)
        #expect(try await Self.see(world, "u1")?.campaignID == capped.id)
        #expect(try await Self.see(world, "u1")?.campaignID == capped.id)

        _ = recorder.taken()
        _ = try await world.decide("u1")
        let personalized = recorder.taken()
        #expect(personalized.map(\.campaign) == [capped.id, other.id])
        #expect(personalized.map(\.times) == [2, 0] && personalized.allSatisfy { $0.hides == 1 })

        var profile = try #require(try await world.store.user(user))
        profile.personalization = false
        try await world.serving.putUser(profile)
        _ = recorder.taken()
        let decision = try await world.decide("u1")
        let depersonalized = recorder.taken()
        #expect(depersonalized.map(\.campaign) == [capped.id, other.id])
        #expect(depersonalized.allSatisfy { $0.times == 0 && $0.hides == 0 })
        // The hidden ad stays hidden, and the cap still counts: a third impression shuts it out.
        let placement = try #require(decision.placements.first)
        #expect(placement.campaignID == capped.id)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
        #expect(try await world.decide("u1").placements.map(\.campaignID) == [other.id])
    }

    /// Creative fatigue (`--fatigue`): each showing of a campaign to a user halves its P(click)
    /// for that user, so after one showing the next-best ad wins their next page, while a new
    /// user still gets the first. Without it (the control) the same ad wins again. Through the
    /// walk of the rule-based order and through the scored path alike. The walk goes on past the
    /// tired ad to the third (value 9,000 against the tired ad's 7,500), whose value then sets
    /// the winner's second price.
    @Test(arguments: [false, true])
    func fatigueLowersAnAdForTheUserWhoSawIt(scored: Bool) async throws {
        func world(fatigue: Double) async throws -> (TestWorld, first: Campaign, second: Campaign, third: Campaign) {
            var configuration = Self.oneSlot()
            configuration.fatigue = fatigue
            let world = try await TestWorld.make(configuration: configuration, ranker: scored ? ActivityRecorder() : RuleBasedRanker())
            let first = try await world.campaign(try await world.advertiser("First"), bid: 1_500_000)
            try await world.ad(first)
            let second = try await world.campaign(try await world.advertiser("Second"), bid: 1_000_000)
            try await world.ad(second)
            let third = try await world.campaign(try await world.advertiser("Third"), bid: 900_000)
            try await world.ad(third)
            world.publish()
            return (world, first, second, third)
        }
        let (tired, first, second, third) = try await world(fatigue: 0.5)
        #expect(try await Self.see(tired, "u1")?.campaignID == first.id)
        let next = try await tired.decide("u1")
        #expect(next.placements.map(\.campaignID) == [second.id])
        // The third's value, 0.01 × 900,000, over the winner's P(click) of 0.01.
        #expect(next.placements.first?.priceMicros == 900_000)
        let trace = try #require(next.trace)
        #expect(trace.considered.map(\.candidate.campaignID).prefix(2) == [second.id, third.id])
        // The tired ad lost on value: among the scored candidates, or the walk's notable losers.
        if scored {
            #expect(trace.considered.contains { $0.candidate.campaignID == first.id && $0.outcome == .outbid })
        } else {
            #expect(trace.notableLosers.first?.campaignID == first.id && trace.notableLosers.first?.reason == .outbid)
        }
        #expect(try await tired.decide("u2").placements.map(\.campaignID) == [first.id])

        // The prediction itself decays: at 0.8 the first ad, seen once, still wins (12,000
        // against 10,000) with 0.8 of the prior's P(click) (one impression without a click
        // moves the scored path's rate by 1%).
        let (mild, mildFirst, _, _) = try await world(fatigue: 0.8)
        #expect(try await Self.see(mild, "u1")?.campaignID == mildFirst.id)
        let again = try #require(try await mild.decide("u1").placements.first)
        #expect(again.campaignID == mildFirst.id)
        #expect(abs(again.prediction.click / 0.008 - 1) < 0.011, "P(click) \(again.prediction.click)")

        let (control, controlFirst, _, _) = try await world(fatigue: 1)
        #expect(try await Self.see(control, "u1")?.campaignID == controlFirst.id)
        #expect(try await control.decide("u1").placements.map(\.campaignID) == [controlFirst.id])
    }

    /// Fatigue takes from the advertiser's value, not from the engagement cost, so the second
    /// price is still the least bid that keeps the slot: with P(hide) costing 250,000 micros a
    /// hide, a tired first ad (bid 3, P(click) halved) still beats a fresh second (bid 1.2) and
    /// pays b with b × its decayed P(click) − its cost = the second's total value.
    @Test func aTiredAdsSecondPriceKeepsItsCostApart() async throws {
        var configuration = Self.oneSlot()
        configuration.fatigue = 0.5
        configuration.engagement = EngagementCost(hideMicros: 250_000)
        let world = try await TestWorld.make(configuration: configuration, ranker: ActivityRecorder())
        let first = try await world.campaign(try await world.advertiser("First"), bid: 3_000_000)
        try await world.ad(first)
        let second = try await world.campaign(try await world.advertiser("Second"), bid: 1_200_000)
        try await world.ad(second)
        world.publish()
        #expect(try await Self.see(world, "u1")?.campaignID == first.id)
        let placement = try #require(try await world.decide("u1").placements.first)
        #expect(placement.campaignID == first.id)
        // The first ad after one impression: P(click) 1/101, halved; P(hide) 1/51. The second: 1%, 2%.
        let click = 0.5 / 101, cost = 250_000.0 / 51
        let next = 1_200_000 * 0.01 - 250_000 * 0.02
        #expect(abs(Double(placement.priceMicros) - (next + cost) / click) <= 1, "price \(placement.priceMicros)")
    }

    /// The learned ranker's fatigue is its own: trained where each earlier showing of a campaign
    /// leaves 60% of the chance of a click, its P(click) falls with the times the user saw it.
    @Test func theLearnedRankersPredictionFallsWithExposures() throws {
        let t0 = TestWorld.start
        func features(seen: Int) -> ClickFeatureInput {
            ClickFeatureInput(
                age: 30, gender: "female", country: "us", language: "en", interests: [], adId: 1, campaignId: 1, advertiserId: 1, format: "image",
                objective: "traffic", caption: "caption", adImpressions: 0, adClicks: 0, adAgeHours: 1, userCampaignImpressions: seen,
                device: nil, hour: 12, sessionPosition: 0)
        }
        var rng = SplitMix64(seed: 3)
        var examples: [JoinedExample] = []
        for i in 0..<40_000 {
            let seen = i % 5
            let at = t0.adding(milliseconds: Int64(i) * 1_000)
            examples.append(JoinedExample(
                target: .click, id: "\(i)/3", features: features(seen: seen), label: Double.random(in: 0..<1, using: &rng) < 0.08 * pow(0.6, Double(seen)),
                servedAt: at, labelledAt: at))
        }
        var configuration = TrainingConfiguration()
        configuration.tune = false
        let model = try Trainer(configuration: configuration).train(examples, target: .click, heldOut: [], heldOutName: "none", now: t0).predictor
        let click = ModelSlot()
        click.replace(with: model)
        let ranker = LearnedRanker(click: click, conversion: ModelSlot())
        let ad = Ad(
            id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: [], caption: "caption", company: "Acme", product: "thing", description: "",
            createdAt: t0)
        let predictions = (0..<5).map { seen in
            ranker.predict(
                Candidate(
                    adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1_000_000, ad: ad, adAgeHours: 1,
                    impressions: 0, clicks: 0, conversions: 0, userCampaignImpressions: seen),
                user: nil, context: FeedContext(hour: 12)
            ).click
        }
        #expect(zip(predictions, predictions.dropFirst()).allSatisfy { $0 > $1 }, "P(click) by times seen: \(predictions)")
        // 0.6 to the fourth is 0.13.
        #expect(predictions[4] / predictions[0] < 0.3, "P(click) by times seen: \(predictions)")
    }
}
