import Domain

/// How simulated users respond to ads. Multiplicative and non-linear in the latent affinity —
/// not a logistic regression over anything AdServe observes — so a model has to learn it.
public struct Behaviour: Sendable {
    public var baseClickRate = 0.025
    /// Click-rate multiplier exp(affinitySlope × (affinity − affinityPivot)).
    public var affinitySlope = 3.0
    public var affinityPivot = 0.35
    /// Position bias: (firstPosition / afterPost) ^ positionExponent.
    public var positionExponent = 0.6
    /// Each earlier impression of the same ad to the same user multiplies P(click) by this.
    public var fatigue = 0.75
    /// Ads this irrelevant (affinity below) annoy: they raise P(hide) and shorten sessions.
    public var irrelevance = 0.1

    public init() {}

    /// P(click | impression).
    public func clickProbability(affinity: Double, quality: Double, afterPost: Int, seenBefore: Int, hour: Int) -> Double {
        let position = pow(3.0 / Double(max(afterPost, 1)), positionExponent)
        let hourFactor = hour >= 19 ? 1.15 : hour < 7 ? 0.8 : 1.0
        let p = baseClickRate * quality * exp(affinitySlope * (affinity - affinityPivot)) * position
            * pow(fatigue, Double(seenBefore)) * hourFactor
        return min(max(p, 0), 0.6)
    }

    /// P(conversion | click): the advertiser's rate, higher for users who care.
    public func conversionProbability(advertiserRate: Double, affinity: Double) -> Double {
        min(advertiserRate * (0.6 + 0.8 * max(0, affinity)), 0.9)
    }

    /// P(hide | impression): rises with irrelevance and with the ads already seen this session.
    public func hideProbability(affinity: Double, tolerance: Double, adsThisSession: Int) -> Double {
        let irrelevant = max(0, irrelevance + 0.1 - affinity)
        return min(0.002 + (0.05 * irrelevant + 0.003 * Double(adsThisSession)) / tolerance, 0.5)
    }

    /// P(next page | this page): the user's habit, less for each annoying ad and each hide.
    public func continueProbability(base: Double, annoyingAds: Int, hides: Int, tolerance: Double) -> Double {
        max(0.05, base - (0.06 * Double(annoyingAds) + 0.15 * Double(hides)) / tolerance)
    }

    /// Tomorrow's satisfaction (multiplies the visit probability): recovers slowly, worn down by
    /// annoying ads and hides today.
    public func nextSatisfaction(_ current: Double, annoyingAds: Int, hides: Int, tolerance: Double) -> Double {
        let recovered = current + 0.1 * (1 - current)
        return min(1, max(0.2, recovered - (0.01 * Double(annoyingAds) + 0.05 * Double(hides)) / tolerance))
    }

    /// Share of users' sessions starting at each hour (UTC), a two-peak diurnal curve.
    public static let hourlyArrivals: [Double] = {
        let raw = (0..<24).map { h -> Double in
            let noon = exp(-pow(Double(h) - 12.5, 2) / 8)
            let evening = 1.4 * exp(-pow(Double(h) - 20.5, 2) / 6)
            return 0.08 + noon + evening
        }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }()
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
