import Foundation

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
    /// P(hide | impression): mean 2%, worth 50 impressions.
    public static let hide = BetaPrior(alpha: 1, beta: 49)

    /// The smoothed rate after `successes` in `trials`, never above 1.
    @inline(__always)
    public func mean(successes: Int64, trials: Int64) -> Double {
        min((Double(successes) + alpha) / (Double(trials) + alpha + beta), 1)
    }

    /// The smoothed rate of one member of a group (an ad of an advertiser), shrunk towards the
    /// group's own smoothed rate instead of the global prior: the group's rate is this prior's
    /// posterior mean on the group's totals, and the member's is its own evidence plus the
    /// group's rate worth α + β trials. A member with no evidence starts at its group's rate; a
    /// group with none at the global mean. Empirical Bayes in two levels: global → group → member.
    @inline(__always)
    public func pooledMean(successes: Int64, trials: Int64, groupSuccesses: Int64, groupTrials: Int64) -> Double {
        let group = mean(successes: groupSuccesses, trials: groupTrials)
        let strength = alpha + beta
        return min((Double(successes) + strength * group) / (Double(trials) + strength), 1)
    }

    /// A draw of the rate from its posterior Beta(α + successes, β + trials − successes):
    /// Thompson sampling's belief about an ad's CTR. Deterministic given the generator.
    public func draw(successes: Int64, trials: Int64, using rng: inout SplitMix64) -> Double {
        let a = alpha + Double(max(0, successes))
        let b = beta + Double(max(0, trials - successes))
        // Beta(1, b), an ad with no success yet under a prior of α = 1 (the CTR prior): its CDF
        // is 1 − (1 − x)^b, so 1 − U^(1/b) is an exact draw — one uniform and a power, where
        // two Gamma draws cost about five uniforms, a cosine and two logarithms.
        if a == 1, b > 0 {
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            return -expm1(log(u) / b)
        }
        let x = Self.gamma(shape: a, using: &rng)
        let y = Self.gamma(shape: b, using: &rng)
        return x + y > 0 ? x / (x + y) : a / (a + b)
    }

    /// A Gamma(shape, 1) draw (Marsaglia & Tsang 2000; shapes below 1 boosted by U^(1/shape)).
    static func gamma(shape: Double, using rng: inout SplitMix64) -> Double {
        if shape < 1 {
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            return gamma(shape: shape + 1, using: &rng) * pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0
            var v = 0.0
            repeat {
                x = rng.gaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }
}
