import Domain

/// The decision path, pure apart from reading live delivery state, as explicit stages:
/// eligibility (`Eligibility`) → candidates (`CandidateGeneration`) → ranking (`Ranking`) →
/// ordering and placement (`PagePlacement`) → signing (`TokenSigner`). No I/O, no HTTP: the
/// server, the simulator and the benchmark all call it.
public struct DecisionEngine: Sendable {
    public var adLoad: AdLoadPolicy
    public var signer: TokenSigner
    public var policy: SelectionPolicy

    public init(adLoad: AdLoadPolicy = AdLoadPolicy(), signer: TokenSigner, policy: SelectionPolicy = .ranked) {
        self.adLoad = adLoad
        self.signer = signer
        self.policy = policy
    }

    /// Decides one page. With a best-first order in the view (a user-independent ranker) the
    /// ads are walked from it; without one, every eligible ad is scored by `ranker` for this user.
    public func decide(_ request: DecisionRequest, arm: String, view: CatalogView, delivery: DeliveryState, ranker: some Ranker) -> Decision {
        let positions = adLoad.positions(organicCount: request.organicCount)
        guard !positions.isEmpty else { return Decision(decisionID: request.decisionID, arm: arm, placements: []) }
        let eligibility = Eligibility(
            snapshot: view.snapshot, profile: request.profile, context: request.context, userID: request.userID, now: request.now, delivery: delivery)
        let picks: [Pick]
        if case .uniformRandom(let seed) = policy {
            picks = Ranking.random(
                count: positions.count, seed: seed ^ StableHash.fnv1a(request.decisionID), ranker: ranker, request: request,
                eligibility: eligibility, delivery: delivery)
        } else if let ranking = view.ranking {
            picks = Ranking.walk(ranking, count: positions.count, eligibility: eligibility, delivery: delivery, now: request.now)
        } else {
            let candidates = CandidateGeneration.exhaustive(eligibility, delivery: delivery, now: request.now)
            picks = Ranking.best(candidates, count: positions.count, ranker: ranker, request: request)
        }
        return Decision(decisionID: request.decisionID, arm: arm, placements: PagePlacement.place(picks, positions: positions, request: request, signer: signer))
    }
}
