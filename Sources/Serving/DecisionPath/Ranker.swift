import Domain

/// One ad being considered for one request: what a ranker may look at.
public struct Candidate: Sendable {
    public var adID: AdID
    public var campaignID: CampaignID
    public var advertiserID: AdvertiserID
    public var objective: Objective
    public var bidMicros: Micros
    /// The ad itself (format, caption, …) and its age when ranked.
    public var ad: Ad
    public var adAgeHours: Int64
    /// All-time delivery counters of the ad.
    public var impressions: Int64
    public var clicks: Int64
    public var conversions: Int64
    /// Impressions of this ad's campaign to this user in the recent past (fatigue).
    public var userCampaignImpressions: Int
    /// All-time clicks and conversions of every ad of the advertiser (filled for conversion
    /// campaigns only): the group a pooled P(conversion | click) shrinks towards.
    public var advertiserClicks: Int64 = 0
    public var advertiserConversions: Int64 = 0
    /// All-time hides of the ad (`EngagementCost`).
    public var hides: Int64 = 0
    /// Ads this user has hidden: a sign of how little they tolerate ads (the same for every
    /// candidate of a request).
    public var userHides = 0
    /// The ad's state slot: small, dense and stable while the ad exists, so a ranker can keep
    /// per-ad work in an array; -1 for a candidate made outside a catalog.
    public var adSlot: Int32

    public init(
        adID: AdID, campaignID: CampaignID, advertiserID: AdvertiserID, objective: Objective, bidMicros: Micros,
        ad: Ad, adAgeHours: Int64, impressions: Int64, clicks: Int64, conversions: Int64, userCampaignImpressions: Int = 0, adSlot: Int32 = -1
    ) {
        self.adID = adID
        self.campaignID = campaignID
        self.advertiserID = advertiserID
        self.objective = objective
        self.bidMicros = bidMicros
        self.ad = ad
        self.adAgeHours = adAgeHours
        self.impressions = impressions
        self.clicks = clicks
        self.conversions = conversions
        self.userCampaignImpressions = userCampaignImpressions
        self.adSlot = adSlot
    }
}

/// Predicted probabilities for one candidate.
public struct Prediction: Sendable, Equatable {
    /// P(click | impression).
    public var click: Double
    /// P(conversion | click).
    public var conversion: Double
    /// P(hide | impression) for this user, from a hide model; nil when the ranker has none
    /// (total value then uses the ad's smoothed hide rate, `EngagementCost`).
    public var hide: Double?
    public init(click: Double, conversion: Double, hide: Double? = nil) {
        self.click = click
        self.conversion = conversion
        self.hide = hide
    }

    /// Expected advertiser value of one impression, in micros: the bid times the probability of
    /// the billed event (CPM: bid / 1000; CPC: bid × P(click); CPA: bid × P(click) × P(conv | click)).
    public func expectedValuePerImpression(objective: Objective, bidMicros: Micros) -> Double {
        switch objective {
        case .awareness: Double(bidMicros) / 1000
        case .traffic: Double(bidMicros) * click
        case .conversions: Double(bidMicros) * click * conversion
        }
    }
}

/// Predicts P(click) and P(conversion | click). The decision path is generic over it, so the
/// rule-based control and learned models plug into the same auction.
public protocol Ranker: Sendable {
    func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction

    /// Predictions for all candidates of one request, in order. A ranker overrides it to do
    /// per-request work (the user's features) once instead of once per candidate.
    func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction]

    /// Predictions good enough to rank `candidates` by: as `predict`, except that P(conversion |
    /// click) may be left at 0 where the objective does not price conversions (awareness and
    /// traffic), and P(click) where it prices neither (awareness: a bid per impression), so a
    /// ranker skips those models there. The ranking then asks `predict` for the few ads it keeps.
    func predictForRanking(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction]

    /// True when predictions depend only on the ad, never on the user or context: the decision
    /// path then ranks from a precomputed order (`RankingIndex`) and stops early.
    var isUserIndependent: Bool { get }
}

extension Ranker {
    public var isUserIndependent: Bool { false }

    public func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        candidates.map { predict($0, user: user, context: context) }
    }

    public func predictForRanking(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        predict(candidates, user: user, context: context)
    }
}

/// Today's system, kept as the control: smoothed historical rates (`BetaPrior`), so a new ad
/// starts at the prior mean instead of zero and converges to its observed rate.
public struct RuleBasedRanker: Ranker {
    public var clickPrior: BetaPrior
    public var conversionPrior: BetaPrior
    /// P(conversion | click) shrunk towards the advertiser's rate (`BetaPrior.pooledMean`)
    /// instead of the global prior. Off in the control, which stays as it was; on in the learned
    /// ranker's fallback, which prices conversion ads before a conversion model exists.
    public var poolsConversions: Bool

    public init(clickPrior: BetaPrior = .click, conversionPrior: BetaPrior = .conversion, poolsConversions: Bool = false) {
        self.clickPrior = clickPrior
        self.conversionPrior = conversionPrior
        self.poolsConversions = poolsConversions
    }

    /// Historical rates are properties of the ad alone.
    public var isUserIndependent: Bool { true }

    public func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
        Prediction(
            click: clickPrior.mean(successes: candidate.clicks, trials: candidate.impressions),
            conversion: poolsConversions
                ? conversionPrior.pooledMean(
                    successes: candidate.conversions, trials: candidate.clicks, groupSuccesses: candidate.advertiserConversions,
                    groupTrials: candidate.advertiserClicks)
                : conversionPrior.mean(successes: candidate.conversions, trials: candidate.clicks))
    }
}
