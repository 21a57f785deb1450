import Domain
import Events
import Foundation
@testable import Serving
import Storage
import TestSupport
import Testing

@Suite struct PacingTests {
    /// A day whose traffic peaks in the evening at four times its night-time trough.
    static let diurnal: [Double] = (0..<24).map { 1 + 0.6 * sin(2 * Double.pi * Double($0 - 13) / 24) }

    @Test func trafficCurveSharesAddUpOverTheDay() {
        let curve = TrafficCurve(hourly: Self.diurnal)
        let midnight = Timestamp(milliseconds: 20_000 * Timestamp.millisecondsPerDay)
        #expect(curve.shareElapsed(at: midnight) == 0)
        #expect(abs(curve.shareElapsed(at: midnight.adding(hours: 24).adding(milliseconds: -1)) - 1) < 1e-6)
        let noon = curve.shareElapsed(at: midnight.adding(hours: 12))
        #expect(abs(noon - Self.diurnal[0..<12].reduce(0, +) / Self.diurnal.reduce(0, +)) < 1e-12)
        #expect(abs(TrafficCurve.flat.shareElapsed(at: midnight.adding(hours: 6)) - 0.25) < 1e-12)
    }

    @Test func aCampaignAheadOfItsTargetIsThrottledAndOneBehindIsLetThrough() {
        let pacer = BudgetPacer()
        #expect(pacer.nextRate(1, spentToday: 510, target: 500, dailyBudget: 1_000) == 0.9)
        #expect(pacer.nextRate(0.5, spentToday: 490, target: 500, dailyBudget: 1_000) == 0.55)
        #expect(pacer.nextRate(1, spentToday: 600, target: 500, dailyBudget: 1_000) == 0.5)
        #expect(pacer.nextRate(0.25, spentToday: 400, target: 500, dailyBudget: 1_000) == 0.5)
        #expect(pacer.nextRate(1, spentToday: 0, target: 500, dailyBudget: 1_000) == 1)
        #expect(pacer.nextRate(0.5, spentToday: 500, target: 500, dailyBudget: 1_000) == 0.5)
        #expect(pacer.nextRate(0.001, spentToday: 900, target: 500, dailyBudget: 1_000) == 0.001)
    }

    /// Two simulated days through the real decision path: one campaign whose unthrottled wins
    /// would spend three times its daily budget, traffic following `diurnal`, a pacing step
    /// every simulated minute. The first day teaches the pacer the traffic's shape; on the
    /// second, at the end of every hour, spend is within 5% of the daily budget of the target
    /// (the budget × the learned share of the day gone by), and the budget lasts into the last hour.
    @Test func aSimulatedDayTracksTheTargetCurveWithinFivePercentEveryHour() async throws {
        var configuration = ServingConfiguration.payingBids
        configuration.pacing = BudgetPacer.Settings()
        let start = Timestamp(milliseconds: (TestWorld.start.day + 1) * Timestamp.millisecondsPerDay)
        let world = try await TestWorld.make(clock: ManualClock(start), configuration: configuration)
        let budget: Micros = 2_000_000
        // CPM 1,000,000: each impression costs 1,000 micros; 6,000 opportunities a day.
        let campaign = try await world.campaign(try await world.advertiser(), objective: .awareness, bid: 1_000_000, daily: budget, total: 100 * budget)
        try await world.ad(campaign)
        world.publish()
        let pacer = try #require(world.serving.pacer)
        let perDay = 6_000.0
        let weightSum = Self.diurnal.reduce(0, +)
        var carried = 0.0
        var decisions = 0
        var spentByHour: [[Micros]] = [[], []]
        for day in 0..<2 {
            for minute in 0..<(24 * 60) {
                world.clock.set(start.adding(milliseconds: Int64(day) * Timestamp.millisecondsPerDay + Int64(minute) * 60_000))
                carried += perDay * Self.diurnal[minute / 60] / weightSum / 60
                while carried >= 1 {
                    carried -= 1
                    decisions += 1
                    let decision = try await world.decide("u\(decisions % 500)", organicCount: 4)
                    for placement in decision.placements {
                        let event = EventRecord(
                            placementKey: decision.placementKey(placement), type: .impression, userID: try UserID(validating: "u\(decisions % 500)"),
                            adID: placement.ad.id, campaignID: campaign.id, decisionID: decision.decisionID, priceMicros: placement.priceMicros,
                            at: world.clock.now())
                        let outcome = try await world.store.record(event)
                        world.serving.delivery.apply(event, charged: outcome.chargedMicros, snapshot: world.serving.catalog.snapshot)
                    }
                }
                pacer.tick(now: world.clock.now(), snapshot: world.serving.catalog.snapshot, delivery: world.serving.delivery)
                if minute % 60 == 59 { spentByHour[day].append(world.serving.spend(of: campaign.id).today) }
            }
        }
        // The learned curve has the traffic's shape: the evening peak outweighs the night.
        let learned = pacer.curve.hourly
        #expect(learned[19] > 1.5 * learned[7])
        let dayStart = start.adding(milliseconds: Timestamp.millisecondsPerDay)
        for hour in 0..<24 {
            let end = dayStart.adding(hours: Int64(hour + 1)).adding(milliseconds: -60_000)
            let target = Double(budget) * pacer.curve.shareElapsed(at: end)
            let error = abs(Double(spentByHour[1][hour]) - target) / Double(budget)
            #expect(error <= 0.05, "hour \(hour): spent \(spentByHour[1][hour]) against a target of \(Int(target))")
        }
        #expect(spentByHour[1][22] < budget)
    }

    /// Pacing holds a campaign back, and its loss reason says so: not "budget", which is spent.
    @Test func aThrottledCampaignIsLeftOutOfMostDecisions() async throws {
        var configuration = ServingConfiguration.payingBids
        configuration.pacing = BudgetPacer.Settings()
        configuration.lossSampleRate = 1
        let world = try await TestWorld.make(configuration: configuration)
        let campaign = try await world.campaign(try await world.advertiser(), daily: 1_000_000)
        try await world.ad(campaign)
        world.publish()
        // Half the budget spent in the first hours: far ahead of its target.
        let event = EventRecord(
            placementKey: "early/1", type: .click, userID: try UserID(validating: "u0"), adID: AdID(1), campaignID: campaign.id, decisionID: "early",
            priceMicros: 500_000, at: world.clock.now())
        world.serving.delivery.apply(event, charged: 500_000, snapshot: world.serving.catalog.snapshot)
        let morning = Timestamp(milliseconds: world.clock.now().day * Timestamp.millisecondsPerDay + 2 * Timestamp.millisecondsPerHour)
        world.clock.set(morning)
        for _ in 0..<100 { world.serving.pacer?.tick(now: morning, snapshot: world.serving.catalog.snapshot, delivery: world.serving.delivery) }
        #expect(abs(world.serving.delivery.pace(of: campaign.id, snapshot: world.serving.catalog.snapshot) - 0.001) < 1e-6)
        var served = 0
        for i in 0..<200 { served += try await world.decide("u\(i)").placements.count }
        #expect(served < 5)
        let reasons = world.serving.losses.counts(of: campaign.id).reasons
        #expect(reasons[.pacing, default: 0] >= 195)
        #expect(reasons[.budget, default: 0] == 0)
    }

    /// A campaign created during the day spreads its budget over what is left of the day; an
    /// accelerated one is never throttled.
    @Test func aCampaignCreatedAtNoonSpreadsItsBudgetOverTheAfternoonAndAnAcceleratedOneIsNotHeldBack() async throws {
        var configuration = ServingConfiguration.payingBids
        configuration.pacing = BudgetPacer.Settings()
        let world = try await TestWorld.make(configuration: configuration)  // noon
        let advertiser = try await world.advertiser()
        let standard = try await world.campaign(advertiser, daily: 1_000_000)
        try await world.ad(standard)
        let accelerated = try await world.catalog.createCampaign(
            Campaign(
                id: CampaignID(0), advertiserID: advertiser.id, name: "launch", objective: .traffic, bidMicros: 1_000_000, dailyBudgetMicros: 1_000_000,
                totalBudgetMicros: 10_000_000, createdAt: world.clock.now(), pacing: .accelerated))
        try await world.ad(accelerated)
        world.publish()
        // At 18:00, each has spent 600,000: ahead of the afternoon's half (500,000).
        world.clock.advance(hours: 6)
        for campaign in [standard, accelerated] {
            let event = EventRecord(
                placementKey: "p\(campaign.id)", type: .click, userID: try UserID(validating: "u0"), adID: AdID(1), campaignID: campaign.id,
                decisionID: "d", priceMicros: 600_000, at: world.clock.now())
            world.serving.delivery.apply(event, charged: 600_000, snapshot: world.serving.catalog.snapshot)
        }
        let pacer = try #require(world.serving.pacer)
        #expect(BudgetPacer.target(dailyBudget: 1_000_000, share: 0.75, anchorShare: 0.5, anchorSpend: 0) == 500_000)
        pacer.tick(now: world.clock.now(), snapshot: world.serving.catalog.snapshot, delivery: world.serving.delivery)
        let snapshot = world.serving.catalog.snapshot
        #expect(world.serving.delivery.pace(of: standard.id, snapshot: snapshot) < 1)
        #expect(world.serving.delivery.pace(of: accelerated.id, snapshot: snapshot) == 1)
        // The report's target starts at the campaign's creation too: nothing before noon, half by 18:00.
        let report = PacingReport(
            day: world.clock.now().day, dailyBudgetMicros: 1_000_000, hourlySpend: Array(repeating: 50_000, count: 24), curve: pacer.curve,
            now: world.clock.now(), createdAt: standard.createdAt)
        #expect(report.hours[11].targetMicros == 0)
        #expect(report.hours[17].targetMicros == 500_000)
        #expect(report.hours[17].spendMicros == 900_000)
        #expect(report.hours[19].spendMicros == nil)
        #expect(abs(report.largestError - 0.6) < 1e-9)
    }
}
