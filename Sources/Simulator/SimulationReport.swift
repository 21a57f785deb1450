import Domain
import Storage

/// What a run measured, per arm and per day: the JSON of `adserve simulate --json`.
public struct SimulationReport: Sendable, Codable, Equatable {
    public struct Interval: Sendable, Codable, Equatable {
        public var ctr: [Double]
        public var revenuePerUserMicros: [Double]
        public var expectedRevenuePerUserMicros: [Double]
        public var sessionLengthS: [Double]
    }

    public struct Totals: Sendable, Codable, Equatable {
        public var day: Int?
        public var impressions: Int
        public var clicks: Int
        public var ctr: Double
        /// Mean of the world's true P(click) over the impressions served: the CTR to expect.
        public var expectedCtr: Double
        public var conversions: Int
        public var cvr: Double
        public var hides: Int
        public var hideRate: Double
        public var revenueMicros: Int64
        /// What the impressions served would have been charged in expectation with no budget
        /// stopping the charges (`RunState.expectedCharge`): above `revenueMicros` by what
        /// budgets gave away, and free of the luck of which impressions were clicked.
        public var expectedRevenueMicros: Double
        public var rpmMicros: Double
        public var ecpmMicros: Double
        public var sessions: Int
        public var sessionsPerUser: Double
        public var sessionLengthS: Double
        /// Share of the day's active users who came back the next day (nil on the last day;
        /// in an arm's totals, over all days but the last, nil for a one-day run).
        public var returnRate: Double?
        public var activeUsers: Int
        /// Share of impressions whose ad was about what the user had viewed most so far (the
        /// topic in the topics world, the product in the products world).
        public var mostViewedShare: Double
        /// Share of impressions placed by exploration rather than won in the auction.
        public var explorationShare: Double
    }

    /// How fast an arm's predictions for the ads created mid-run (`World.Size.newCampaigns`)
    /// came within 20% of the truth: for each such ad with at least `window` impressions in the
    /// arm, the impressions it had before the first run of `window` consecutive ones whose mean
    /// predicted P(click) was within ±20% of their mean true P(click).
    public struct NewAdLearning: Sendable, Codable, Equatable {
        public static let window = 50
        /// New ads with at least `window` impressions in this arm.
        public var ads: Int
        /// Of those, how many came within 20%.
        public var reached: Int
        /// Median and upper quartile of the impressions before they did (over those that did).
        public var medianImpressions: Int?
        public var p75Impressions: Int?

        public init(_ impressions: [[(predicted: Double, truth: Double)]]) {
            var firsts: [Int] = []
            var eligible = 0
            let w = Self.window
            for list in impressions where list.count >= w {
                eligible += 1
                var predicted = list[0..<w].reduce(0) { $0 + $1.predicted }
                var truth = list[0..<w].reduce(0) { $0 + $1.truth }
                for start in 0...(list.count - w) {
                    if start > 0 {
                        predicted += list[start + w - 1].predicted - list[start - 1].predicted
                        truth += list[start + w - 1].truth - list[start - 1].truth
                    }
                    if truth > 0, abs(predicted / truth - 1) <= 0.2 {
                        firsts.append(start)
                        break
                    }
                }
            }
            firsts.sort()
            ads = eligible
            reached = firsts.count
            medianImpressions = firsts.isEmpty ? nil : firsts[firsts.count / 2]
            p75Impressions = firsts.isEmpty ? nil : firsts[(firsts.count * 3) / 4]
        }
    }

    /// One arm: its totals over the run (flattened into the arm's JSON object, next to the
    /// intervals, the CTR by position and the daily rows) and how many users it had.
    @dynamicMemberLookup
    public struct ArmReport: Sendable, Codable, Equatable {
        public var users: Int
        public var totals: Totals
        public var ci95: Interval
        /// CTR by feed position (`after_post`): the position bias in the logs.
        public var ctrByPosition: [String: Double]
        public var byDay: [Totals]
        public var newAds: NewAdLearning
        /// How many distinct ads the arm showed at least once.
        public var adsShown: Int

        public subscript<T>(dynamicMember keyPath: KeyPath<Totals, T>) -> T { totals[keyPath: keyPath] }

        enum CodingKeys: String, CodingKey {
            case users, ci95, ctrByPosition, byDay, newAds, adsShown
        }

        init(users: Int, totals: Totals, ci95: Interval, ctrByPosition: [String: Double], byDay: [Totals], newAds: NewAdLearning, adsShown: Int) {
            self.newAds = newAds
            self.adsShown = adsShown
            self.users = users
            self.totals = totals
            self.ci95 = ci95
            self.ctrByPosition = ctrByPosition
            self.byDay = byDay
        }

        public init(from decoder: any Decoder) throws {
            totals = try Totals(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            users = try container.decode(Int.self, forKey: .users)
            ci95 = try container.decode(Interval.self, forKey: .ci95)
            ctrByPosition = try container.decode([String: Double].self, forKey: .ctrByPosition)
            byDay = try container.decode([Totals].self, forKey: .byDay)
            newAds = try container.decode(NewAdLearning.self, forKey: .newAds)
            adsShown = try container.decode(Int.self, forKey: .adsShown)
        }

        public func encode(to encoder: any Encoder) throws {
            try totals.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(users, forKey: .users)
            try container.encode(ci95, forKey: .ci95)
            try container.encode(ctrByPosition, forKey: .ctrByPosition)
            try container.encode(byDay, forKey: .byDay)
            try container.encode(newAds, forKey: .newAds)
            try container.encode(adsShown, forKey: .adsShown)
        }
    }

    public struct BudgetDay: Sendable, Codable, Equatable {
        public var day: Int
        /// Share of campaigns that spent at least 90% of their daily budget.
        public var shareSpent90pct: Double
        public var spendMicros: Int64
        /// Largest amount any campaign spent past its daily budget (0 expected).
        public var maxOverspendMicros: Int64

        init(day: Int, campaigns: [Campaign], spend: [CampaignSpend]) {
            let today = Dictionary(uniqueKeysWithValues: spend.map { ($0.campaignID, $0.todayMicros) })
            var full = 0
            var overspend: Int64 = 0
            for campaign in campaigns {
                let spent = today[campaign.id] ?? 0
                if Double(spent) >= 0.9 * Double(campaign.dailyBudgetMicros) { full += 1 }
                overspend = max(overspend, spent - campaign.dailyBudgetMicros)
            }
            self.day = day
            self.shareSpent90pct = campaigns.isEmpty ? 0 : Double(full) / Double(campaigns.count)
            self.spendMicros = spend.reduce(0) { $0 + $1.todayMicros }
            self.maxOverspendMicros = overspend
        }
    }

    public var seed: UInt64
    public var days: Int
    public var users: Int
    public var ads: Int
    public var campaigns: Int
    /// The world (`topics` or `products`), and whether its ads had generated pictures and
    /// videos encoded by the content encoders.
    public var world: String
    public var content: Bool
    /// Ads created on day `newAdsDay` (1-based), counted in `ads`.
    public var newAds: Int
    public var newAdsDay: Int
    public var arms: [String: ArmReport]
    public var budgets: [BudgetDay]
    /// How campaign budgets were shared between arms (`Simulation.BudgetMode`).
    public var budgetMode: String
    /// With split budgets, whether the arms pooled their ads' history (`Simulation.HistoryMode`).
    public var historyMode: String?
    /// Which users the arms served (`Simulation.Assignment`): hashed, or paired (every person in
    /// every arm; comparisons and their intervals are then person by person).
    public var assignment: String
    /// Every arm but the first against the first (the control), keyed by arm.
    public var comparisons: [String: Comparison]

    /// An arm's value relative to the control's (0.05: 5% higher), with its 95% interval.
    public struct Lift: Sendable, Codable, Equatable {
        public var relative: Double
        public var ci95: [Double]
    }

    /// One arm against the control, per user (users are the units the experiment randomized):
    /// revenue per user, CTR, hide rate, session length and next-day return as relative
    /// differences with 95% intervals (nil where the control's value is 0), and the difference
    /// in exploration share in percentage points.
    public struct Comparison: Sendable, Codable, Equatable {
        public var control: String
        public var revenuePerUser: Lift?
        /// Expected charges per user, budgets aside (`Totals.expectedRevenueMicros`).
        public var expectedRevenuePerUser: Lift?
        public var ctr: Lift?
        public var hideRate: Lift?
        public var sessionLengthS: Lift?
        public var returnRate: Lift?
        public var explorationSharePoints: Double
    }

    init(
        seed: UInt64, days: Int, users: Int, ads: Int, campaigns: Int, world: World, content: Bool, arms names: [String], state: RunState,
        userArm: [Int], budgetDays: [BudgetDay], budgetMode: String, historyMode: String? = nil, assignment: Simulation.Assignment = .hashed
    ) {
        self.world = world.kind.rawValue
        self.content = content
        self.newAds = world.adQuality.count - world.firstNewAd
        self.newAdsDay = world.size.newCampaignDay + 1
        self.seed = seed
        self.days = days
        self.users = users
        self.ads = ads
        self.campaigns = campaigns
        self.budgets = budgetDays
        var arms: [String: ArmReport] = [:]
        var estimatesByArm: [Estimates] = []
        for (arm, name) in names.enumerated() {
            let members = userArm.indices.filter { userArm[$0] == arm }
            let byDay = state.days[arm].enumerated().map { day, stats in
                Self.totals(stats, day: day + 1, users: members.count, days: 1, returning: stats.returningUsers, active: day + 1 < days ? stats.activeUsers : nil)
            }
            var all = DayStats()
            var returning = 0
            var activeWithTomorrow = 0
            for (day, stats) in state.days[arm].enumerated() {
                all.impressions += stats.impressions
                all.clicks += stats.clicks
                all.expectedClicks += stats.expectedClicks
                all.conversions += stats.conversions
                all.hides += stats.hides
                all.revenueMicros += stats.revenueMicros
                all.expectedRevenueMicros += stats.expectedRevenueMicros
                all.organicImpressions += stats.organicImpressions
                all.sessions += stats.sessions
                all.sessionSeconds += stats.sessionSeconds
                all.activeUsers += stats.activeUsers
                all.mostViewedImpressions += stats.mostViewedImpressions
                all.exploredImpressions += stats.exploredImpressions
                if day + 1 < days {
                    returning += stats.returningUsers
                    activeWithTomorrow += stats.activeUsers
                }
            }
            let t = Self.totals(all, day: nil, users: members.count, days: days, returning: returning, active: days > 1 ? activeWithTomorrow : nil)
            let estimates = Self.estimates(members, state)
            estimatesByArm.append(estimates)
            let ci = Interval(
                ctr: estimates.ctr.ci95, revenuePerUserMicros: estimates.revenuePerUser.ci95,
                expectedRevenuePerUserMicros: estimates.expectedRevenuePerUser.ci95, sessionLengthS: estimates.sessionLength.ci95)
            var ctrByPosition: [String: Double] = [:]
            for (position, counts) in state.byPosition[arm] where counts.impressions > 0 {
                ctrByPosition[String(position)] = Double(counts.clicks) / Double(counts.impressions)
            }
            arms[name] = ArmReport(
                users: members.count, totals: t, ci95: ci, ctrByPosition: ctrByPosition, byDay: byDay, newAds: NewAdLearning(state.newAdImpressions[arm]),
                adsShown: state.shown[arm].count { $0 })
        }
        self.arms = arms
        self.budgetMode = budgetMode
        self.historyMode = historyMode
        self.assignment = assignment.rawValue
        let paired = assignment == .paired
        var comparisons: [String: Comparison] = [:]
        if let control = estimatesByArm.first, let controlName = names.first, let controlArm = arms[controlName] {
            for (arm, name) in names.enumerated().dropFirst() {
                let e = estimatesByArm[arm]
                comparisons[name] = Comparison(
                    control: controlName, revenuePerUser: e.revenuePerUser.lift(over: control.revenuePerUser, paired: paired),
                    expectedRevenuePerUser: e.expectedRevenuePerUser.lift(over: control.expectedRevenuePerUser, paired: paired),
                    ctr: e.ctr.lift(over: control.ctr, paired: paired), hideRate: e.hideRate.lift(over: control.hideRate, paired: paired),
                    sessionLengthS: e.sessionLength.lift(over: control.sessionLength, paired: paired),
                    returnRate: e.returnRate.lift(over: control.returnRate, paired: paired),
                    explorationSharePoints: ((arms[name]?.explorationShare ?? 0) - controlArm.explorationShare) * 100)
            }
        }
        self.comparisons = comparisons
    }

    /// One arm's per-user estimates, the source of its intervals and of the comparisons.
    struct Estimates {
        var revenuePerUser, expectedRevenuePerUser, ctr, hideRate, sessionLength, returnRate: UserEstimate
    }

    static func estimates(_ members: [Int], _ state: RunState) -> Estimates {
        func values<T: BinaryInteger>(_ list: [T]) -> [Double] { members.map { Double(list[$0]) } }
        return Estimates(
            revenuePerUser: .mean(values(state.userRevenue)),
            expectedRevenuePerUser: .mean(members.map { state.userExpectedRevenue[$0] }),
            ctr: .ratio(values(state.userClicks), values(state.userImpressions)),
            hideRate: .ratio(values(state.userHides), values(state.userImpressions)),
            sessionLength: .ratio(members.map { state.userSessionSeconds[$0] }, values(state.userSessions)),
            returnRate: .ratio(values(state.userReturns), values(state.userActiveDaysWithTomorrow)))
    }

    static func totals(_ s: DayStats, day: Int?, users: Int, days: Int, returning: Int, active: Int?) -> Totals {
        func ratio(_ a: Double, _ b: Double) -> Double { b > 0 ? a / b : 0 }
        return Totals(
            day: day, impressions: s.impressions, clicks: s.clicks, ctr: ratio(Double(s.clicks), Double(s.impressions)),
            expectedCtr: ratio(s.expectedClicks, Double(s.impressions)), conversions: s.conversions,
            cvr: ratio(Double(s.conversions), Double(s.clicks)), hides: s.hides, hideRate: ratio(Double(s.hides), Double(s.impressions)),
            revenueMicros: s.revenueMicros, expectedRevenueMicros: s.expectedRevenueMicros, rpmMicros: ratio(Double(s.revenueMicros) * 1000, Double(s.organicImpressions + s.impressions)),
            ecpmMicros: ratio(Double(s.revenueMicros) * 1000, Double(s.impressions)), sessions: s.sessions,
            sessionsPerUser: ratio(Double(s.sessions), Double(users * days)), sessionLengthS: ratio(s.sessionSeconds, Double(s.sessions)),
            returnRate: active.map { ratio(Double(returning), Double($0)) }, activeUsers: s.activeUsers,
            mostViewedShare: ratio(Double(s.mostViewedImpressions), Double(s.impressions)),
            explorationShare: ratio(Double(s.exploredImpressions), Double(s.impressions)))
    }

}

/// A statistic of one arm with its sampling variance, users being the experiment's units: a
/// mean over users, or a ratio of sums over users (clicks / impressions), whose variance comes
/// from the delta method treating each user as a cluster. Normal approximation throughout.
struct UserEstimate {
    var value: Double
    var variance: Double
    /// Each user's linearized contribution eᵢ (a mean: yᵢ − ȳ; a ratio Σa/Σb: (aᵢ − r·bᵢ) / b̄),
    /// with `variance` = Σeᵢ² / (n (n − 1)); paired arms' covariance is Σeᵢfᵢ / (n (n − 1)).
    var influence: [Double]

    static func mean(_ values: [Double]) -> UserEstimate {
        let n = Double(values.count)
        guard n > 1 else { return UserEstimate(value: values.first ?? 0, variance: 0, influence: []) }
        let mean = values.reduce(0, +) / n
        let influence = values.map { $0 - mean }
        return UserEstimate(value: mean, variance: influence.reduce(0) { $0 + $1 * $1 } / (n - 1) / n, influence: influence)
    }

    /// Σa / Σb, var ≈ Σ(aᵢ − r·bᵢ)² · n / ((n − 1) · (Σb)²).
    static func ratio(_ a: [Double], _ b: [Double]) -> UserEstimate {
        let sumA = a.reduce(0, +)
        let sumB = b.reduce(0, +)
        let n = Double(a.count)
        guard sumB > 0, n > 1 else { return UserEstimate(value: 0, variance: 0, influence: []) }
        let r = sumA / sumB
        var squares = 0.0
        for i in a.indices {
            let d = a[i] - r * b[i]
            squares += d * d
        }
        let meanB = sumB / n
        return UserEstimate(value: r, variance: squares * n / (n - 1) / (sumB * sumB), influence: a.indices.map { (a[$0] - r * b[$0]) / meanB })
    }

    var ci95: [Double] {
        let half = 1.96 * variance.squareRoot()
        return [value - half, value + half]
    }

    /// This arm's value relative to the control's (self / control − 1), with the 95% interval of
    /// the delta method for a ratio of two estimates: independent ones, or with `paired` (both
    /// arms measured on the same people, in the same order) correlated ones, whose covariance
    /// comes from the people's paired contributions.
    func lift(over control: UserEstimate, paired: Bool = false) -> SimulationReport.Lift? {
        guard control.value > 0 else { return nil }
        let ratio = value / control.value
        var relativeVariance = (value > 0 ? variance / (value * value) : 0) + control.variance / (control.value * control.value)
        if paired, value > 0, influence.count == control.influence.count, influence.count > 1 {
            let n = Double(influence.count)
            var products = 0.0
            for i in influence.indices { products += influence[i] * control.influence[i] }
            relativeVariance -= 2 * products / (n - 1) / n / (value * control.value)
        }
        let half = 1.96 * ratio * max(0, relativeVariance).squareRoot()
        return SimulationReport.Lift(relative: ratio - 1, ci95: [ratio - 1 - half, ratio - 1 + half])
    }
}
