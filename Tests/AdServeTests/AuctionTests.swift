import Domain
import Events
import Foundation
import Serving
import TestSupport
import Testing

@Suite struct AuctionTests {
    /// One auction as data: the winners best first and the best candidate left out, each as
    /// (objective, bid in the bid's units, P(click), P(conversion | click)), and the prices
    /// expected in the bid's units.
    struct Fixture: CustomTestStringConvertible, Sendable {
        var name: String
        var winners: [(Objective, Micros, Double, Double)]
        var runnerUp: (Objective, Micros, Double, Double)?
        var rules = AuctionRules()
        var prices: [Micros]
        var testDescription: String { name }

        static func bid(_ b: (Objective, Micros, Double, Double)) -> Auction.Bid {
            let value = Prediction(click: b.2, conversion: b.3).expectedValuePerImpression(objective: b.0, bidMicros: b.1)
            return Auction.Bid(objective: b.0, bidMicros: b.1, value: value)
        }
    }

    static let fixtures: [Fixture] = [
        Fixture(
            name: "one slot, equal P(click): the winner pays the other's bid (truthful single-slot case)",
            winners: [(.traffic, 1_000_000, 0.02, 0)], runnerUp: (.traffic, 600_000, 0.02, 0), prices: [600_000]),
        Fixture(
            name: "one slot, the better ad wins on P(click) with the lower bid and pays what it needed",
            winners: [(.traffic, 500_000, 0.04, 0)], runnerUp: (.traffic, 1_000_000, 0.015, 0), prices: [375_000]),
        Fixture(
            name: "three slots: each pays to stay above the next",
            winners: [(.traffic, 1_000_000, 0.03, 0), (.traffic, 1_000_000, 0.02, 0), (.traffic, 1_000_000, 0.01, 0)],
            runnerUp: (.traffic, 1_000_000, 0.005, 0), prices: [666_667, 500_000, 500_000]),
        Fixture(
            name: "CPM above CPC above CPA: prices per 1,000 impressions, per click, per conversion",
            winners: [(.awareness, 5_000_000, 0, 0), (.traffic, 250_000, 0.01, 0)], runnerUp: (.conversions, 10_000_000, 0.01, 0.01),
            prices: [2_500_000, 100_000]),
        Fixture(
            name: "CPA winner priced against a CPM runner-up",
            winners: [(.conversions, 10_000_000, 0.02, 0.05)], runnerUp: (.awareness, 8_000_000, 0, 0), prices: [8_000_000]),
        Fixture(
            name: "a tie in value: the winner pays its bid",
            winners: [(.traffic, 1_000_000, 0.02, 0)], runnerUp: (.traffic, 1_000_000, 0.02, 0), prices: [1_000_000]),
        Fixture(
            name: "no competitor: the reserve",
            winners: [(.traffic, 1_000_000, 0.02, 0)], runnerUp: nil, rules: AuctionRules(reserveCPCMicros: 50_000), prices: [50_000]),
        Fixture(
            name: "no competitor and no reserve: free",
            winners: [(.awareness, 3_000_000, 0, 0)], runnerUp: nil, prices: [0]),
        Fixture(
            name: "a weak runner-up: the reserve is the floor",
            winners: [(.traffic, 1_000_000, 0.02, 0)], runnerUp: (.traffic, 10_000, 0.02, 0), rules: AuctionRules(reserveCPCMicros: 50_000),
            prices: [50_000]),
        Fixture(
            name: "first price: every winner pays its bid",
            winners: [(.traffic, 1_000_000, 0.03, 0), (.awareness, 2_000_000, 0, 0)], runnerUp: (.traffic, 100_000, 0.01, 0),
            rules: AuctionRules(pricing: .firstPrice), prices: [1_000_000, 2_000_000]),
    ]

    @Test(arguments: fixtures)
    func pricesFollowTheFixture(_ fixture: Fixture) {
        let prices = Auction.prices(fixture.winners.map(Fixture.bid), runnerUp: fixture.runnerUp.map(Fixture.bid), rules: fixture.rules)
        #expect(prices == fixture.prices)
    }

    /// Random auctions: every price lies between the reserve and the bid, and raising a
    /// competitor's bid never lowers anyone's price.
    @Test func pricesStayBetweenReserveAndBidAndRiseWithCompetitorsBids() {
        var rng = SplitMix64(seed: 5)
        let rules = AuctionRules(reserveCPMMicros: 500_000, reserveCPCMicros: 20_000, reserveCPAMicros: 200_000)
        for _ in 0..<2_000 {
            var bids = (0..<Int.random(in: 2...5, using: &rng)).map { _ -> Auction.Bid in
                let objective = Objective.allCases.randomElement(using: &rng)!
                let bid = rules.reserve(objective) + Micros.random(in: 0...5_000_000, using: &rng)
                let prediction = Prediction(click: Double.random(in: 0.001...0.1, using: &rng), conversion: Double.random(in: 0.01...0.2, using: &rng))
                return Auction.Bid(objective: objective, bidMicros: bid, value: prediction.expectedValuePerImpression(objective: objective, bidMicros: bid))
            }
            bids.sort { $0.value > $1.value }
            let runnerUp = bids.removeLast()
            let prices = Auction.prices(bids, runnerUp: runnerUp, rules: rules)
            for (bid, price) in zip(bids, prices) {
                #expect(price <= bid.bidMicros)
                #expect(price >= rules.reserve(bid.objective))
            }
            // One competitor — a winner below the first, or the runner-up — bids more without
            // passing the one above it: no price falls.
            var all = bids + [runnerUp]
            let k = Int.random(in: 1..<all.count, using: &rng)
            let raise = Double.random(in: 1...max(1, all[k - 1].value / all[k].value), using: &rng)
            let higher = Micros(Double(all[k].bidMicros) * raise)
            // Its value grows with its bid (same predictions), so it stays under the one above.
            all[k].value *= Double(higher) / Double(all[k].bidMicros)
            all[k].bidMicros = higher
            let after = Auction.prices(Array(all.dropLast()), runnerUp: all.last, rules: rules)
            #expect(zip(prices, after).allSatisfy { $0 <= $1 })
        }
    }

    /// Awareness is priced per 1,000 impressions and charged per impression, rounded up: a
    /// reserve of 1,500 per 1,000 is never undercut by a 1-micro impression.
    @Test func awarenessIsChargedPerImpressionRoundedUp() {
        #expect(Objective.awareness.pricePerBilledEvent(bid: 1_500) == 2)
        #expect(Objective.awareness.pricePerBilledEvent(bid: 2_000_000) == 2_000)
        #expect(Objective.awareness.pricePerBilledEvent(bid: 1) == 1)
        #expect(Objective.traffic.pricePerBilledEvent(bid: 1_234) == 1_234)
    }

    /// Through the whole path: the token carries the second price, a click is charged that
    /// price and the report's CPC says so; a campaign bidding under the reserve is not served.
    @Test func theSecondPriceTravelsInTheTokenAndIsChargedAndReported() async throws {
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        configuration.auction = AuctionRules(reserveCPCMicros: 100_000)
        let world = try await TestWorld.make(configuration: configuration)
        // No history: both ads are predicted the prior's P(click), so values order by bid.
        let high = try await world.campaign(try await world.advertiser("High"), bid: 1_000_000)
        let highAd = try await world.ad(high)
        let low = try await world.campaign(try await world.advertiser("Low"), bid: 600_000)
        try await world.ad(low)
        let under = try await world.campaign(try await world.advertiser("Under"), bid: 90_000)
        try await world.ad(under)
        world.publish()

        let decision = try await world.decide("u1")
        let placement = try #require(decision.placements.first)
        #expect(decision.placements.count == 1)
        #expect(placement.ad.id == highAd.id)
        #expect(placement.priceMicros == 600_000)
        let token = try world.serving.engine.signer.verify(placement.impressionToken, now: world.clock.now())
        #expect(token.priceMicros == 600_000)

        let ingestor = EventIngestor(serving: world.serving)
        _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
        world.clock.advance(milliseconds: 5_000)
        _ = try await ingestor.ingest(IncomingEvent(type: .click, impressionToken: placement.impressionToken))
        let report = try await Reports(store: world.store).campaign(high.id)
        #expect(report.totals.clicks == 1)
        #expect(report.totals.spendMicros == 600_000)

        // The campaign under the reserve is never eligible, even alone.
        _ = try await world.catalog.updateCampaign(high.id) { $0.status = .paused }
        _ = try await world.catalog.updateCampaign(low.id) { $0.status = .paused }
        world.publish()
        for i in 0..<5 { #expect(try await world.decide("u\(i + 2)").placements.isEmpty) }
    }

    /// Equal values: the lower ad id wins, and pays its full bid (the other would have tied).
    @Test func tiesGoToTheLowerAdIDAtTheFullBid() async throws {
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        let world = try await TestWorld.make(configuration: configuration)
        let first = try await world.ad(try await world.campaign(try await world.advertiser("A"), bid: 700_000))
        try await world.ad(try await world.campaign(try await world.advertiser("B"), bid: 700_000))
        world.publish()
        for i in 0..<3 {
            let placement = try #require(try await world.decide("u\(i)").placements.first)
            #expect(placement.ad.id == first.id)
            #expect(placement.priceMicros == 700_000)
        }
    }
}
