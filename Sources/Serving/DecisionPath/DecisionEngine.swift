import Domain

/// The decision path, pure apart from reading live delivery state, as explicit stages:
/// eligibility (`Eligibility`) → candidates (`CandidateGeneration`, with a `CandidateRetriever`) → ranking (`Ranking`) →
/// ordering and placement (`PagePlacement`) → signing (`TokenSigner`). No I/O, no HTTP: the
/// server, the simulator and the benchmark all call it.
public struct DecisionEngine: Sendable {
    public var adLoad: AdLoadPolicy
    public var signer: TokenSigner
    public var policy: SelectionPolicy
    /// K of the candidate stage: how many ads a retriever hands the ranker (plus fresh ones),
    /// and how many of the best eligible ads of the rule-based order join them (the value pool).
    public var candidateCount: Int
    public var valuePool: Int
    /// Pricing and reserves (`Auction`).
    public var auction: AuctionRules
    /// The share of ranked slots given to young ads (`Exploration`).
    public var exploration: ExplorationPolicy

    public init(
        adLoad: AdLoadPolicy = AdLoadPolicy(), signer: TokenSigner, policy: SelectionPolicy = .ranked, candidateCount: Int = 500, valuePool: Int = 100,
        auction: AuctionRules = AuctionRules(), exploration: ExplorationPolicy = .off
    ) {
        self.adLoad = adLoad
        self.auction = auction
        self.exploration = exploration
        self.signer = signer
        self.policy = policy
        self.candidateCount = candidateCount
        self.valuePool = valuePool
    }

    /// Decides one page. With a best-first order in the view (a user-independent ranker) the
    /// ads are walked from it; without one, `ranker` scores for this user the candidates the
    /// `retriever` finds among the eligible ads, or every eligible ad when there is no retriever
    /// (or it has no model yet).
    public func decide(
        _ request: DecisionRequest, arm: String, view: CatalogView, delivery: DeliveryState, ranker: some Ranker,
        retriever: (any CandidateRetriever)? = nil, audit: CandidateAudit? = nil
    ) -> Decision {
        let positions = adLoad.positions(organicCount: request.organicCount)
        guard !positions.isEmpty else { return Decision(decisionID: request.decisionID, arm: arm, placements: []) }
        let eligibility = Eligibility(
            snapshot: view.snapshot, profile: request.profile, context: request.context, userID: request.userID, now: request.now, delivery: delivery,
            auction: auction)
        // Second price needs the best candidate left out: ranked paths fill one more than the slots.
        let wanted = positions.count + (auction.pricing == .secondPrice ? 1 : 0)
        var picks: [Pick]
        if case .uniformRandom(let seed) = policy {
            // Not an auction: random picks pay their bids.
            let random = Ranking.random(
                count: positions.count, seed: seed ^ StableHash.fnv1a(request.decisionID), ranker: ranker, request: request,
                eligibility: eligibility, delivery: delivery)
            let placements = PagePlacement.place(random, prices: random.map(\.candidate.bidMicros), positions: positions, request: request, signer: signer)
            return Decision(decisionID: request.decisionID, arm: arm, placements: placements)
        } else if let ranking = view.ranking {
            picks = Ranking.walk(ranking, count: wanted, eligibility: eligibility, delivery: delivery, now: request.now)
        } else {
            let retrieved = retriever.flatMap {
                CandidateGeneration.retrieved(
                    eligibility, retriever: $0, k: candidateCount, valueOrder: view.valueOrder, valuePool: valuePool, request: request, delivery: delivery)
            }
            let candidates = retrieved ?? CandidateGeneration.exhaustive(eligibility, delivery: delivery, now: request.now)
            picks = Ranking.best(candidates, count: wanted, ranker: ranker, request: request, relevance: eligibility.relevance)
            if let retrieved, let audit, audit.samples(request.decisionID) {
                let full = Ranking.best(
                    CandidateGeneration.exhaustive(eligibility, delivery: delivery, now: request.now), count: positions.count, ranker: ranker, request: request,
                    relevance: eligibility.relevance)
                let ids = Set(retrieved.map(\.candidate.adID))
                audit.record(
                    chosen: full.count, found: full.filter { ids.contains($0.candidate.adID) }.count, fullValue: full.reduce(0) { $0 + $1.value },
                    stagedValue: picks.prefix(positions.count).reduce(0) { $0 + $1.value })
            }
        }
        let runnerUp = picks.count > positions.count ? picks.removeLast() : nil
        var prices = Auction.prices(picks.map(\.bid), runnerUp: runnerUp?.bid, rules: auction)
        if exploration.isOn {
            Exploration.apply(
                &picks, prices: &prices, policy: exploration, auction: auction, eligibility: eligibility, delivery: delivery, request: request)
        }
        return Decision(
            decisionID: request.decisionID, arm: arm, placements: PagePlacement.place(picks, prices: prices, positions: positions, request: request, signer: signer))
    }
}
