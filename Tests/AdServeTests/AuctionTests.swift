import Domain
import Events
import Foundation
import Serving
import TestSupport
import Testing

@Suite struct AuctionTests {
    /// One auction as data (`Tests/Fixtures/auctions.json`): the page's slots, the reserves and
    /// pricing, the bidders — each its own campaign and ad, created in the order listed, so the
    /// first listed has the lower ad id — and what must come out: the winning ads best first
    /// and the price each pays in its bid's units, with the arithmetic in `why`.
    struct Fixture: Decodable, Sendable, CustomTestStringConvertible {
        struct Bidder: Decodable, Sendable {
            var ad: String
            var advertiser: String
            var objective: Objective
            var bidMicros: Micros
            var pClick: Double
            var pConversion: Double

            enum CodingKeys: String, CodingKey {
                case ad, advertiser, objective
                case bidMicros = "bid_micros"
                case pClick = "p_click"
                case pConversion = "p_conversion"
            }
        }

        var name: String
        var slots: Int
        var reserveCPMMicros: Micros?
        var reserveCPCMicros: Micros?
        var reserveCPAMicros: Micros?
        /// "second" (the default) or "first".
        var pricing: String?
        var bidders: [Bidder]
        var winners: [String]
        var pricesMicros: [Micros]
        var why: String
        var testDescription: String { name }

        enum CodingKeys: String, CodingKey {
            case name, slots, pricing, bidders, winners, why
            case reserveCPMMicros = "reserve_cpm_micros"
            case reserveCPCMicros = "reserve_cpc_micros"
            case reserveCPAMicros = "reserve_cpa_micros"
            case pricesMicros = "prices_micros"
        }

        /// The fixture's pricing and reserves; nil for an unknown pricing.
        var rules: AuctionRules? {
            AuctionRules.Pricing(rawValue: pricing ?? AuctionRules.Pricing.secondPrice.rawValue).map {
                AuctionRules(
                    pricing: $0, reserveCPMMicros: reserveCPMMicros ?? 0, reserveCPCMicros: reserveCPCMicros ?? 0,
                    reserveCPAMicros: reserveCPAMicros ?? 0)
            }
        }

        func bidder(_ label: String) -> Bidder? { bidders.first { $0.ad == label } }

        static func load() throws -> [Fixture] {
            let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/auctions.json")
            return try JSONDecoder().decode([Fixture].self, from: Data(contentsOf: url))
        }
    }

    /// Predicts what the ad's caption says: "P(click) P(conversion | click)". User-dependent (the
    /// default), so every eligible ad is scored for the request, with no retriever.
    struct FixtureRanker: Ranker {
        func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
            let numbers = candidate.ad.caption.split(separator: " ").compactMap { Double($0) }
            return Prediction(click: numbers.first ?? 0, conversion: numbers.count > 1 ? numbers[1] : 0)
        }
    }

    /// The fixture file itself: all of it decodes, names and ad labels are unique, one price per
    /// winner, each expected price between the reserve and the bid, and a CPM price a whole
    /// number of micros per impression (a placement carries the price per billed event, so a
    /// CPM price is compared after dividing by 1,000: only a whole one is checked exactly).
    @Test func auctionFixturesAreWellFormed() throws {
        let fixtures = try Fixture.load()
        #expect(fixtures.count >= 12)
        #expect(Set(fixtures.map(\.name)).count == fixtures.count)
        for fixture in fixtures {
            let rules = try #require(fixture.rules, "\(fixture.name)")
            #expect(fixture.slots >= 1, "\(fixture.name)")
            #expect(Set(fixture.bidders.map(\.ad)).count == fixture.bidders.count, "\(fixture.name)")
            #expect(fixture.winners.count <= fixture.slots, "\(fixture.name)")
            #expect(fixture.pricesMicros.count == fixture.winners.count, "\(fixture.name)")
            for (label, price) in zip(fixture.winners, fixture.pricesMicros) {
                let bidder = try #require(fixture.bidder(label), "\(fixture.name): no bidder \(label)")
                #expect(price <= bidder.bidMicros, "\(fixture.name): \(label)")
                #expect(price >= rules.reserve(bidder.objective), "\(fixture.name): \(label)")
                if bidder.objective == .awareness { #expect(price % 1000 == 0, "\(fixture.name): \(label)") }
            }
        }
    }

    /// Each auction of `Tests/Fixtures/auctions.json` through the real decision path: a world
    /// with one advertiser per label, one campaign and ad per bidder (its predictions in the
    /// caption, read by `FixtureRanker`), one page decided. The winners and their prices are
    /// the fixture's; whatever the fixture, every price lies between the reserve and the bid,
    /// the token carries it, and no advertiser wins twice.
    @Test(arguments: try Fixture.load())
    func auctionsDecideAsTheFixtureSays(_ fixture: Fixture) async throws {
        let rules = try #require(fixture.rules)
        try #require(fixture.pricesMicros.count == fixture.winners.count)
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: fixture.slots)
        configuration.auction = rules
        let world = try await TestWorld.make(configuration: configuration, ranker: FixtureRanker())
        var advertisers: [String: Advertiser] = [:]
        var labels: [AdID: String] = [:]
        for bidder in fixture.bidders {
            let advertiser: Advertiser
            if let known = advertisers[bidder.advertiser] {
                advertiser = known
            } else {
                advertiser = try await world.advertiser("Advertiser \(bidder.advertiser)")
                advertisers[bidder.advertiser] = advertiser
            }
            let campaign = try await world.campaign(advertiser, objective: bidder.objective, bid: bidder.bidMicros)
            let ad = try await world.ad(campaign, caption: "\(bidder.pClick) \(bidder.pConversion)")
            labels[ad.id] = bidder.ad
        }
        world.publish()

        // Enough organic posts for every slot: 3, 7, 11, …
        let placements = try await world.decide("u1", organicCount: 40).placements
        let winners = placements.map { labels[$0.ad.id] ?? "?" }
        #expect(winners == fixture.winners)
        // Placements carry the price per billed event: per impression for CPM.
        var expected: [Micros] = []
        for (label, price) in zip(fixture.winners, fixture.pricesMicros) {
            let bidder = try #require(fixture.bidder(label))
            expected.append(bidder.objective.pricePerBilledEvent(bid: price))
        }
        #expect(placements.map(\.priceMicros) == expected)

        for placement in placements {
            let objective = placement.objective
            #expect(placement.priceMicros <= objective.pricePerBilledEvent(bid: placement.candidate.bidMicros))
            #expect(placement.priceMicros >= objective.pricePerBilledEvent(bid: rules.reserve(objective)))
            let token = try world.serving.engine.signer.verify(placement.impressionToken, now: world.clock.now())
            #expect(token.priceMicros == placement.priceMicros)
        }
        #expect(Set(placements.map(\.advertiserID)).count == placements.count)
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
