import Domain
import Events
import Serving
import TestSupport
import Testing

/// Total value: the advertiser's expected value less P(hide) × the exchange rate.
@Suite struct EngagementCostTests {
    /// A winner whose impression costs users pays for that cost too: the least bid that keeps
    /// its total value at the next one's.
    @Test func theSecondPriceCoversTheWinnersEngagementCost() {
        // A: bid 1.00, P(click) 2% → 20,000 micros a impression, less a cost of 5,000 = 15,000.
        let a = Auction.Bid(objective: .traffic, bidMicros: 1_000_000, value: 15_000, cost: 5_000)
        let b = Auction.Bid(objective: .traffic, bidMicros: 500_000, value: 10_000)
        #expect(Auction.prices([a], runnerUp: b, rules: AuctionRules()) == [750_000])
        // Without the cost the same values price as before.
        #expect(Auction.prices([Auction.Bid(objective: .traffic, bidMicros: 1_000_000, value: 20_000)], runnerUp: b, rules: AuctionRules()) == [500_000])
    }

    static func world(hideMicros: Double) async throws -> (TestWorld, Ad, Ad) {
        var configuration = ServingConfiguration.payingBids
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        configuration.engagement = EngagementCost(hideMicros: hideMicros)
        let world = try await TestWorld.make(configuration: configuration)
        let annoying = try await world.ad(try await world.campaign(try await world.advertiser("Annoying"), bid: 1_000_000))
        let quiet = try await world.ad(try await world.campaign(try await world.advertiser("Quiet"), bid: 1_000_000))
        world.publish()
        // Twenty users see the first ad (the lower id wins the tie): five click it, ten hide it.
        let ingestor = EventIngestor(serving: world.serving)
        for i in 0..<20 {
            let placement = try #require(try await world.decide("h\(i)").placements.first)
            #expect(placement.ad.id == annoying.id)
            _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
            world.clock.advance(milliseconds: 5_000)
            if i < 5 { _ = try await ingestor.ingest(IncomingEvent(type: .click, impressionToken: placement.impressionToken)) }
            if (5..<15).contains(i) { _ = try await ingestor.ingest(IncomingEvent(type: .hide, impressionToken: placement.impressionToken)) }
        }
        world.publish()
        return (world, annoying, quiet)
    }

    /// The first ad is clicked more (smoothed CTR 6/120 = 5% against 1%) and hidden far more
    /// (P(hide) 11/70 = 15.7% against 2%). The control ranks it first; at 300,000 micros a hide
    /// its total value is 50,000 − 47,143 = 2,857 against the other's 10,000 − 6,000 = 4,000.
    @Test func theAdUsersHideLosesOnTotalValueAndWinsInTheControl() async throws {
        let (world, annoying, quiet) = try await Self.world(hideMicros: 300_000)
        let placed = try #require(try await world.decide("new").placements.first)
        #expect(placed.ad.id == quiet.id)
        #expect(abs(placed.expectedValueMicros - 4_000) < 1e-6)
        let (control, annoyingInControl, _) = try await Self.world(hideMicros: 0)
        #expect(try await control.decide("new").placements.first?.ad.id == annoyingInControl.id)
        _ = annoying
    }

    /// When every ad costs users more than it is worth, the slot stays empty: a new ad's
    /// P(hide) is the prior's 2%, its value 1,000,000 × 1% = 10,000 micros.
    @Test func aSlotWorthLessThanItCostsStaysEmpty() async throws {
        for (hideMicros, shown) in [(400_000.0, true), (600_000.0, false)] {
            var configuration = ServingConfiguration.payingBids
            configuration.engagement = EngagementCost(hideMicros: hideMicros)
            let world = try await TestWorld.make(configuration: configuration)
            try await world.ad(try await world.campaign(try await world.advertiser(), bid: 1_000_000))
            world.publish()
            let decision = try await world.decide("new")
            #expect(decision.placements.isEmpty == !shown, "at \(hideMicros) micros a hide")
        }
    }
}
