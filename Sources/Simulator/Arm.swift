import Domain
import Serving

/// One arm of the simulated A/B test: a named configuration of the real serving path, plus the
/// hook called between simulated days (where learned arms retrain). New arms are added here
/// (`Arm.named`), never in the simulation loop.
public protocol Arm: Sendable {
    var name: String { get }
    /// This arm's serving path over the shared store, catalog and delivery state.
    func servingPath(base: DecisionService, seed: UInt64) -> DecisionService
    /// Called after each simulated day with that day's impression logs.
    func endOfDay(_ day: Int, logs: [ImpressionLog]) async throws
    /// Whether `endOfDay` reads the logs (otherwise they are not kept in memory).
    var wantsLogs: Bool { get }
    /// The impressions this arm just served, as the serve log records them.
    func served(_ logs: [ImpressionLog])
    /// An event the feed reported for one of this arm's impressions, when it arrived.
    func observe(_ type: EventType, impressionID: String, at time: Timestamp)
    /// Simulated time moved on (called every few simulated minutes): learning arms learn.
    func advance(to now: Timestamp)
    /// What the arm wants the report's reader to know (a learning arm: its retrains).
    var notes: [String] { get }
}

extension Arm {
    public func endOfDay(_ day: Int, logs: [ImpressionLog]) async throws {}
    public var wantsLogs: Bool { false }
    public func served(_ logs: [ImpressionLog]) {}
    public func observe(_ type: EventType, impressionID: String, at time: Timestamp) {}
    public func advance(to now: Timestamp) {}
    public var notes: [String] { [] }
}

/// Today's rule-based ranking: bid × smoothed historical rate.
public struct BaselineArm: Arm {
    public let name = "baseline"
    public init() {}
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        var configuration = base.configuration
        configuration.policy = .ranked
        return base.variant(ranker: RuleBasedRanker(), configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: seed))
    }
}

/// Uniformly random eligible ads: unbiased logs with exact propensities.
public struct RandomArm: Arm {
    public let name = "random"
    public init() {}
    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        var configuration = base.configuration
        configuration.policy = .uniformRandom(seed: seed)
        return base.variant(ranker: RuleBasedRanker(), configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: seed))
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
