import Domain
import Events
import Serving
import TestSupport
import Testing

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
}
