import Domain
import Serving
import Testing

@Suite struct AdLoadPolicyTests {
    @Test(arguments: [
        (0, [Int]()), (2, []), (3, [3]), (6, [3]), (7, [3, 7]), (10, [3, 7]), (20, [3, 7, 11, 15, 19]),
    ])
    func defaultPolicyPositions(organicCount: Int, expected: [Int]) {
        #expect(AdLoadPolicy().positions(organicCount: organicCount) == expected)
    }

    @Test func configuredPolicyHonoursFirstGapAndCap() {
        let policy = AdLoadPolicy(firstAfterPost: 5, minOrganicBetween: 2, maxAdsPerPage: 3)
        #expect(policy.positions(organicCount: 100) == [5, 7, 9])
    }

    @Test func positionsLeaveEnoughOrganicPostsBetweenAds() {
        let policy = AdLoadPolicy()
        let positions = policy.positions(organicCount: 200)
        #expect(positions.first == 3)
        for (a, b) in zip(positions, positions.dropFirst()) { #expect(b - a >= policy.minOrganicBetween) }
    }
}

@Suite struct BudgetTests {
    /// price, daily budget, spent today, total budget, spent total → charged
    @Test(arguments: [
        (100, 1_000, 0, 10_000, 0, 100),  // plenty of room
        (100, 1_000, 950, 10_000, 950, 50),  // cut to the daily budget
        (100, 1_000, 0, 10_000, 9_990, 10),  // cut to the total budget
        (100, 1_000, 1_000, 10_000, 5_000, 0),  // daily budget spent
        (100, 1_000, 0, 10_000, 10_000, 0),  // total budget spent
        (100, 1_000, 1_200, 10_000, 1_200, 0),  // budget lowered below spend: never negative
    ] as [(Int64, Int64, Int64, Int64, Int64, Int64)])
    func chargeIsCutToWhatIsLeft(price: Int64, daily: Int64, today: Int64, total: Int64, spent: Int64, expected: Int64) {
        #expect(Budget.chargeable(price: price, dailyBudget: daily, spentToday: today, totalBudget: total, spentTotal: spent) == expected)
    }

    @Test func cpmPriceIsPerThousand() {
        #expect(Objective.awareness.pricePerBilledEvent(bid: 5_000_000) == 5_000)
        #expect(Objective.traffic.pricePerBilledEvent(bid: 5_000_000) == 5_000_000)
        #expect(Objective.conversions.billedEvent == .conversion)
    }

    @Test func dayAndDateAreUTC() {
        #expect(Timestamp(milliseconds: 0).day == 0)
        #expect(Timestamp(milliseconds: -1).day == -1)
        #expect(Timestamp.isoDate(day: 0) == "1970-01-01")
        #expect(Timestamp.isoDate(day: Timestamp(milliseconds: 1_780_315_200_000).day) == "2026-06-01")
        #expect(Timestamp(milliseconds: 1_780_315_200_000).hourOfDay == 12)
    }
}
