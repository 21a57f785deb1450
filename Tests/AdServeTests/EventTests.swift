import Domain
import Events
import Serving
import Storage
import TestSupport
import Testing

@Suite struct EventTests {
    /// Ingests as a person would: a click comes a couple of seconds after the ad was served.
    func ingest(_ world: TestWorld, _ type: EventType, _ placement: Placement) async throws -> EventOutcome {
        if type == .click { world.clock.advance(milliseconds: 2_000) }
        return try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: type, impressionToken: placement.impressionToken)).outcome
    }

    func spend(_ world: TestWorld, _ campaign: Campaign) -> (today: Micros, total: Micros) {
        world.serving.delivery.spend(of: campaign.id, snapshot: world.serving.catalog.snapshot, day: world.clock.now().day)
    }

    @Test(arguments: [
        // objective, bid, the event billed, charge per billed event
        (Objective.awareness, Int64(5_000_000), EventType.impression, Int64(5_000)),
        (.traffic, 700_000, .click, 700_000),
        (.conversions, 9_000_000, .conversion, 9_000_000),
    ])
    func eachObjectiveBillsItsEventExactlyOnce(objective: Objective, bid: Micros, billed: EventType, price: Micros) async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), objective: objective, bid: bid)
        try await world.ad(campaign)
        world.publish()
        let placement = try #require(try await world.decide("u").placements.first)
        for type in [EventType.impression, .click, .conversion] {
            let first = try await ingest(world, type, placement)
            #expect(!first.duplicate)
            #expect(first.chargedMicros == (type == billed ? price : 0))
            let again = try await ingest(world, type, placement)
            #expect(again == EventOutcome(duplicate: true, chargedMicros: 0))
        }
        #expect(spend(world, campaign) == (price, price))
        let report = try await Reports(store: world.store).campaign(campaign.id)
        #expect(report.totals == DeliveryCounters(impressions: 1, clicks: 1, conversions: 1, hides: 0, spendMicros: price))
    }

    @Test func clickWithoutReportedImpressionCountsTheImpression() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), objective: .awareness, bid: 3_000_000)
        try await world.ad(campaign)
        world.publish()
        let placement = try #require(try await world.decide("u").placements.first)
        _ = try await ingest(world, .click, placement)
        #expect(try await ingest(world, .impression, placement).duplicate)
        let report = try await Reports(store: world.store).campaign(campaign.id)
        #expect(report.totals.impressions == 1 && report.totals.clicks == 1 && report.totals.spendMicros == 3_000)
    }

    @Test func conversionNeedsAClick() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), objective: .conversions)
        try await world.ad(campaign)
        world.publish()
        let placement = try #require(try await world.decide("u").placements.first)
        await #expect(throws: AdServeError.self) { try await ingest(world, .conversion, placement) }
        _ = try await ingest(world, .click, placement)
        #expect(try await !ingest(world, .conversion, placement).duplicate)
    }

    @Test func exhaustedBudgetStopsServingAndIsNeverPassed() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        // CPC 0.4 with a daily budget of 1.0: the third click is cut to 0.2, then nothing serves.
        let campaign = try await world.campaign(try await world.advertiser(), objective: .traffic, bid: 400_000, daily: 1_000_000, total: 1_500_000)
        try await world.ad(campaign)
        world.publish()
        var charged: [Micros] = []
        for _ in 0..<3 {
            let placement = try #require(try await world.decide("u").placements.first)
            charged.append(try await ingest(world, .click, placement).chargedMicros)
        }
        #expect(charged == [400_000, 400_000, 200_000])
        #expect(spend(world, campaign) == (1_000_000, 1_000_000))
        #expect(try await world.decide("u").placements.isEmpty)
        // A token served before exhaustion and clicked later is recorded but not charged.
        // Next day the daily budget is back, but only 0.5 of the total is left.
        world.clock.advance(hours: 24)
        let placement = try #require(try await world.decide("u").placements.first)
        let late = try await ingest(world, .click, placement)
        #expect(late.chargedMicros == 400_000)
        let last = try #require(try await world.decide("u").placements.first)
        #expect(try await ingest(world, .click, last).chargedMicros == 100_000)
        #expect(spend(world, campaign).total == 1_500_000)
        #expect(try await world.decide("u").placements.isEmpty)
    }

    @Test func frequencyCapLimitsImpressionsPerWindow() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), cap: FrequencyCap(impressions: 2, perHours: 24))
        try await world.ad(campaign)
        world.publish()
        for _ in 0..<2 {
            let placement = try #require(try await world.decide("alice").placements.first)
            _ = try await ingest(world, .impression, placement)
        }
        #expect(try await world.decide("alice").placements.isEmpty)
        #expect(try await world.decide("bob").placements.count == 1)
        world.clock.advance(hours: 23)
        #expect(try await world.decide("alice").placements.isEmpty)
        world.clock.advance(hours: 2)
        #expect(try await world.decide("alice").placements.count == 1)
    }

    @Test func hiddenAdNeverReturnsToThatUser() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let acme = try await world.advertiser()
        let campaign = try await world.campaign(acme)
        let hidden = try await world.ad(campaign)
        let other = try await world.ad(campaign)
        world.publish()
        let first = try await world.decide("alice").placements
        let placement = try #require(first.first { $0.ad.id == hidden.id } ?? first.first)
        _ = try await ingest(world, .hide, placement)
        let hiddenID = placement.ad.id
        for _ in 0..<5 {
            #expect(try await world.decide("alice").placements.allSatisfy { $0.ad.id != hiddenID })
        }
        #expect(try await world.decide("alice").placements.map(\.ad.id) == [hiddenID == hidden.id ? other.id : hidden.id])
        #expect(try await world.decide("bob").placements.count == 1)
    }

    @Test func restartRestoresSpendCapsAndHides() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let acme = try await world.advertiser("Acme")
        let capped = try await world.campaign(acme, objective: .awareness, bid: 10_000_000, cap: FrequencyCap(impressions: 1, perHours: 24))
        try await world.ad(capped)
        let beta = try await world.advertiser("Beta")
        let budgeted = try await world.campaign(beta, objective: .traffic, bid: 500_000, daily: 500_000)
        try await world.ad(budgeted)
        world.publish()
        let page = try await world.decide("alice").placements
        #expect(Set(page.map(\.campaignID)) == [capped.id, budgeted.id])
        for placement in page {
            _ = try await ingest(world, .impression, placement)
            if placement.campaignID == budgeted.id { _ = try await ingest(world, .click, placement) }
        }
        _ = try await ingest(world, .hide, page[0])

        let restarted = try await world.reopened()
        #expect(spend(restarted, budgeted) == (500_000, 500_000))
        #expect(spend(restarted, capped) == (10_000, 10_000))
        #expect(try await restarted.decide("alice").placements.isEmpty)  // capped and budget spent
        // Duplicates are still recognised after the restart: the signing key persisted too.
        #expect(try await ingest(restarted, .impression, page[0]).duplicate)
        let report = try await Reports(store: restarted.store).campaign(budgeted.id)
        #expect(report.totals.clicks == 1 && report.totals.spendMicros == 500_000)
    }

    @Test func tokenFromAnotherServerSecretIsRejected() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let other = try await TestWorld.make(configuration: .payingBids)
        try await other.ad(try await other.campaign(try await other.advertiser()))
        other.publish()
        let foreign = try #require(try await other.decide("u").placements.first)
        await #expect(throws: AdServeError.self) { try await ingest(world, .impression, foreign) }
    }

    @Test func expiredTokenIsRefusedAndNotBilled() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), objective: .awareness, bid: 2_000_000)
        try await world.ad(campaign)
        world.publish()
        let placement = try #require(try await world.decide("u").placements.first)
        world.clock.advance(hours: 7 * 24 + 1)
        await #expect(throws: AdServeError.self) { try await ingest(world, .impression, placement) }
        #expect(spend(world, campaign).total == 0)
    }
}
