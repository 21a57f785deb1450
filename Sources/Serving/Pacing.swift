import Domain
import Synchronization

/// The shape of a day's traffic: the share of the day's decisions in each hour (UTC). Budget
/// pacing aims each campaign's spend at its daily budget times the share of the day's traffic
/// gone by, so a budget lasts the whole day instead of running out in the morning rush.
public struct TrafficCurve: Sendable, Equatable {
    /// 24 non-negative weights, one per hour; only their proportions matter.
    public private(set) var hourly: [Double]
    private var cumulative: [Double]

    public init(hourly: [Double]) {
        precondition(hourly.count == 24 && hourly.allSatisfy { $0 >= 0 }, "a traffic curve has 24 non-negative hourly weights")
        let total = hourly.reduce(0, +)
        let weights = total > 0 ? hourly : Array(repeating: 1, count: 24)
        let sum = weights.reduce(0, +)
        self.hourly = weights.map { $0 / sum }
        var running = 0.0
        self.cumulative = [0] + self.hourly.map { running += $0; return running }
        self.cumulative[24] = 1
    }

    /// Every hour alike: what a node assumes before it has seen a whole day.
    public static let flat = TrafficCurve(hourly: Array(repeating: 1, count: 24))

    /// The share of the day's traffic before `at` (0 at midnight, 1 at the next), linear within
    /// an hour.
    public func shareElapsed(at: Timestamp) -> Double {
        let intoDay = Double(at.milliseconds - at.day * Timestamp.millisecondsPerDay) / Double(Timestamp.millisecondsPerHour)
        let hour = min(23, max(0, Int(intoDay)))
        return cumulative[hour] + hourly[hour] * min(1, max(0, intoDay - Double(hour)))
    }
}

/// Budget pacing across the day, by probabilistic throttling (Agarwal et al., "Budget pacing
/// for targeted online advertisements at LinkedIn", KDD 2014): each campaign has a pass rate,
/// the probability that a decision considers it at all. Every `tick`, for each campaign paced
/// `standard`, the target is its daily budget × the share of the day's traffic gone by
/// (`TrafficCurve`) — for a campaign created during the day, what is left of the day from its
/// creation, and for a node started during the day, the budget left spread over the rest of it
/// (`target`); a campaign ahead of its target has its pass rate cut by `step`, one behind has it
/// raised, up to 1 (halved or doubled when far off). An `accelerated` campaign is never
/// throttled. Ticks run after each fleet sync, on the fleet's spend, so every node paces on the same
/// numbers. The traffic curve is learned from the decisions this node makes: its hourly counts
/// of each finished day are blended into the curve (a node's traffic has the fleet's shape
/// behind a load balancer).
public final class BudgetPacer: Sendable {
    public struct Settings: Sendable, Equatable {
        /// The multiplicative change of a pass rate per tick.
        public var step: Double = 0.1
        /// The lowest pass rate: a throttled campaign keeps a trickle of traffic, so its spend
        /// (and the controller) never stalls.
        public var minimumRate: Double = 0.001
        /// A campaign this close to its target counts as on it (a share of the daily budget):
        /// no change, so the rate does not flutter around the target.
        public var tolerance: Double = 0.002
        /// Weight of a finished day's shape in the learned curve.
        public var learningRate: Double = 0.5
        public init() {}
    }

    private struct Counts {
        var day: Int64 = .min
        var hourly = [Int](repeating: 0, count: 24)
        var curve: TrafficCurve
    }

    public let settings: Settings
    private let counts: Mutex<Counts>

    public init(settings: Settings = Settings(), curve: TrafficCurve = .flat) {
        self.settings = settings
        self.counts = Mutex(Counts(curve: curve))
    }

    /// The curve targets follow now.
    public var curve: TrafficCurve { counts.withLock { $0.curve } }

    /// Counts one decision in its hour; a new day folds the finished one into the curve.
    public func countDecision(at now: Timestamp) {
        let day = now.day
        let hour = Int((now.milliseconds - day * Timestamp.millisecondsPerDay) / Timestamp.millisecondsPerHour)
        counts.withLock { c in
            if day != c.day {
                if c.day != .min, day == c.day + 1, c.hourly.allSatisfy({ $0 > 0 }) {
                    // Only a whole day of traffic (every hour seen) reshapes the curve.
                    let total = Double(c.hourly.reduce(0, +))
                    let rate = settings.learningRate
                    c.curve = TrafficCurve(hourly: zip(c.curve.hourly, c.hourly).map { (1 - rate) * $0 + rate * Double($1) / total })
                }
                c.day = day
                c.hourly = Array(repeating: 0, count: 24)
            }
            if (0..<24).contains(hour) { c.hourly[hour] += 1 }
        }
    }

    /// The new pass rate of one campaign: `rate` moved towards keeping `spentToday` on `target`.
    public func nextRate(_ rate: Double, spentToday: Micros, target: Double, dailyBudget: Micros) -> Double {
        guard dailyBudget > 0 else { return 1 }
        let error = (Double(spentToday) - target) / Double(dailyBudget)
        // Far off (ten tolerances): halve or double at once, so a campaign launched into heavy
        // traffic is held back within a few steps; near the target: small steps.
        let far = 10 * settings.tolerance
        if error > far { return max(settings.minimumRate, rate * 0.5) }
        if error < -far { return min(1, rate * 2) }
        if error > settings.tolerance { return max(settings.minimumRate, rate * (1 - settings.step)) }
        if error < -settings.tolerance { return min(1, rate * (1 + settings.step)) }
        return rate
    }

    /// Today's spend target at `share` of the day's traffic, for a target that starts at
    /// `anchorShare` with `anchorSpend` spent: the rest of the budget in proportion to the
    /// traffic still to come.
    public static func target(dailyBudget: Micros, share: Double, anchorShare: Double, anchorSpend: Micros) -> Double {
        guard share > anchorShare else { return Double(anchorSpend) }
        let rest = 1 - anchorShare
        guard rest > 1e-9 else { return Double(dailyBudget) }
        let progress = min(1, max(0, (share - anchorShare) / rest))
        return Double(anchorSpend) + Double(max(0, dailyBudget - anchorSpend)) * progress
    }

    /// One control step for every campaign of the snapshot, at `now`, on the spend the delivery
    /// state holds (this node's charges and the fleet's last sync).
    public func tick(now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState) {
        let curve = self.curve
        let share = curve.shareElapsed(at: now)
        let day = now.day
        let dayStart = day * Timestamp.millisecondsPerDay
        delivery.state.withLock { s in
            for entry in snapshot.campaigns where Int(entry.stateSlot) < s.spend.count {
                let slot = Int(entry.stateSlot)
                guard entry.paced else {
                    s.spend[slot].pace = 1
                    continue
                }
                let spent = s.spend[slot].spentToday(day: day)
                if s.spend[slot].paceDay != day {
                    // The first step today: from the campaign's creation if that was today, else
                    // from now with what is spent so far (at midnight: from 0 with nothing spent).
                    let createdToday = entry.createdAt >= dayStart
                    s.spend[slot].paceDay = day
                    s.spend[slot].anchorShare = createdToday ? curve.shareElapsed(at: Timestamp(milliseconds: entry.createdAt)) : share
                    s.spend[slot].anchorSpend = createdToday ? 0 : spent
                }
                let target = Self.target(
                    dailyBudget: entry.dailyBudgetMicros, share: share, anchorShare: s.spend[slot].anchorShare, anchorSpend: s.spend[slot].anchorSpend)
                s.spend[slot].pace = Float(nextRate(Double(s.spend[slot].pace), spentToday: spent, target: target, dailyBudget: entry.dailyBudgetMicros))
            }
        }
    }
}
