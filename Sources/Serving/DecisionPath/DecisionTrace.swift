import Domain

/// What one decision saw and did, recorded as it was decided: the request, the best candidates
/// with their predictions and values, the winners with the auction's arithmetic, and what the
/// user's protections filtered out. `GET /v1/decisions/{id}/explain` shows it; `why` words it
/// for the user.
public struct DecisionTrace: Sendable {
    /// One ranked candidate: placed, the auction's runner-up (whose value set the prices), or
    /// one that was outbid.
    public struct Considered: Sendable {
        public enum Outcome: String, Sendable, Codable { case placed, runnerUp = "runner_up", outbid }
        public var candidate: Candidate
        public var prediction: Prediction
        /// Expected value of one impression in micros (bid × P(billed event), after "not relevant").
        public var valueMicros: Double
        public var outcome: Outcome
    }

    /// One placement with its auction arithmetic.
    public struct Placed: Sendable {
        public var afterPost: Int
        public var candidate: Candidate
        public var prediction: Prediction
        public var valueMicros: Double
        /// What is charged per billed event (per impression for CPM).
        public var priceMicros: Micros
        public var explored: Bool
        public var propensity: Double
    }

    public var decisionID: String
    public var arm: String
    public var userID: UserID
    public var at: Timestamp
    /// The profile and context the ranker saw (depersonalized when the user opted out).
    public var profile: UserProfile?
    public var context: FeedContext
    public var personalized: Bool
    public var policy: String
    public var auction: AuctionRules
    /// Ad positions the ad-load rules gave the page (0 on a page too short for an ad).
    public var slots: Int
    public var placed: [Placed]
    /// The best candidates, best first (at most `DecisionEngine.traceCandidates`).
    public var considered: [Considered]
    /// The runner-up's value: the basis of the second prices.
    public var runnerUpValueMicros: Double?
    /// What the user's protections shut out for this decision.
    public var frequencyCappedCampaigns: [CampaignID]
    public var frequencyCappedAds: [AdID]
    public var hiddenAds: [AdID]
    public var hiddenAdvertisers: [AdvertiserID]
    public var notRelevantCount: Int
    /// The best ads for anyone that this user did not get, and why (`NotableLoser`).
    public var notableLosers: [NotableLoser] = []

    /// One of the first ads of the serving ranker's order by value to anyone (no user), of a
    /// campaign that won nothing in this decision.
    public struct NotableLoser: Sendable {
        public var campaignID: CampaignID
        public var adID: AdID
        public var advertiserID: AdvertiserID
        public var objective: Objective
        public var bidMicros: Micros
        /// Its value to anyone, where the order ranks it.
        public var valueMicros: Double
        /// The first eligibility rule that kept its campaign or the ad itself out; `outbid` when
        /// it was eligible and did not win (lower in value for this user, not among the
        /// candidates, or another ad of its advertiser placed instead).
        public var reason: LossReason
    }
}

/// Why a campaign did not win a sampled decision (`DecisionEngine.lossSampleRate`), or that it won.
public enum LossReason: String, Sendable, Codable, CaseIterable {
    case won
    /// Out of its schedule (not started or ended).
    case schedule
    /// The user is outside its targeting (country, age, gender, language, interests, device).
    case targeting
    /// Its bid is below its billing type's reserve.
    case belowReserve = "below_reserve"
    /// The user hid its advertiser.
    case hiddenByUser = "hidden_by_user"
    /// The user reached one of its frequency caps, or hid or capped all its ads.
    case frequencyCap = "frequency_cap"
    /// Its daily or total budget is spent.
    case budget
    /// Budget pacing held it back from this decision: it was ahead of its spend target.
    case pacing
    /// Eligible, but others' expected values were higher.
    case outbid
}

/// One campaign's fate in a sampled decision: the reason, and for an outbid campaign ranked
/// among the traced candidates, the least bid that would have taken the last slot.
public struct CampaignLoss: Sendable, Equatable {
    public var campaignID: CampaignID
    public var reason: LossReason
    public var minimumBidToWinMicros: Micros?
    /// The campaign's state slot in the catalog it was judged in, where a tally keeps it.
    var slot: Int32
}
