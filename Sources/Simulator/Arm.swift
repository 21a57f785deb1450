import Domain
import Serving
import Training

/// One arm of the simulated A/B test: a named configuration of the real serving path, plus the
/// hooks a learning arm needs. New arms are added here (`Arm.named`), never in the simulation
/// loop.
public protocol Arm: Sendable {
    var name: String { get }
    /// This arm's serving path over the shared store, catalog and delivery state; its decisions
    /// carry the arm's name.
    func servingPath(base: DecisionService, seed: UInt64) -> DecisionService
    /// Hears decisions and recorded events like any serving observer (a learning arm's online
    /// learning); nil for arms that only serve.
    var observer: (any ServingObserver)? { get }
    /// Simulated time moved on (called every few simulated minutes): learning arms learn.
    func advance(to now: Timestamp) throws
    /// Called after each simulated day (0-based), which ended at `end`: learning arms retrain.
    func endOfDay(_ day: Int, at end: Timestamp) async throws
    /// What the arm wants the report's reader to know (a learning arm: its retrains).
    var notes: [String] { get }
    /// The share of its slots that explore young ads (arms named with "+explore").
    var exploration: ExplorationPolicy { get }
    /// The user's side of total value it ranks by (off but in `full`).
    var engagement: EngagementCost { get }
}

extension Arm {
    public var observer: (any ServingObserver)? { nil }
    public func advance(to now: Timestamp) throws {}
    public func endOfDay(_ day: Int, at end: Timestamp) async throws {}
    public var notes: [String] { [] }
    public var exploration: ExplorationPolicy { .off }
    public var engagement: EngagementCost { EngagementCost() }

    /// The base path's configuration for this arm: its name on every decision, and `policy`.
    func servingConfiguration(base: DecisionService, policy: SelectionPolicy) -> ServingConfiguration {
        var configuration = base.configuration
        configuration.policy = policy
        configuration.arm = name
        configuration.exploration = exploration
        configuration.engagement = engagement
        return configuration
    }
}

/// Today's rule-based ranking: bid × smoothed historical rate.
public struct BaselineArm: Arm {
    public let name: String
    public let exploration: ExplorationPolicy
    public init(name: String = "baseline", exploration: ExplorationPolicy = .off) {
        self.name = name
        self.exploration = exploration
    }
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        base.variant(ranker: RuleBasedRanker(), configuration: servingConfiguration(base: base, policy: .ranked), decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

/// Uniformly random eligible ads: unbiased logs with exact propensities.
public struct RandomArm: Arm {
    public let name: String
    public init(name: String = "random") { self.name = name }
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        base.variant(
            ranker: RuleBasedRanker(), configuration: servingConfiguration(base: base, policy: .uniformRandom(seed: seed)),
            decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

/// A plain policy to beat: each user is shown ads of the product they have viewed most lately
/// — the heaviest of their recent topics (`UserProfile.recentTopics`) that is some candidate's
/// product — in the rule-based order; other ads only where none of it is eligible (their
/// predicted click rate is cut a thousandfold; CPM bids, which do not depend on it, may still
/// win a slot). Users with no such view get the rule-based order.
public struct MostViewedArm: Arm {
    public let name: String
    public init(name: String = "most-viewed") { self.name = name }
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        base.variant(ranker: MostViewedRanker(), configuration: servingConfiguration(base: base, policy: .ranked), decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

struct MostViewedRanker: Ranker {
    let rule = RuleBasedRanker()

    func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
        predict([candidate], user: user, context: context)[0]
    }

    func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        let topics = user?.recentTopics ?? [:]
        let products = candidates.map { $0.ad.product.lowercased() }
        var top: (name: String, weight: Double)?
        for name in products {
            if let weight = topics[name], weight > 0, weight > top?.weight ?? 0 || (weight == top?.weight && name < top!.name) { top = (name, weight) }
        }
        return zip(candidates, products).map { candidate, product in
            var prediction = rule.predict(candidate, user: user, context: context)
            if let top, product != top.name { prediction.click /= 1_000 }
            return prediction
        }
    }
}

public enum Arms {
    public static let known = ["baseline", "random", "ml", "ml+candidates", "ml-plain", "most-viewed", "full"]
    /// Arms that take no "+explore" (random does not rank; `full` explores already).
    static let neverExplore = ["random", "most-viewed", "full"]
    /// Appended to a ranked arm's name ("baseline+explore", "ml+explore"): the arm explores
    /// young ads with `exploring`.
    public static let exploreSuffix = "+explore"
    public static let exploring = ExplorationPolicy(share: 0.05)
    /// `full`'s exchange rate: what one hide is taken to cost, in micros. Not tuned: an estimate
    /// of this world's economics. A hide lowers the user's visit probability by about 5%, which
    /// recovers over ~10 days: about 0.3 lost active days at ~0.10 currency units of revenue each
    /// (measured in the A/A runs), plus a shorter session — 0.03 to 0.04 units.
    public static let fullHideCost = EngagementCost(hideMicros: 40_000)

    /// The arm called `name`, labelled `label` in decisions and reports (an A/A test runs one
    /// arm twice under two labels).
    public static func named(
        _ name: String, label: String? = nil, warmUpClicks: Int = MLArm.defaultWarmUpClicks, training: TrainingConfiguration = MLArm.defaultConfiguration,
        stage: MLArm.CandidateStage = MLArm.CandidateStage()
    ) throws(AdServeError) -> any Arm {
        let label = label ?? name
        let (base, explores) = split(name)
        let exploration = explores ? exploring : .off
        if let problem = problem(name) { throw problem }
        switch base {
        case "baseline": return BaselineArm(name: label, exploration: exploration)
        case "ml": return try MLArm(name: label, configuration: training, warmUpClicks: warmUpClicks, exploration: exploration)
        case "ml+candidates": return try MLArm(name: label, configuration: training, warmUpClicks: warmUpClicks, candidates: true, stage: stage, exploration: exploration)
        case "ml-plain": return try MLArm(name: label, seesContent: false, configuration: training, warmUpClicks: warmUpClicks, exploration: exploration)
        // Everything on top of the learned path: exploration, and total value with a learned P(hide).
        case "full": return try MLArm(name: label, configuration: training, warmUpClicks: warmUpClicks, exploration: exploring, engagement: fullHideCost)
        case "random": return RandomArm(name: label)
        default: return MostViewedArm(name: label)
        }
    }

    /// An arm's name without its "+explore", and whether it had one.
    static func split(_ name: String) -> (base: String, explores: Bool) {
        name.hasSuffix(exploreSuffix) ? (String(name.dropLast(exploreSuffix.count)), true) : (name, false)
    }

    /// Why `name` names no arm, or nil (without building the arm).
    public static func problem(_ name: String) -> AdServeError? {
        let (base, explores) = split(name)
        guard known.contains(base), !explores || !neverExplore.contains(base) else {
            return AdServeError.invalid(
                "arms", "unknown arm '\(name)'; known: \(known.joined(separator: ", ")), and \(exploreSuffix) after baseline or an ml arm")
        }
        return nil
    }

    /// The arms of a list; a name given again is labelled with its count ("baseline-2").
    public static func list(
        _ names: [String], warmUpClicks: Int = MLArm.defaultWarmUpClicks, training: TrainingConfiguration = MLArm.defaultConfiguration,
        stage: MLArm.CandidateStage = MLArm.CandidateStage()
    ) throws(AdServeError) -> [any Arm] {
        var seen: [String: Int] = [:]
        var arms: [any Arm] = []
        for name in names {
            seen[name, default: 0] += 1
            arms.append(try named(name, label: seen[name]! > 1 ? "\(name)-\(seen[name]!)" : name, warmUpClicks: warmUpClicks, training: training, stage: stage))
        }
        return arms
    }

    /// Which arm a user is in: a stable hash of the user id, salted per experiment and mixed,
    /// so every seed draws a new partition (FNV-1a alone modulo 2 is the parity of the id's
    /// digits: the salt could only swap the two halves).
    public static func assign(_ user: UserID, arms: Int, salt: UInt64) -> Int {
        Int(StableHash.mix(StableHash.fnv1a(user.rawValue) ^ StableHash.mix(salt)) % UInt64(max(1, arms)))
    }
}
