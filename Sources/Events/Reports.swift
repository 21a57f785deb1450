import Domain
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
