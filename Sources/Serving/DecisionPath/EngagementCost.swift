import Domain

/// The user's side of an impression's value: what showing the ad is expected to cost in
/// engagement, in micros, subtracted from the advertiser's expected value so that slots go by
/// total value = bid × P(billed event) − `hideMicros` × P(hide). P(hide | impression) is each
/// ad's hide rate smoothed by `prior` (2% worth 50 impressions; hides, hidden advertisers and
/// "not relevant" all count). With the cost on, a slot whose best total value is not positive
/// stays empty: fewer ads where they cost users more than they earn, always within the ad-load
/// rules. 0 (the default) ranks by the advertiser's value alone, as the control always has.
public struct EngagementCost: Sendable, Equatable {
    /// The exchange rate: micros of advertiser value one expected hide is worth.
    public var hideMicros: Double
    public static let prior = BetaPrior.hide

    public init(hideMicros: Double = 0) { self.hideMicros = max(0, hideMicros) }

    public var isOn: Bool { hideMicros > 0 }

    @inline(__always)
    public static func pHide(hides: Int64, impressions: Int64) -> Double { prior.mean(successes: hides, trials: impressions) }

    /// The expected cost of one impression of this candidate, in micros: with the ranker's
    /// P(hide) for this user when it has a hide model (`Prediction.hide`), else the ad's rate.
    @inline(__always)
    public func cost(_ candidate: Candidate, hide: Double? = nil) -> Double {
        isOn ? hideMicros * (hide ?? Self.pHide(hides: candidate.hides, impressions: candidate.impressions)) : 0
    }

    /// The total value of one impression of this candidate under `prediction`, in micros: the
    /// advertiser's expected value less this cost (the value order's and pre-ranking's value).
    @inline(__always)
    public func totalValue(_ candidate: Candidate, _ prediction: Prediction) -> Double {
        prediction.expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros) - cost(candidate, hide: prediction.hide)
    }
}
