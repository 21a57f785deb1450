import Domain
import Serving
import Storage

/// Delivery report of one campaign or ad: totals and one row per day.
public struct DeliveryReport: Sendable, Equatable {
    public var totals: DeliveryCounters
    public var days: [DailyCounters]

    public init(days: [DailyCounters]) {
        self.days = days
        var totals = DeliveryCounters()
        for day in days { totals.add(day.counters) }
        self.totals = totals
    }
}

public struct Reports: Sendable {
    public let store: any AdStore
    public init(store: any AdStore) { self.store = store }

    public func campaign(_ id: CampaignID) async throws -> DeliveryReport {
        DeliveryReport(days: try await store.dailyCounters(campaign: id))
    }

    public func ad(_ id: AdID) async throws -> DeliveryReport {
        DeliveryReport(days: try await store.dailyCounters(ad: id))
    }
}

/// A campaign's pacing curve for one day: by hour, the spend pacing aimed at (the daily budget
/// × the share of the day's traffic gone by, `TrafficCurve`; from its creation, for a campaign
/// created that day) and what it spent, both summed from midnight (UTC) to the end of the hour —
/// to now, in the current hour.
public struct PacingReport: Sendable, Equatable {
    public struct Hour: Sendable, Equatable {
        public var hour: Int
        public var targetMicros: Micros
        /// Nil for hours still to come.
        public var spendMicros: Micros?
    }

    public var day: Int64
    public var dailyBudgetMicros: Micros
    public var hours: [Hour]

    /// The largest gap between spend and target over the hours so far, as a share of the daily budget.
    public var largestError: Double {
        guard dailyBudgetMicros > 0 else { return 0 }
        return hours.compactMap { hour in hour.spendMicros.map { Double(abs($0 - hour.targetMicros)) / Double(dailyBudgetMicros) } }.max() ?? 0
    }

    public init(day: Int64, dailyBudgetMicros: Micros, hourlySpend: [Micros], curve: TrafficCurve, now: Timestamp, createdAt: Timestamp? = nil) {
        self.day = day
        self.dailyBudgetMicros = dailyBudgetMicros
        let dayStart = day * Timestamp.millisecondsPerDay
        let anchor = createdAt.map { $0.day == day ? curve.shareElapsed(at: $0) : ($0.day > day ? 1 : 0) } ?? 0
        var spent: Micros = 0
        hours = (0..<24).map { hour in
            let end = Timestamp(milliseconds: dayStart + Int64(hour + 1) * Timestamp.millisecondsPerHour)
            let started = Timestamp(milliseconds: dayStart + Int64(hour) * Timestamp.millisecondsPerHour) <= now
            let until = min(end, now)
            // The end of the day is the whole day (a share of 1), not the next day's midnight.
            let share = until == end && hour == 23 ? 1 : curve.shareElapsed(at: until)
            spent += hour < hourlySpend.count ? hourlySpend[hour] : 0
            let target = BudgetPacer.target(dailyBudget: dailyBudgetMicros, share: share, anchorShare: anchor, anchorSpend: 0)
            return Hour(hour: hour, targetMicros: Micros(target.rounded()), spendMicros: started ? spent : nil)
        }
    }
}

extension Reports {
    /// The campaign's pacing curve on `day`, against `curve` (the serving node's current one).
    public func pacing(of campaign: Campaign, day: Int64, now: Timestamp, curve: TrafficCurve) async throws -> PacingReport {
        PacingReport(
            day: day, dailyBudgetMicros: campaign.dailyBudgetMicros, hourlySpend: try await store.hourlySpend(campaign: campaign.id, day: day),
            curve: curve, now: now, createdAt: campaign.createdAt)
    }
}
