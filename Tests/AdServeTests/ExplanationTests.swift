import Domain
import Events
@testable import Serving
import TestSupport
import Testing

/// Explanations read the decision's own trace: what was considered, what won at what price and
/// why; and advertisers see why their campaigns lost.
@Suite struct ExplanationTests {
    static func oneSlot(reserveCPC: Micros = 0, lossSampleRate: Double = 1) -> ServingConfiguration {
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        configuration.auction.reserveCPCMicros = reserveCPC
        configuration.lossSampleRate = lossSampleRate
        return configuration
    }

    @Test func theTraceHoldsTheCandidatesTheAuctionAndWhatWasFiltered() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let high = try await world.ad(try await world.campaign(try await world.advertiser("High"), bid: 1_000_000))
        let low = try await world.ad(try await world.campaign(try await world.advertiser("Low"), bid: 600_000))
        let hidden = try await world.ad(try await world.campaign(try await world.advertiser("Hidden"), bid: 2_000_000))
        world.publish()
        // The user hides the best ad first.
        let first = try #require(try await world.decide("u1").placements.first)
        #expect(first.ad.id == hidden.id)
        let ingestor = EventIngestor(serving: world.serving)
        _ = try await ingestor.ingest(IncomingEvent(type: .hide, impressionToken: first.impressionToken))

        let decision = try await world.decide("u1")
        let trace = try #require(world.serving.traces.trace(decision.decisionID))
        #expect(trace.placed.map(\.candidate.adID) == [high.id])
        #expect(trace.placed[0].priceMicros == 600_000)
        #expect(trace.considered.map(\.candidate.adID) == [high.id, low.id])
        #expect(trace.considered.map(\.outcome) == [.placed, .runnerUp])
        #expect(trace.runnerUpValueMicros == trace.considered[1].valueMicros)
        #expect(trace.hiddenAds == [hidden.id])
        #expect(trace.personalized)

        // The rule-based ranker's P(click) moves with the ad's click history only: with 10 clicks
        // in 100 impressions it is 11/200 against the prior's 1/100.
        var clicked = trace.placed[0].candidate
        (clicked.impressions, clicked.clicks) = (100, 10)
        let contributions = world.serving.ranker.contributions(clicked, user: trace.profile, context: trace.context)
        #expect(contributions.first?.inputs == "the ad's click history")
        #expect(abs((contributions.first?.clickDelta ?? 0) - (11.0 / 200 - 0.01)) < 1e-12)
        #expect(contributions.dropFirst().allSatisfy { $0.clickDelta == 0 })
    }

    @Test func whyWordsTheTraceAndSaysWhenPersonalizationIsOff() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let runners = try await world.catalog.createCampaign(
            Campaign(
                id: CampaignID(0), advertiserID: try await world.advertiser("Fleet").id, name: "run", objective: .traffic, bidMicros: 1_000_000,
                dailyBudgetMicros: 100_000_000, totalBudgetMicros: 1_000_000_000, targeting: Targeting(countries: ["us"], interests: ["running"]),
                createdAt: world.clock.now()))
        let ad = try await world.ad(runners)
        let general = try await world.ad(try await world.campaign(try await world.advertiser("Any"), bid: 500_000))
        world.publish()
        let user = try await world.user("u1", interests: ["running"])

        let decision = try await world.decide("u1")
        let trace = try #require(decision.trace)
        let placed = try #require(trace.placed.first { $0.candidate.adID == ad.id })
        let text = WhyThisAd.text(trace: trace, placed: placed, campaign: world.serving.catalog.campaign(runners.id), contributions: [])
        #expect(text.contains("interested in running"))
        #expect(text.contains("people in US"))
        #expect(!text.contains("turned off"))

        var profile = try #require(try await world.store.user(user))
        profile.personalization = false
        try await world.serving.putUser(profile)
        let after = try #require(try await world.decide("u1").trace)
        let shown = try #require(after.placed.first)
        #expect(shown.candidate.adID == general.id)
        #expect(!after.personalized && after.profile?.interests == [])
        let optedOut = WhyThisAd.text(trace: after, placed: shown, campaign: nil, contributions: [])
        #expect(optedOut.contains("turned off personalized ads"))
        #expect(!optedOut.contains("interested in"))
    }

    /// One slot with a CPC reserve of 0.1 and five campaigns, each meeting another fate: a
    /// winner (bid 1), one it outbids (0.4), one targeting France (5), one below the reserve
    /// (0.05) and one capped at one impression a day (3). Every ad at the prior's P(click).
    static func fiveFates() async throws -> (TestWorld, winner: Campaign, outbid: Campaign, elsewhere: Campaign, cheap: Campaign, capped: Campaign) {
        let world = try await TestWorld.make(configuration: Self.oneSlot(reserveCPC: 100_000))
        let winner = try await world.campaign(try await world.advertiser("Win"), bid: 1_000_000)
        try await world.ad(winner)
        let outbid = try await world.campaign(try await world.advertiser("Lose"), bid: 400_000)
        try await world.ad(outbid)
        let elsewhere = try await world.campaign(try await world.advertiser("FR"), bid: 5_000_000, targeting: Targeting(countries: ["fr"]))
        try await world.ad(elsewhere)
        let cheap = try await world.campaign(try await world.advertiser("Cheap"), bid: 50_000)
        try await world.ad(cheap)
        let capped = try await world.campaign(try await world.advertiser("Capped"), bid: 3_000_000, cap: FrequencyCap(impressions: 1, perHours: 24))
        try await world.ad(capped)
        world.publish()
        return (world, winner, outbid, elsewhere, cheap, capped)
    }

    /// Every campaign's fate on sampled decisions: won, outbid (with the least bid that would
    /// have won), targeting, below the reserve, capped.
    @Test func lossReasonsAreTalliedPerCampaign() async throws {
        let (world, winner, outbid, elsewhere, cheap, capped) = try await Self.fiveFates()
        let ingestor = EventIngestor(serving: world.serving)
        // (The rule-based order is not rebuilt in this test: every ad keeps the prior's P(click).)
        for i in 0..<5 {
            // Every user sees the capped campaign once; their next page then goes to the others.
            let first = try #require(try await world.decide("u\(i)").placements.first)
            #expect(first.campaignID == capped.id)
            _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: first.impressionToken))
            #expect(try await world.decide("u\(i)").placements.first?.campaignID == winner.id)
        }
        let tally = world.serving.losses
        #expect(tally.counts(of: winner.id).reasons == [.won: 5, .outbid: 5])
        #expect(tally.counts(of: capped.id).reasons == [.won: 5, .frequencyCap: 5])
        #expect(tally.counts(of: elsewhere.id).reasons == [.targeting: 10])
        #expect(tally.counts(of: cheap.id).reasons == [.belowReserve: 10])
        let lost = tally.counts(of: outbid.id)
        #expect(lost.reasons == [.outbid: 10])
        // The walk of the rule-based order ranks the slot's winner and the runner-up: the
        // outbid campaign ranks when it is the runner-up (the winner's pages), and then beating
        // the placed ad takes a bid one micro above the winner's (same predicted P(click)).
        #expect(lost.minimumBidsToWin == Array(repeating: 1_000_001, count: 5))
    }

    /// A campaign whose daily budget is spent, and one whose total budget is, lose every sampled
    /// decision to `.budget` while an affordable campaign wins; the next day the daily budget is
    /// back, the total is not.
    @Test func spentBudgetsAreTalliedAsBudget() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot())
        let daily = try await world.campaign(try await world.advertiser("Daily"), bid: 3_000_000, daily: 500_000)
        try await world.ad(daily)
        let total = try await world.campaign(try await world.advertiser("Total"), bid: 2_000_000, total: 500_000)
        try await world.ad(total)
        let affordable = try await world.campaign(try await world.advertiser("Affordable"), bid: 1_000_000)
        try await world.ad(affordable)
        world.publish()
        let ingestor = EventIngestor(serving: world.serving)
        // The two highest bids win in turn, and one click spends each one's budget: the second
        // price (the next bid, 2.0 then 1.0) is cut to the 0.5 left.
        for (i, campaign) in [daily, total].enumerated() {
            let placement = try #require(try await world.decide("u\(i)").placements.first)
            #expect(placement.campaignID == campaign.id)
            world.clock.advance(milliseconds: 2_000)
            let click = try await ingestor.ingest(IncomingEvent(type: .click, impressionToken: placement.impressionToken))
            #expect(click.outcome.chargedMicros == 500_000)
        }
        #expect(world.serving.spend(of: daily.id) == (500_000, 500_000))
        #expect(world.serving.spend(of: total.id) == (500_000, 500_000))
        for i in 2..<7 {
            #expect(try await world.decide("u\(i)").placements.first?.campaignID == affordable.id)
        }
        world.clock.advance(hours: 24)
        #expect(try await world.decide("u7").placements.first?.campaignID == daily.id)
        let tally = world.serving.losses
        #expect(tally.counts(of: daily.id).reasons == [.won: 2, .budget: 6])
        #expect(tally.counts(of: total.id).reasons == [.outbid: 1, .won: 1, .budget: 6])
        #expect(tally.counts(of: affordable.id).reasons == [.outbid: 3, .won: 5])
    }

    /// With an engagement cost the least bid to win prices only the advertiser's side: two ads
    /// of the same P(click) and P(hide) cost users the same, so the loser needs one micro over the
    /// winner's bid (values 2 × 1% − 0.5% and 1 × 1% − 0.5%: scaling the loser's total value
    /// would ask for 3).
    @Test func theLeastBidToWinLeavesTheEngagementCostAlone() async throws {
        var configuration = Self.oneSlot()
        configuration.engagement = EngagementCost(hideMicros: 250_000)
        let world = try await TestWorld.make(configuration: configuration)
        let winner = try await world.campaign(try await world.advertiser("Win"), bid: 2_000_000)
        try await world.ad(winner)
        let outbid = try await world.campaign(try await world.advertiser("Lose"), bid: 1_000_000)
        try await world.ad(outbid)
        world.publish()
        #expect(try await world.decide("u0").placements.map(\.campaignID) == [winner.id])
        #expect(world.serving.losses.counts(of: outbid.id).minimumBidsToWin == [2_000_001])
    }

    /// The trace names the best ads for anyone that won nothing, each with the rule that kept
    /// its campaign out (what `explain` shows as `notable_losers`), best first.
    @Test func theTraceNamesTheBestLosersAndWhy() async throws {
        let (world, winner, outbid, elsewhere, cheap, capped) = try await Self.fiveFates()
        let first = try #require(try await world.decide("u0").placements.first)
        #expect(first.campaignID == capped.id)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .impression, impressionToken: first.impressionToken))
        let decision = try await world.decide("u0")
        #expect(decision.placements.map(\.campaignID) == [winner.id])
        let losers = try #require(decision.trace?.notableLosers)
        // Values to anyone at the prior's 1%: 50,000, 30,000, (the winner's 10,000), 4,000 and 500 micros.
        #expect(losers.map(\.campaignID) == [elsewhere.id, capped.id, outbid.id, cheap.id])
        #expect(losers.map(\.reason) == [.targeting, .frequencyCap, .outbid, .belowReserve])
        #expect(losers.first?.valueMicros == 50_000 && losers.first?.bidMicros == 5_000_000)
    }

    /// The tally keeps a count per reason in a fixed array: each reason counts in its own
    /// place, another campaign's tally is its own, and the least bids to win keep the latest
    /// `bidSamples`.
    @Test func lossTallyCountsEachReasonInItsPlace() {
        #expect(LossReason.tallied == LossReason.allCases)
        let tally = LossTally()
        let campaign = CampaignID(7), other = CampaignID(8)
        for (i, reason) in LossReason.allCases.enumerated() {
            tally.record(Array(repeating: CampaignLoss(campaignID: campaign, reason: reason, minimumBidToWinMicros: nil, slot: 0), count: i + 1))
        }
        tally.record([CampaignLoss(campaignID: other, reason: .budget, minimumBidToWinMicros: nil, slot: 1)])
        let bids = LossTally.bidSamples + 5
        for bid in 0..<bids { tally.record([CampaignLoss(campaignID: campaign, reason: .outbid, minimumBidToWinMicros: Micros(bid), slot: 0)]) }
        let counts = tally.counts(of: campaign)
        var expected = Dictionary(uniqueKeysWithValues: LossReason.allCases.enumerated().map { ($0.element, $0.offset + 1) })
        expected[.outbid]! += bids
        #expect(counts.reasons == expected)
        #expect(counts.minimumBidsToWin == (5..<Int64(bids)).map { $0 })
        #expect(tally.counts(of: other) == LossTally.Counts(reasons: [.budget: 1]))
        #expect(tally.counts(of: CampaignID(9)) == LossTally.Counts())
    }

    /// A catalog's losses are kept by the campaign's state slot: each campaign counts at its
    /// own, and a campaign that takes over a slot (the one before it gone) starts from nothing,
    /// its least bids to win included.
    @Test func lossTallyKeepsEachCampaignAtItsSlot() {
        let tally = LossTally()
        let first = CampaignID(1), second = CampaignID(2), successor = CampaignID(3)
        tally.record([
            CampaignLoss(campaignID: first, reason: .budget, minimumBidToWinMicros: nil, slot: 0),
            CampaignLoss(campaignID: second, reason: .outbid, minimumBidToWinMicros: 5, slot: 4),
        ])
        tally.record([CampaignLoss(campaignID: first, reason: .outbid, minimumBidToWinMicros: 9, slot: 0)])
        #expect(tally.counts(of: first) == LossTally.Counts(reasons: [.budget: 1, .outbid: 1], minimumBidsToWin: [9]))
        #expect(tally.counts(of: second) == LossTally.Counts(reasons: [.outbid: 1], minimumBidsToWin: [5]))
        tally.record([CampaignLoss(campaignID: successor, reason: .won, minimumBidToWinMicros: nil, slot: 0)])
        #expect(tally.counts(of: successor) == LossTally.Counts(reasons: [.won: 1]))
        #expect(tally.counts(of: first) == LossTally.Counts())
        #expect(tally.counts(of: second) == LossTally.Counts(reasons: [.outbid: 1], minimumBidsToWin: [5]))
        // A campaign counted at a second slot keeps what it has there when its first is taken over.
        tally.record([CampaignLoss(campaignID: second, reason: .budget, minimumBidToWinMicros: nil, slot: 6)])
        tally.record([CampaignLoss(campaignID: successor, reason: .won, minimumBidToWinMicros: nil, slot: 4)])
        #expect(tally.counts(of: second) == LossTally.Counts(reasons: [.budget: 1]))
    }
}
