import Domain
import Serving

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
    func advance(to now: Timestamp)
    /// Called after each simulated day: learning arms retrain.
    func endOfDay(_ day: Int) async throws
    /// What the arm wants the report's reader to know (a learning arm: its retrains).
    var notes: [String] { get }
}

extension Arm {
    public var observer: (any ServingObserver)? { nil }
    public func advance(to now: Timestamp) {}
    public func endOfDay(_ day: Int) async throws {}
    public var notes: [String] { [] }

    /// The base path's configuration for this arm: its name on every decision, and `policy`.
    func servingConfiguration(base: DecisionService, policy: SelectionPolicy) -> ServingConfiguration {
        var configuration = base.configuration
        configuration.policy = policy
        configuration.arm = name
        return configuration
    }
}

/// Today's rule-based ranking: bid × smoothed historical rate.
public struct BaselineArm: Arm {
    public let name = "baseline"
    public init() {}
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        base.variant(ranker: RuleBasedRanker(), configuration: servingConfiguration(base: base, policy: .ranked), decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

/// Uniformly random eligible ads: unbiased logs with exact propensities.
public struct RandomArm: Arm {
    public let name = "random"
    public init() {}
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        base.variant(
            ranker: RuleBasedRanker(), configuration: servingConfiguration(base: base, policy: .uniformRandom(seed: seed)),
            decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

public enum Arms {
    public static let known = ["baseline", "random", "ml"]

    public static func named(_ name: String) throws(AdServeError) -> any Arm {
        switch name {
        case "baseline": BaselineArm()
        case "random": RandomArm()
        case "ml": try MLArm()
        default: throw AdServeError.invalid("arms", "unknown arm '\(name)'; known: \(known.joined(separator: ", "))")
        }
    }

    /// Which arm a user is in: a stable hash of the user id, salted per experiment.
    public static func assign(_ user: UserID, arms: Int, salt: UInt64) -> Int {
        Int(StableHash.fnv1a(user.rawValue, seed: 0xcbf2_9ce4_8422_2325 ^ salt) % UInt64(max(1, arms)))
    }
}
