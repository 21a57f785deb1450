import Domain
import Foundation
import SQLiteStorage
@testable import Serving
@testable import Simulator
import Storage
import TestSupport
import Testing

/// Budget-split experiments: each arm a separate market with its share of every budget, and
/// the comparisons the report draws between arms.
@Suite struct BudgetSplitTests {
    @Test func slicesMapCopiesBackToTheirOriginals() {
        let slices = (0..<3).map { CampaignSlice(index: $0, count: 3) }
        for id: Int64 in [1, 2, 17, 1_000] {
            let copies = slices.map { $0.copy(of: id) }
            #expect(Set(copies).count == 3)
            for (slice, copy) in zip(slices, copies) {
                #expect(CampaignSlice.original(of: copy, count: 3) == id)
                #expect(slice.contains(CampaignID(copy)))
                #expect(slices.filter { $0.contains(CampaignID(copy)) }.count == 1)
            }
        }
    }

    @Test func splitBudgetsAddUpToTheOriginalsInProportionToTraffic() throws {
        let world = World(size: World.Size(users: 300, ads: 100), seed: 4, start: Simulation.start, kind: .topics)
        let shares = [0.3, 0.7]
        let split = Simulation.splitBudgets(world.batch, shares: shares)
        #expect(split.campaigns.count == 2 * world.batch.campaigns.count)
        #expect(split.ads.count == 2 * world.batch.ads.count)
        #expect(split.advertisers.count == 2 * world.batch.advertisers.count)
        #expect(Set(split.advertisers.map(\.keyHash)).count == split.advertisers.count)
        let copies = Dictionary(grouping: split.campaigns) { CampaignSlice.original(of: $0.id.rawValue, count: 2) }
        for original in world.batch.campaigns {
            let pair = try #require(copies[original.id.rawValue]).sorted { $0.id.rawValue < $1.id.rawValue }
            #expect(pair.count == 2)
            #expect(pair.map(\.dailyBudgetMicros).reduce(0, +) == original.dailyBudgetMicros)
            #expect(pair.map(\.totalBudgetMicros).reduce(0, +) == original.totalBudgetMicros)
            #expect(abs(Double(pair[0].dailyBudgetMicros) - 0.3 * Double(original.dailyBudgetMicros)) <= 1)
            #expect(pair.allSatisfy { $0.bidMicros == original.bidMicros && $0.objective == original.objective })
            // Each copy belongs to its arm's copy of the advertiser.
            for (slice, copy) in pair.enumerated() {
                #expect(copy.advertiserID.rawValue == CampaignSlice(index: slice, count: 2).copy(of: original.advertiserID.rawValue))
            }
        }
        // Every ad's copy sits in the campaign copy of the same arm.
        for ad in split.ads {
            let slice = Int((ad.id.rawValue - 1) % 2)
            #expect(CampaignSlice(index: slice, count: 2).contains(ad.campaignID))
        }
    }

    /// An A/A run with split budgets: each arm serves only its own copies, no copy passes its
    /// own share of the budget, money adds up, and the report compares the second arm with the
    /// first.
    @Test func armsServeOnlyTheirSliceAndStayWithinTheirBudgets() async throws {
        var c = SimulatorTests.configuration(seed: 5, days: 2)
        c.arms = ["baseline", "baseline"]
        let logs = LineCollector()
        let outcome = try await Simulation(configuration: c).run(log: { logs.add($0) })
        let report = outcome.report
        #expect(report.budgetMode == "split")
        #expect(report.historyMode == "pooled")
        #expect(Set(report.arms.keys) == ["baseline", "baseline-2"])
        let impressions = logs.lines.filter { $0.kind == .impression }
        #expect(impressions.count > 1_000)
        for line in impressions {
            let campaign = try #require(line.features?.campaignId)
            let arm = line.arm == "baseline" ? 0 : 1
            #expect(CampaignSlice(index: arm, count: 2).contains(CampaignID(campaign)), "\(line.arm ?? "-") served campaign \(campaign)")
        }
        #expect(outcome.storeSpendMicros == outcome.chargedMicros)
        #expect(outcome.maxOverspendMicros <= 0)
        #expect(report.budgets.allSatisfy { $0.maxOverspendMicros <= 0 })
        #expect(report.campaigns == SimulatorTests.configuration().size.campaigns + SimulatorTests.configuration().size.newCampaigns)

        let comparison = try #require(report.comparisons["baseline-2"])
        #expect(comparison.control == "baseline")
        #expect(report.comparisons["baseline"] == nil)
        for lift in [comparison.revenuePerUser, comparison.expectedRevenuePerUser, comparison.ctr, comparison.sessionLengthS] {
            let lift = try #require(lift)
            #expect(lift.ci95[0] < lift.relative && lift.relative < lift.ci95[1])
        }
        #expect(report.arms.values.allSatisfy { $0.expectedRevenueMicros > 0 })
    }

    @Test func anImpressionsExpectedChargeIsItsPricePerBilledEventTimesThatEventsProbability() {
        // CPM: a 2,500,000-micro bid is 2,500 micros per impression, charged whatever the user does.
        #expect(RunState.expectedCharge(.awareness, price: 2_500_000, pClick: 0.02, pConversion: 0.1) == 2_500)
        #expect(RunState.expectedCharge(.traffic, price: 500_000, pClick: 0.02, pConversion: 0.1) == 10_000)
        #expect(abs(RunState.expectedCharge(.conversions, price: 10_000_000, pClick: 0.02, pConversion: 0.1) - 20_000) < 1e-6)
    }

    /// Pooled history: an event on one arm's copy of an ad counts in every copy's counters
    /// (and its advertiser's pooled conversion totals in every copy of the advertiser), while
    /// the spend stays the charged copy's. Per arm: the other copy hears nothing.
    @Test(arguments: [1, 2]) func pooledHistoryCountsAnEventForEveryCopyButChargesOnlyItsOwn(historyCopies: Int) async throws {
        let clock = ManualClock(TestWorld.start)
        let world = World(size: World.Size(users: 50, ads: 200), seed: 2, start: clock.now())
        let database = TemporaryDatabase()
        let store = try SQLiteStore(path: database.path, durability: .scratch)
        try await store.importBatch(Simulation.splitBudgets(world.batch, shares: [0.5, 0.5]))
        var configuration = ServingConfiguration()
        configuration.historyCopies = historyCopies
        let serving = try await DecisionService.open(store: store, clock: clock, configuration: configuration)
        let snapshot = serving.catalog.snapshot
        let original = try #require(world.batch.campaigns.first { $0.objective == .conversions })
        let ad = try #require(world.batch.ads.first { $0.campaignID == original.id })
        let (mine, theirs) = (CampaignSlice(index: 0, count: 2), CampaignSlice(index: 1, count: 2))
        let user = world.userIDs[0]
        for (type, price) in [(EventType.impression, Micros(0)), (.click, 0), (.conversion, 3_000_000)] {
            serving.delivery.apply(
                EventRecord(
                    placementKey: "p/\(type)", type: type, userID: user, adID: AdID(mine.copy(of: ad.id.rawValue)),
                    campaignID: CampaignID(mine.copy(of: original.id.rawValue)), decisionID: "d", priceMicros: price, at: clock.now()),
                charged: price, snapshot: snapshot)
        }
        let counters = serving.delivery.state.withLock { s in
            [mine, theirs].map { s.ads[Int(snapshot.adSlots[AdID($0.copy(of: ad.id.rawValue))]!)] }
        }
        let advertisers = serving.delivery.state.withLock { s in
            [mine, theirs].map { s.advertisers[$0.copy(of: original.advertiserID.rawValue)] ?? DeliveryState.RateTotals() }
        }
        #expect(counters[0].impressions == 1 && counters[0].clicks == 1 && counters[0].conversions == 1)
        #expect(advertisers[0].clicks == 1 && advertisers[0].conversions == 1)
        let heard: Int64 = historyCopies == 2 ? 1 : 0
        #expect(counters[1].impressions == heard && counters[1].clicks == heard && counters[1].conversions == heard)
        #expect(advertisers[1].clicks == heard && advertisers[1].conversions == heard)
        // Money is the charged copy's alone.
        #expect(serving.spend(of: CampaignID(mine.copy(of: original.id.rawValue))).total == 3_000_000)
        #expect(serving.spend(of: CampaignID(theirs.copy(of: original.id.rawValue))).total == 0)
    }

    /// `simulate --pacing` steps the pacer as the server does: the campaigns that an unpaced
    /// day exhausts early (their last impression hours before midnight) are spread over the
    /// day, so they serve later; and no budget is passed either way.
    @Test func pacedRunsSpreadTheCampaignsThatWouldRunOutEarly() async throws {
        func lastImpressions(pacing: Bool) async throws -> [Int64: Int64] {
            var c = SimulatorTests.configuration(seed: 5, days: 1)
            c.size = World.Size(users: 3_000, ads: 300)
            c.arms = ["baseline"]
            c.pacing = pacing ? BudgetPacer.Settings() : nil
            let logs = LineCollector()
            let outcome = try await Simulation(configuration: c).run(log: { logs.add($0) })
            #expect(outcome.maxOverspendMicros <= 0)
            var last: [Int64: Int64] = [:]
            for line in logs.lines where line.kind == .impression {
                guard let campaign = line.features?.campaignId else { continue }
                last[campaign] = max(last[campaign] ?? 0, line.timeMs)
            }
            return last
        }
        let unpaced = try await lastImpressions(pacing: false)
        let paced = try await lastImpressions(pacing: true)
        let dayStart = Simulation.start.milliseconds
        let evening = dayStart + 18 * Timestamp.millisecondsPerHour
        let early = unpaced.filter { $0.value < evening }.map(\.key)
        #expect(early.count >= 3, "the unpaced day should exhaust some campaigns early")
        let hours = { (times: [Int64: Int64]) in early.map { Double((times[$0] ?? dayStart) - dayStart) / 3_600_000 }.reduce(0, +) / Double(early.count) }
        #expect(hours(paced) > hours(unpaced) + 2, "paced: \(hours(paced)) h, unpaced: \(hours(unpaced)) h")
    }

    @Test func sharedBudgetsServeOneCatalog() async throws {
        var c = SimulatorTests.configuration(seed: 5, days: 1)
        c.arms = ["baseline", "baseline"]
        c.budgets = .shared
        let logs = LineCollector()
        let outcome = try await Simulation(configuration: c).run(log: { logs.add($0) })
        #expect(outcome.report.budgetMode == "shared")
        let byArm = Dictionary(grouping: logs.lines.filter { $0.kind == .impression }, by: { $0.arm ?? "" })
        // Both arms draw on the same campaigns: the ids served overlap.
        let a = Set(byArm["baseline"]?.compactMap { $0.features?.campaignId } ?? [])
        let b = Set(byArm["baseline-2"]?.compactMap { $0.features?.campaignId } ?? [])
        #expect(!a.intersection(b).isEmpty)
        #expect(outcome.storeSpendMicros == outcome.chargedMicros)
    }

    /// The delta-method lift: a known ratio of means, and an interval that widens with the
    /// arms' variances and is empty of noise when they have none.
    @Test func liftOfTwoMeansAndItsInterval() throws {
        let control = UserEstimate.mean([1, 2, 3, 4, 5])  // mean 3
        let treatment = UserEstimate.mean([2, 3, 4, 5, 6])  // mean 4
        let lift = try #require(treatment.lift(over: control))
        #expect(abs(lift.relative - 1.0 / 3.0) < 1e-12)
        // var of each mean: 2.5 / 5 = 0.5; relative variance 0.5/16 + 0.5/9.
        let half = 1.96 * (4.0 / 3.0) * (0.5 / 16 + 0.5 / 9).squareRoot()
        #expect(abs(lift.ci95[0] - (1.0 / 3.0 - half)) < 1e-12 && abs(lift.ci95[1] - (1.0 / 3.0 + half)) < 1e-12)
        let exact = try #require(UserEstimate.mean([4, 4, 4]).lift(over: .mean([2, 2, 2])))
        #expect(exact.relative == 1 && exact.ci95 == [1, 1])
        #expect(UserEstimate.mean([1, 2]).lift(over: .mean([0, 0])) == nil)
        // A ratio of sums over users: Σclicks / Σimpressions.
        let ctr = UserEstimate.ratio([1, 0, 2], [10, 10, 20])
        #expect(abs(ctr.value - 0.075) < 1e-12 && ctr.variance > 0)
    }

    @Test func fullArmExploresAndCountsHides() throws {
        let full = try Arms.named("full")
        #expect(full.exploration == Arms.exploring)
        #expect(full.engagement.isOn)
        #expect(Arms.problem("full+explore") != nil)
        #expect(try Arms.named("ml").engagement.isOn == false)
    }
}
