import Domain
import Events
import Serving
import TestSupport
import Testing

@Suite struct DecisionTests {
    @Test func targetingDecidesWhoSeesWhat() async throws {
        let world = try await TestWorld.make()
        let acme = try await world.advertiser("Acme")
        let beta = try await world.advertiser("Beta")
        let gamma = try await world.advertiser("Gamma")
        let delta = try await world.advertiser("Delta")
        let usYoga = try await world.campaign(acme, targeting: Targeting(countries: ["us"], interests: ["yoga"]))
        let frYoung = try await world.campaign(beta, targeting: Targeting(ageMin: 18, ageMax: 25, countries: ["fr"]))
        let everyone = try await world.campaign(gamma)
        let android = try await world.campaign(delta, targeting: Targeting(devices: ["android"]))
        for c in [usYoga, frYoung, everyone, android] { try await world.ad(c) }
        world.publish()
        _ = try await world.user("alice", age: 30, country: "US", interests: ["Yoga", "food"])
        _ = try await world.user("bob", age: 22, country: "fr", interests: [])
        _ = try await world.user("carl", age: 40, country: "fr")

        func campaigns(_ user: String, device: String? = nil) async throws -> Set<CampaignID> {
            Set(try await world.decide(user, device: device).placements.map(\.campaignID))
        }
        #expect(try await campaigns("alice") == [usYoga.id, everyone.id])
        #expect(try await campaigns("alice", device: "android") == [usYoga.id, everyone.id, android.id])
        #expect(try await campaigns("bob") == [frYoung.id, everyone.id])
        #expect(try await campaigns("carl") == [everyone.id])
        // A user the store has never heard of gets only untargeted ads (and device-only ones).
        #expect(try await campaigns("stranger") == [everyone.id])
        #expect(try await campaigns("stranger", device: "ANDROID") == [everyone.id, android.id])
    }

    @Test func rankingIsByExpectedValueWithOneAdPerAdvertiser() async throws {
        let world = try await TestWorld.make()
        let acme = try await world.advertiser("Acme")
        let beta = try await world.advertiser("Beta")
        // CPC bid 1.0 × prior CTR 1% = 10,000 micros per impression.
        let cpc = try await world.campaign(acme, objective: .traffic, bid: 1_000_000)
        // CPM bid 20 per 1000 = 20,000 micros per impression: ranks first.
        let cpm = try await world.campaign(beta, objective: .awareness, bid: 20_000_000)
        // Acme's second campaign: CPA bid 10 × 1% × 5% = 5,000; loses to Acme's own CPC ad.
        let cpa = try await world.campaign(acme, objective: .conversions, bid: 10_000_000)
        for c in [cpc, cpm, cpa] { try await world.ad(c) }
        world.publish()
        let decision = try await world.decide("anyone", organicCount: 20)
        #expect(decision.placements.map(\.campaignID) == [cpm.id, cpc.id])
        #expect(decision.placements.map(\.afterPost) == [3, 7])
        #expect(decision.placements[0].expectedValueMicros == 20_000)
        #expect(abs(decision.placements[1].expectedValueMicros - 10_000) < 1e-6)
        #expect(Set(decision.placements.map(\.advertiserID)).count == decision.placements.count)
    }

    /// The random policy draws among the ads the user may see. A hidden ad that is then paused
    /// must not count against its campaign: the campaign's other ad stays drawable, and the
    /// logged propensity is exactly 1 / (visible ads left).
    @Test func randomPolicyKeepsACampaignWhoseHiddenAdWasPaused() async throws {
        var configuration = ServingConfiguration()
        configuration.policy = .uniformRandom(seed: 1)
        let world = try await TestWorld.make(configuration: configuration)
        let acme = try await world.campaign(try await world.advertiser("Acme"))
        let kept = try await world.ad(acme)
        let hidden = try await world.ad(acme)
        let beta = try await world.campaign(try await world.advertiser("Beta"))
        let other = try await world.ad(beta)
        world.publish()

        // Serve until the user sees `hidden`, then hide it and pause it.
        var hiddenPlacement: Placement?
        for _ in 0..<50 where hiddenPlacement == nil {
            hiddenPlacement = try await world.decide("u1").placements.first { $0.ad.id == hidden.id }
        }
        let placement = try #require(hiddenPlacement)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .hide, impressionToken: placement.impressionToken))
        _ = try await world.catalog.updateAd(hidden.id) { $0.status = .paused }
        world.publish()

        for _ in 0..<20 {
            let decision = try await world.decide("u1")
            #expect(Set(decision.placements.map(\.ad.id)) == [kept.id, other.id])
            // Two visible ads of two advertisers: the first slot draws one of two, the second the other.
            #expect(decision.placements.map(\.propensity) == [0.5, 1])
        }
    }

    @Test func rateSmoothingStartsAtThePriorAndFollowsEvidence() {
        let ranker = RuleBasedRanker()
        func candidate(impressions: Int64, clicks: Int64, conversions: Int64 = 0) -> Candidate {
            let ad = Ad(
                id: AdID(1), campaignID: CampaignID(1), format: .image, mediaURLs: [], caption: "c", company: "c", product: "p",
                description: "d", createdAt: Timestamp(milliseconds: 0))
            return Candidate(
                adID: AdID(1), campaignID: CampaignID(1), advertiserID: AdvertiserID(1), objective: .traffic, bidMicros: 1,
                ad: ad, adAgeHours: 0, impressions: impressions, clicks: clicks, conversions: conversions)
        }
        let fresh = ranker.predict(candidate(impressions: 0, clicks: 0), user: nil, context: FeedContext())
        #expect(fresh.click == 0.01 && fresh.conversion == 0.05)
        let proven = ranker.predict(candidate(impressions: 100_000, clicks: 5_000, conversions: 500), user: nil, context: FeedContext())
        #expect(abs(proven.click - 0.05) < 0.001)
        #expect(abs(proven.conversion - 0.1) < 0.001)
    }

    @Test func pausedScheduledAndChangedCampaignsFollowTheCatalog() async throws {
        let world = try await TestWorld.make()
        let acme = try await world.advertiser()
        let now = world.clock.now()
        let live = try await world.campaign(acme)
        let later = try await world.campaign(acme, startAt: now.adding(hours: 2))
        let over = try await world.campaign(acme, endAt: now)
        for c in [live, later, over] { try await world.ad(c) }
        // Not yet published: nothing serves.
        #expect(try await world.decide("u").placements.isEmpty)
        world.publish()
        #expect(try await world.decide("u").placements.map(\.campaignID) == [live.id])
        _ = try await world.catalog.updateCampaign(live.id) { $0.status = .paused }
        world.publish()
        #expect(try await world.decide("u").placements.isEmpty)
        world.clock.advance(hours: 3)
        #expect(try await world.decide("u").placements.map(\.campaignID) == [later.id])
    }

    @Test func anOlderRevisionNeverReplacesANewerOne() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        try await world.ad(campaign)
        let paused = try await world.catalog.updateCampaign(campaign.id) { $0.status = .paused }
        // The create's answer arriving after the pause (two writers racing) changes nothing.
        world.serving.catalog.upsert(campaign)
        world.publish()
        #expect(world.serving.catalog.campaign(campaign.id) == paused)
        #expect(try await world.decide("u").placements.isEmpty)
    }

    @Test func pausedAdStopsServing() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let ad = try await world.ad(campaign)
        world.publish()
        #expect(try await world.decide("u").placements.map(\.ad.id) == [ad.id])
        _ = try await world.catalog.updateAd(ad.id) { $0.status = .paused }
        world.publish()
        #expect(try await world.decide("u").placements.isEmpty)
    }

    @Test func badRequestValuesAreRefused() async throws {
        let world = try await TestWorld.make()
        await #expect(throws: AdServeError.invalid("organic_count", "must be between 0 and 500")) { try await world.decide("u", organicCount: -1) }
        await #expect(throws: AdServeError.self) {
            try await world.serving.decide(userID: try UserID(validating: "u"), context: FeedContext(hour: 24), organicCount: 5)
        }
        #expect(throws: AdServeError.self) { try UserID(validating: "no spaces") }
        #expect(throws: AdServeError.self) { try UserID(validating: String(repeating: "x", count: 65)) }
    }

    /// The random policy draws uniformly over eligible ads and logs exactly that probability.
    @Test func randomPolicyIsUniformAndLogsItsPropensity() async throws {
        var configuration = ServingConfiguration()
        configuration.policy = .uniformRandom(seed: 99)
        let world = try await TestWorld.make(configuration: configuration)
        let acme = try await world.campaign(try await world.advertiser("Acme"))
        let beta = try await world.campaign(try await world.advertiser("Beta"))
        var ads = [try await world.ad(acme), try await world.ad(acme), try await world.ad(acme), try await world.ad(beta)]
        world.publish()
        var counts: [AdID: Int] = [:]
        let draws = 4_000
        for _ in 0..<draws {
            let page = try await world.decide("u", organicCount: 7)
            #expect(page.placements.count == 2)
            #expect(page.placements[0].propensity == 0.25)
            // The second slot: the other advertiser's ads only (3 of Acme or the 1 of Beta).
            #expect(page.placements[1].propensity == (page.placements[0].campaignID == acme.id ? 1 : 1.0 / 3))
            counts[page.placements[0].ad.id, default: 0] += 1
        }
        for ad in ads { #expect(abs(Double(counts[ad.id, default: 0]) / Double(draws) - 0.25) < 0.03) }
        // A hidden ad is never drawn, and the others share its probability.
        let hidden = ads.removeFirst()
        var served: Placement?
        for _ in 0..<50 where served == nil {
            served = try await world.decide("u", organicCount: 7).placements.first { $0.ad.id == hidden.id }
        }
        let token = try #require(served).impressionToken
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .hide, impressionToken: token))
        for _ in 0..<200 {
            let page = try await world.decide("u", organicCount: 7)
            #expect(page.placements.allSatisfy { $0.ad.id != hidden.id })
            #expect(page.placements[0].propensity == 1.0 / 3)
        }
    }

    @Test func shortPageGetsNoAds() async throws {
        let world = try await TestWorld.make()
        try await world.ad(try await world.campaign(try await world.advertiser()))
        world.publish()
        #expect(try await world.decide("u", organicCount: 2).placements.isEmpty)
        #expect(try await world.decide("u", organicCount: 3).placements.map(\.afterPost) == [3])
    }
}
