/// Budget arithmetic. Spend never passes a budget: a charge is cut to what is left.
public enum Budget {
    /// The amount actually charged for one billed event priced `price`, given what the campaign
    /// has spent today and in total. Never negative, never past either budget.
    public static func chargeable(
        price: Micros, dailyBudget: Micros, spentToday: Micros, totalBudget: Micros, spentTotal: Micros
    ) -> Micros {
        let left = min(dailyBudget - spentToday, totalBudget - spentTotal)
        return max(0, min(price, left))
    }

    /// Whether a campaign can still be charged anything.
    public static func hasRoom(dailyBudget: Micros, spentToday: Micros, totalBudget: Micros, spentTotal: Micros) -> Bool {
        spentToday < dailyBudget && spentTotal < totalBudget
    }
}

/// Delivery counters of one ad or campaign, for one day or all time.
public struct DeliveryCounters: Sendable, Equatable, Codable {
    public var impressions: Int64
    public var clicks: Int64
    public var conversions: Int64
    public var hides: Int64
    public var spendMicros: Micros

    public init(impressions: Int64 = 0, clicks: Int64 = 0, conversions: Int64 = 0, hides: Int64 = 0, spendMicros: Micros = 0) {
        self.impressions = impressions
        self.clicks = clicks
        self.conversions = conversions
        self.hides = hides
        self.spendMicros = spendMicros
    }

    public mutating func add(_ other: DeliveryCounters) {
        impressions += other.impressions
        clicks += other.clicks
        conversions += other.conversions
        hides += other.hides
        spendMicros += other.spendMicros
    }

    public mutating func count(_ type: EventType, charged: Micros) {
        switch type {
        case .impression: impressions += 1
        case .click: clicks += 1
        case .conversion: conversions += 1
        case .hide: hides += 1
        }
        spendMicros += charged
    }

    public var ctr: Double { impressions > 0 ? Double(clicks) / Double(impressions) : 0 }
}
