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
    /// Clicks recorded as invalid traffic: counted here only, never in `clicks`, never charged.
    public var invalidClicks: Int64

    public init(impressions: Int64 = 0, clicks: Int64 = 0, conversions: Int64 = 0, hides: Int64 = 0, spendMicros: Micros = 0, invalidClicks: Int64 = 0) {
        self.impressions = impressions
        self.clicks = clicks
        self.conversions = conversions
        self.hides = hides
        self.spendMicros = spendMicros
        self.invalidClicks = invalidClicks
    }

    public mutating func add(_ other: DeliveryCounters) {
        impressions += other.impressions
        clicks += other.clicks
        conversions += other.conversions
        hides += other.hides
        spendMicros += other.spendMicros
        invalidClicks += other.invalidClicks
    }

    public mutating func count(_ type: EventType, charged: Micros) {
        switch type {
        case .impression: impressions += 1
        case .click: clicks += 1
        case .conversion: conversions += 1
        case .hide, .hideAdvertiser, .notRelevant: hides += 1
        }
        spendMicros += charged
    }

    public var ctr: Double { impressions > 0 ? Double(clicks) / Double(impressions) : 0 }
}

/// Why a click was recorded as invalid traffic. An invalid click is kept and counted
/// (`invalid_clicks`), but never charged, never counted as a click and never learned from.
public enum InvalidClickReason: String, Sendable, Codable, CaseIterable {
    /// Sooner after the ad was served than a person can see it and tap.
    case tooFast = "too_fast"
    /// The user has made more clicks in the last hour than a person makes.
    case userClickRate = "user_click_rate"
    /// The same user clicked the same campaign again and again.
    case repeatedCampaign = "repeated_campaign"
}
