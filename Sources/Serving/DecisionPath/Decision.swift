import Domain

/// One ad placed in a page: the candidate as the ranker saw it, what it predicted, how the ad
/// was chosen and priced, and its signed token.
public struct Placement: Sendable {
    public var afterPost: Int
    /// What the ranker saw for this ad: the serve-time inputs that training logs keep.
    public var candidate: Candidate
    public var prediction: Prediction
    /// Expected value of the impression in micros: what it was ranked by.
    public var expectedValueMicros: Double
    /// The probability with which the policy chose this ad for this slot, given the slots
    /// before it (1 for the deterministic ranking): what off-policy evaluation needs.
    public var propensity: Double
    /// Given its slot by exploration (a young ad drawn by Thompson sampling), not by winning
    /// the auction: it pays the reserve.
    public var explored: Bool
    public var priceMicros: Micros
    public var impressionToken: String

    public var ad: Ad { candidate.ad }
    public var campaignID: CampaignID { candidate.campaignID }
    public var advertiserID: AdvertiserID { candidate.advertiserID }
    public var objective: Objective { candidate.objective }
}

public struct Decision: Sendable {
    public var decisionID: String
    /// The serving path that decided (an experiment arm's name; "default" on a plain server).
    public var arm: String
    public var placements: [Placement]
    /// What the decision saw and did (`DecisionTrace`), unless tracing is off.
    public var trace: DecisionTrace?
    /// Each campaign's fate, on the sampled decisions (`DecisionEngine.lossSampleRate`); else empty.
    public var losses: [CampaignLoss] = []

    public init(decisionID: String, arm: String, placements: [Placement], trace: DecisionTrace? = nil) {
        self.decisionID = decisionID
        self.arm = arm
        self.placements = placements
        self.trace = trace
    }

    /// The key of one placement's impression: what events, the join and the logs use.
    public func placementKey(_ placement: Placement) -> String {
        ImpressionToken.placementKey(decisionID: decisionID, afterPost: placement.afterPost)
    }
}

/// How a decision chooses among eligible ads.
public enum SelectionPolicy: Sendable, Equatable {
    /// Highest expected value first (the ranker's predictions).
    case ranked
    /// Uniformly at random, slot by slot, among the eligible ads of advertisers not yet placed;
    /// each placement logs its exact propensity. Seeded per decision, so reproducible.
    case uniformRandom(seed: UInt64)
}

/// What a decision reads of the catalog, taken once at its start: the snapshot and, for a
/// user-independent ranker, the best-first order built for exactly that snapshot.
public struct CatalogView: Sendable {
    public let snapshot: CatalogSnapshot
    public let ranking: RankingIndex?
    /// The serving ranker's best-first order of the ads by their value to anyone (no user),
    /// which the candidate stage adds its best eligible ads from (the value pool), when the
    /// decision path has a retriever. Built for a recent snapshot, maybe not `snapshot`: its ads
    /// are found in `snapshot` by their state slots.
    public let valueOrder: RankingIndex?

    /// The snapshot alone: every eligible ad is scored.
    public init(snapshot: CatalogSnapshot) {
        self.snapshot = snapshot
        self.ranking = nil
        self.valueOrder = nil
    }

    /// The current snapshot with a value order, for a user-dependent ranker behind a candidate
    /// stage.
    public init(snapshot: CatalogSnapshot, valueOrder: RankingIndex?) {
        self.snapshot = snapshot
        self.ranking = nil
        self.valueOrder = valueOrder
    }

    /// The order's own snapshot, with the order.
    public init(ranking: RankingIndex) {
        self.snapshot = ranking.snapshot
        self.ranking = ranking
        self.valueOrder = nil
    }
}

/// One request as the decision path sees it.
public struct DecisionRequest: Sendable {
    public var decisionID: String
    public var userID: UserID
    public var profile: UserProfile?
    /// What was delivered to the user (caps, hides); nil: nothing known (a new user, or the
    /// store unreachable).
    public var user: UserState?
    public var context: FeedContext
    public var organicCount: Int
    public var now: Timestamp

    public init(
        decisionID: String, userID: UserID, profile: UserProfile?, user: UserState? = nil, context: FeedContext, organicCount: Int, now: Timestamp
    ) {
        self.decisionID = decisionID
        self.userID = userID
        self.profile = profile
        self.user = user
        self.context = context
        self.organicCount = organicCount
        self.now = now
    }
}
