import Domain
import Events
import Foundation
@testable import Serving
import Simulator
import TestSupport
import Testing

@Suite struct ExplorationTests {
    static func oneSlot(exploration: ExplorationPolicy, reserveCPC: Micros = 0) -> ServingConfiguration {
        var configuration = ServingConfiguration()
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        configuration.exploration = exploration
        configuration.auction.reserveCPCMicros = reserveCPC
        return configuration
    }

    /// `count` equal-bid traffic ads, one per advertiser.
    static func equalAds(_ world: TestWorld, count: Int) async throws -> [Ad] {
        var ads: [Ad] = []
        for i in 0..<count {
            ads.append(try await world.ad(try await world.campaign(try await world.advertiser("A\(i)"), bid: 1_000_000)))
        }
        world.publish()
        return ads
    }

    /// Serves `decisions` pages to distinct users, reporting each impression; returns the ads shown.
    static func serve(_ world: TestWorld, decisions: Int) async throws -> [Placement] {
        let ingestor = EventIngestor(serving: world.serving)
        var placements: [Placement] = []
        for i in 0..<decisions {
            let decision = try await world.decide("u\(i)")
            for placement in decision.placements {
                _ = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
                placements.append(placement)
            }
            world.clock.advance(milliseconds: 1_000)
        }
        return placements
    }

    /// The issue's case: ten equal bids. The rule-based ranking alone shows one ad to everyone
    /// (ties go to the lowest id); with exploration every ad is shown, young ads only are
    /// explored, and the explored share stays near and under the configured share.
    @Test func tenEqualBidAdsAreAllShownAndTheShareIsBounded() async throws {
        let plain = try await TestWorld.make(configuration: Self.oneSlot(exploration: .off))
        _ = try await Self.equalAds(plain, count: 10)
        let plainShown = try await Self.serve(plain, decisions: 200)
        #expect(Set(plainShown.map(\.ad.id)).count == 1)
        #expect(plainShown.allSatisfy { $0.propensity == 1 && !$0.explored })

        let share = 0.2
        let world = try await TestWorld.make(configuration: Self.oneSlot(exploration: ExplorationPolicy(share: share, maxImpressions: 50)))
        let ads = try await Self.equalAds(world, count: 10)
        let placements = try await Self.serve(world, decisions: 1_000)
        #expect(Set(placements.map(\.ad.id)) == Set(ads.map(\.id)))
        let explored = placements.filter(\.explored)
        let observed = Double(explored.count) / Double(placements.count)
        // Each slot explores with P(share), and then shows another ad than the winner: at most
        // `share` in expectation, four standard errors of room.
        let room = 4 * (share * (1 - share) / Double(placements.count)).squareRoot()
        #expect(observed <= share + room)
        #expect(observed >= 0.1)
        // Explored ads were young: fewer than 50 impressions each when served.
        #expect(explored.allSatisfy { $0.candidate.impressions < 50 })
        #expect(explored.allSatisfy { $0.propensity > 0 && $0.propensity <= share })
        #expect(placements.filter { !$0.explored }.allSatisfy { $0.propensity >= 1 - share && $0.propensity <= 1 })
    }

    /// Exploration stops for an ad once it has `maxImpressions` impressions: when every ad has,
    /// exploring has nothing to offer, and the auction's winner is placed on every page,
    /// logged with propensity 1.
    @Test func matureAdsAreNotExplored() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot(exploration: ExplorationPolicy(share: 0.5, maxImpressions: 3)))
        let ads = try await Self.equalAds(world, count: 4)
        let early = try await Self.serve(world, decisions: 200)
        let counts = Dictionary(grouping: early, by: \.ad.id).mapValues(\.count)
        #expect(ads.allSatisfy { (counts[$0.id] ?? 0) >= 3 })
        #expect(early.filter(\.explored).allSatisfy { $0.candidate.impressions < 3 })
        let late = try await Self.serve(world, decisions: 100)
        #expect(late.allSatisfy { !$0.explored && $0.propensity == 1 && $0.ad.id == ads[0].id })
    }

    /// Two slots, both won by mature ads, and one young ad whose advertiser holds the first:
    /// it may only be offered in the first slot. The second slot has nothing to offer, so its
    /// winner is placed with propensity exactly 1; the first slot's winner, when it does not
    /// explore, with exactly 1 − share; an explored first slot shows the young ad, drawn with
    /// probability 1 among one option, so its propensity is the share.
    @Test func aYoungAdIsOfferedOnlyWhereItsAdvertiserHasNoOtherSlot() async throws {
        var configuration = Self.oneSlot(exploration: ExplorationPolicy(share: 0.3, maxImpressions: 3))
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 2)
        let world = try await TestWorld.make(configuration: configuration)
        let a = try await world.advertiser("A")
        let first = try await world.ad(try await world.campaign(a, bid: 1_000_000))
        let second = try await world.ad(try await world.campaign(try await world.advertiser("B"), bid: 900_000))
        world.publish()
        // Both mature (four reported impressions each, three make an ad mature) before the young ad arrives.
        _ = try await Self.serve(world, decisions: 4)
        let young = try await world.ad(try await world.campaign(a, bid: 500_000))
        world.publish()
        var placements: [Placement] = []
        for i in 0..<400 {
            // Not reported: the young ad stays young however often it is explored.
            placements += try await world.decide("v\(i)").placements
        }
        #expect(placements.count == 800)
        let shown = Set(placements.map(\.ad.id))
        #expect(shown == [first.id, second.id, young.id])
        #expect(placements.filter { $0.ad.id == second.id }.allSatisfy { $0.propensity == 1 && !$0.explored })
        #expect(placements.filter { $0.ad.id == first.id }.allSatisfy { $0.propensity == 1 - 0.3 && !$0.explored })
        let explored = placements.filter(\.explored)
        #expect(explored.allSatisfy { $0.ad.id == young.id && $0.propensity == 0.3 })
        // Each page's first slot explores with P(0.3): 120 of 400 expected, about 9 standard deviations of room.
        #expect(explored.count > 40 && explored.count < 200)
    }

    /// The logged propensity is the probability the policy placed the ad: for each ad, the mean
    /// of 1[placed] / propensity over many decisions from one state is 1 (inverse-propensity
    /// weighting is unbiased only then), and the policy's probabilities sum to 1.
    @Test func loggedPropensitiesAreThePolicysProbabilities() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot(exploration: ExplorationPolicy(share: 0.5)))
        let ads = try await Self.equalAds(world, count: 3)
        var weights: [AdID: Double] = [:]
        let n = 3_000
        for i in 0..<n {
            // No impressions are reported: every decision sees the same state.
            let placement = try #require(try await world.decide("u\(i)").placements.first)
            weights[placement.ad.id, default: 0] += 1 / placement.propensity
        }
        for ad in ads {
            let mean = (weights[ad.id] ?? 0) / Double(n)
            #expect(abs(mean - 1) < 0.12, "ad \(ad.id): mean 1[placed]/propensity \(mean)")
        }
    }

    /// q is the distribution an exploring slot is drawn from: over many choices, each option is
    /// chosen about as often as its mean logged q, and never with q 0. Thompson probabilities
    /// favour the better posterior, the unseen ad wins some draws, and a slot that does not
    /// explore, its winner outside the pool, draws nothing.
    @Test func exploringSlotsAreDrawnWithTheirLoggedQAndQFavoursTheBetterPosterior() throws {
        func pick(_ id: Int64, impressions: Int64, clicks: Int64) -> Pick {
            let ad = Ad(
                id: AdID(id), campaignID: CampaignID(id), format: .image, mediaURLs: [], caption: "", company: "c", product: "p", description: "",
                createdAt: Timestamp(milliseconds: 0))
            return Pick(candidate: Candidate(
                adID: AdID(id), campaignID: CampaignID(id), advertiserID: AdvertiserID(id), objective: .traffic, bidMicros: 1_000_000, ad: ad,
                adAgeHours: 0, impressions: impressions, clicks: clicks, conversions: 0, userCampaignImpressions: 0, adSlot: Int32(id)))
        }
        var rng = SplitMix64(seed: 11)
        // Three equal bids without a click, less likely to win the more impressions they have:
        // mean q near 0.54, 0.32 and 0.13 at 8 draws a choice.
        let spread = [pick(1, impressions: 0, clicks: 0), pick(2, impressions: 60, clicks: 0), pick(3, impressions: 200, clicks: 0)]
        let n = 10_000
        var chosen = [Int](repeating: 0, count: spread.count)
        var qSums = [Double](repeating: 0, count: spread.count)
        var drawnWithQZero = 0
        for _ in 0..<n {
            let choice = Exploration.choose(options: spread, explores: true, winner: AdID(1), draws: 8, rng: &rng)
            guard let index = choice.chosen else {
                Issue.record("an exploring slot drew nothing")
                return
            }
            if choice.q[index] == 0 { drawnWithQZero += 1 }
            chosen[index] += 1
            for (i, p) in choice.q.enumerated() { qSums[i] += p }
        }
        #expect(drawnWithQZero == 0)
        for i in spread.indices {
            let frequency = Double(chosen[i]) / Double(n)
            let meanQ = qSums[i] / Double(n)
            // Each option has a real chance, so a wrong draw (the most likely option, say) shows.
            #expect(meanQ > 0.05, "option \(i): mean q \(meanQ)")
            // 1[chosen] − q has mean 0 when q is what the slot was drawn with, and a standard
            // deviation of at most √(q̄(1 − q̄)): four standard errors of room.
            let room = 4 * (meanQ * (1 - meanQ) / Double(n)).squareRoot()
            #expect(abs(frequency - meanQ) <= room, "option \(i): chosen \(frequency) of the time, mean q \(meanQ)")
        }

        let options = [pick(1, impressions: 400, clicks: 2), pick(2, impressions: 400, clicks: 20), pick(3, impressions: 0, clicks: 0)]
        let q = Exploration.thompsonProbabilities(options, draws: 4_000, rng: &rng)
        // 5% observed beats 0.5% observed; the unseen ad (prior mean 1%, wide) wins sometimes.
        #expect(q[1] > q[0] && q[1] > 0.5 && q[2] > 0.01)
        // Not exploring, with the winner outside the pool: nothing is drawn.
        let idle = Exploration.choose(options: options, explores: false, winner: AdID(9), draws: 64, rng: &rng)
        #expect(idle.chosen == nil && idle.q.allSatisfy { $0 == 0 })
    }

    @Test func betaDrawsCentreOnThePosteriorMean() {
        var rng = SplitMix64(seed: 5)
        let prior = BetaPrior.click
        let n = 20_000
        let mean = (0..<n).reduce(0.0) { sum, _ in sum + prior.draw(successes: 5, trials: 100, using: &rng) } / Double(n)
        // Beta(6, 194): mean 0.03, standard deviation 0.012; the mean of 20,000 draws is within 0.0005.
        #expect(abs(mean - 0.03) < 0.0005)
        let small = (0..<n).reduce(0.0) { sum, _ in sum + BetaPrior(alpha: 0.5, beta: 0.5).draw(successes: 0, trials: 0, using: &rng) } / Double(n)
        #expect(abs(small - 0.5) < 0.01)
    }

    /// An ad with no click yet under the CTR prior draws from Beta(1, 99 + impressions) by
    /// inversion: the draws' empirical CDF follows 1 − (1 − x)^b at its quartiles and tails, and
    /// their mean is 1 / (1 + b). Two Gamma draws gave the same distribution, at several times the cost.
    @Test func betaDrawsWithNoSuccessFollowTheirExactDistribution() {
        var rng = SplitMix64(seed: 9)
        let n = 40_000
        for impressions in [Int64(0), 350] {
            let b = 99 + Double(impressions)
            let draws = (0..<n).map { _ in BetaPrior.click.draw(successes: 0, trials: impressions, using: &rng) }
            #expect(draws.allSatisfy { $0 > 0 && $0 < 1 })
            let mean = draws.reduce(0, +) / Double(n)
            // Standard deviation of one draw ≈ 1 / (1 + b): of the mean of 40,000, 0.5% of it.
            #expect(abs(mean * (1 + b) - 1) < 0.025, "mean \(mean) against \(1 / (1 + b))")
            for p in [0.05, 0.25, 0.5, 0.75, 0.95] {
                // The p-quantile of Beta(1, b): 1 − (1 − p)^(1/b).
                let x = 1 - pow(1 - p, 1 / b)
                let below = Double(draws.filter { $0 <= x }.count) / Double(n)
                // Binomial standard deviation at most 0.0025: 0.01 is four of them.
                #expect(abs(below - p) < 0.01, "b \(b): \(below) of the draws at or below the \(p)-quantile")
            }
        }
    }

    /// An explored ad did not win the auction: it pays the reserve, never above its bid.
    @Test func anExploredSlotPaysTheReserve() async throws {
        let world = try await TestWorld.make(configuration: Self.oneSlot(exploration: ExplorationPolicy(share: 0.5), reserveCPC: 100_000))
        _ = try await Self.equalAds(world, count: 4)
        let placements = try await Self.serve(world, decisions: 60)
        let explored = placements.filter(\.explored)
        #expect(!explored.isEmpty)
        #expect(explored.allSatisfy { $0.priceMicros == 100_000 })
        // The auction's winners pay the second price: the tied runner-up's full bid.
        #expect(placements.filter { !$0.explored }.allSatisfy { $0.priceMicros == 1_000_000 })
    }

    @Test func simulatorArmsExploreByName() throws {
        #expect(try Arms.named("baseline+explore").exploration == Arms.exploring)
        #expect(try Arms.named("baseline").exploration == .off)
        #expect(try Arms.named("ml+explore").exploration.share > 0)
        #expect(throws: AdServeError.self) { try Arms.named("random+explore") }
    }
}

/// P(conversion | click) at low volume: pooled across the advertiser's ads (empirical Bayes,
/// global → advertiser → ad) in the learned ranker's fallback; the control keeps the global prior.
@Suite struct PooledConversionTests {
    @Test func aNewAdStartsAtItsAdvertisersRateNotTheGlobalPrior() {
        let prior = BetaPrior.conversion
        // An advertiser whose ads converted 20 of 100 clicks; a new ad of it has no clicks.
        let pooled = prior.pooledMean(successes: 0, trials: 0, groupSuccesses: 20, groupTrials: 100)
        #expect(abs(pooled - 21.0 / 120.0) < 1e-12)
        // With no group evidence it is the global prior; with much of its own, mostly its own rate.
        #expect(prior.pooledMean(successes: 0, trials: 0, groupSuccesses: 0, groupTrials: 0) == prior.mean(successes: 0, trials: 0))
        let own = prior.pooledMean(successes: 20, trials: 2_000, groupSuccesses: 400, groupTrials: 2_000)
        #expect(abs(own - 0.01) < 0.002)
    }

    @Test func theLearnedFallbackPoolsAndTheControlDoesNot() async throws {
        var configuration = ServingConfiguration.payingBids
        configuration.adLoad = AdLoadPolicy(firstAfterPost: 3, minOrganicBetween: 4, maxAdsPerPage: 1)
        let world = try await TestWorld.make(configuration: configuration)
        let advertiser = try await world.advertiser("Shop")
        let seasoned = try await world.campaign(advertiser, objective: .conversions, bid: 10_000_000)
        try await world.ad(seasoned)
        world.publish()
        // Ten clicks, five conversions on the advertiser's first campaign.
        let ingestor = EventIngestor(serving: world.serving)
        for i in 0..<10 {
            let placement = try #require(try await world.decide("u\(i)").placements.first)
            world.clock.advance(milliseconds: 5_000)
            _ = try await ingestor.ingest(IncomingEvent(type: .click, impressionToken: placement.impressionToken))
            if i < 5 { _ = try await ingestor.ingest(IncomingEvent(type: .conversion, impressionToken: placement.impressionToken)) }
        }
        let fresh = try await world.campaign(advertiser, objective: .conversions, bid: 10_000_000)
        let ad = try await world.ad(fresh)
        world.publish()
        // The decision path fills the advertiser's totals into a conversion candidate (the
        // seasoned campaign paused, the new one is placed).
        _ = try await world.catalog.updateCampaign(seasoned.id) { $0.status = .paused }
        world.publish()
        let decision = try await world.decide("fresh-user")
        let considered = try #require(decision.trace?.considered.first { $0.candidate.campaignID == fresh.id })
        #expect(considered.candidate.adID == ad.id && considered.candidate.clicks == 0)
        #expect(considered.candidate.advertiserClicks == 10 && considered.candidate.advertiserConversions == 5)
        let pooled = RuleBasedRanker(poolsConversions: true).predict(considered.candidate, user: nil, context: FeedContext()).conversion
        let control = RuleBasedRanker().predict(considered.candidate, user: nil, context: FeedContext()).conversion
        // The advertiser's smoothed rate (5 + 1) / (10 + 20) = 0.2, against the global 0.05.
        #expect(abs(pooled - 0.2) < 1e-12)
        #expect(control == BetaPrior.conversion.mean(successes: 0, trials: 0))
    }
}
