/// A Beta(α, β) prior on a rate: the posterior mean (successes + α) / (trials + α + β) starts at
/// the prior mean α / (α + β) and moves to the observed rate as evidence accumulates. The
/// rule-based control's smoothed CTR and CVR, and the estimate training compares models with.
public struct BetaPrior: Sendable, Equatable {
    public var alpha: Double
    public var beta: Double

    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// CTR: mean 1%, worth 100 impressions.
    public static let click = BetaPrior(alpha: 1, beta: 99)
    /// CVR (per click): mean 5%, worth 20 clicks.
    public static let conversion = BetaPrior(alpha: 1, beta: 19)

    /// The smoothed rate after `successes` in `trials`, never above 1.
    @inline(__always)
    public func mean(successes: Int64, trials: Int64) -> Double {
        min((Double(successes) + alpha) / (Double(trials) + alpha + beta), 1)
    }
}
