import Domain

/// The decision path, pure apart from reading live delivery state, as explicit stages:
/// eligibility (`Eligibility`) → candidates (`CandidateGeneration`, with a `CandidateRetriever`) → pre-ranking (`PreRanking`) →
/// ranking (`Ranking`) →
/// ordering and placement (`PagePlacement`) → signing (`TokenSigner`). No I/O, no HTTP: the
/// server, the simulator and the benchmark all call it.
public struct DecisionEngine: Sendable {
    public var adLoad: AdLoadPolicy
    public var signer: TokenSigner
    public var policy: SelectionPolicy
    /// K of the candidate stage: how many ads a retriever hands the ranker (plus fresh ones),
    /// how many of the best eligible ads of the value order (the serving ranker's value with no
    /// user) join them (the value pool), how many more of each objective's own order, and how
    /// many of each of the user's interests' order (`CandidateGeneration.retrieved`).
    public var candidateCount: Int
    public var valuePool: Int
    public var objectivePool: Int
    public var interestPool: Int
    /// How many of those candidates the ranker scores for the user, chosen by their value with
    /// no user scaled to this user (`PreRanking`); 0 scores them all.
    public var preRankCount: Int
    /// Whether that cut also weighs the user's affinity with each candidate, when the retriever
    /// scores them (`CandidateRetriever.affinities`).
    public var preRankAffinity: Bool
    /// Pricing and reserves (`Auction`).
    public var auction: AuctionRules
    /// The share of ranked slots given to young ads (`Exploration`).
    public var exploration: ExplorationPolicy
    /// The user's side of total value (`EngagementCost`); off by default.
    public var engagement: EngagementCost
    /// Creative fatigue: the share of P(click) an ad keeps per time the user saw its campaign
    /// (`Fatigue`); 1, the default, is off.
    public var fatigue: Double
    /// How many of the best candidates a decision's trace keeps (0: no trace).
    public var traceCandidates: Int
    /// Share of decisions on which every campaign's fate is recorded (`CampaignLoss`).
    public var lossSampleRate: Double
    /// A budget-split experiment arm's campaigns (`CampaignSlice`); nil: every campaign.
    public var campaignSlice: CampaignSlice?

    public init(
        adLoad: AdLoadPolicy = AdLoadPolicy(), signer: TokenSigner, policy: SelectionPolicy = .ranked, candidateCount: Int = 100, valuePool: Int = 100,
        objectivePool: Int = 20, interestPool: Int = 20, preRankCount: Int = 0, preRankAffinity: Bool = false,
        auction: AuctionRules = AuctionRules(), exploration: ExplorationPolicy = .off, traceCandidates: Int = 10, lossSampleRate: Double = 0.001,
        engagement: EngagementCost = EngagementCost(), campaignSlice: CampaignSlice? = nil, fatigue: Double = 1
    ) {
        self.fatigue = fatigue
        self.campaignSlice = campaignSlice
        self.engagement = engagement
        self.traceCandidates = traceCandidates
        self.lossSampleRate = lossSampleRate
        self.adLoad = adLoad
        self.auction = auction
        self.exploration = exploration
        self.signer = signer
        self.policy = policy
        self.candidateCount = candidateCount
        self.valuePool = valuePool
        self.objectivePool = objectivePool
        self.interestPool = interestPool
        self.preRankCount = preRankCount
        self.preRankAffinity = preRankAffinity
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
        let eligibility = Eligibility(
            snapshot: view.snapshot, profile: request.profile, context: request.context, user: request.user, now: request.now,
            auction: auction, slice: campaignSlice, paceSeed: StableHash.fnv1a(request.decisionID), fatigue: fatigue)
        guard !positions.isEmpty else {
            // No slot on this page: nothing is ranked, but the decision is traced like any other,
            // so the id the feed was given can be explained.
            return finish(
                Decision(decisionID: request.decisionID, arm: arm, placements: []), request: request, view: view, eligibility: eligibility,
                delivery: delivery, considered: [], runnerUp: nil, slots: 0)
        }
        // Second price needs the best candidate left out: ranked paths fill one more than the slots.
        let wanted = positions.count + (auction.pricing == .secondPrice ? 1 : 0)
        // Scored paths keep a few more of the best candidates than the auction needs, for the
        // trace (free: they were scored anyway); the walk of a precomputed order stops at what
        // the auction needs.
        let ranked = max(wanted, traceCandidates)
        var picks: [Pick]
        if case .uniformRandom(let seed) = policy {
            // Not an auction: random picks pay their bids.
            let random = Ranking.random(
                count: positions.count, seed: seed ^ StableHash.fnv1a(request.decisionID), ranker: ranker, request: request,
                eligibility: eligibility, delivery: delivery)
            let placements = PagePlacement.place(random, prices: random.map(\.candidate.bidMicros), positions: positions, request: request, signer: signer)
            return finish(
                Decision(decisionID: request.decisionID, arm: arm, placements: placements), request: request, view: view, eligibility: eligibility,
                delivery: delivery, considered: random, runnerUp: nil, slots: positions.count)
        } else if let ranking = view.ranking {
            picks = Ranking.walk(ranking, count: wanted, eligibility: eligibility, delivery: delivery, now: request.now, engagement: engagement)
        } else {
            let retrieved = retriever.flatMap {
                CandidateGeneration.retrieved(
                    eligibility, retriever: $0, k: candidateCount, valueOrder: view.valueOrder, valuePool: valuePool, objectivePool: objectivePool,
                    interestPool: interestPool, request: request, delivery: delivery)
            }
            // The retrieved candidates cut to what the ranker scores; every eligible ad without a retriever.
            let (candidates, predicted) = retrieved.map {
                PreRanking.select(
                    $0, keep: preRankCount, valueOrder: view.valueOrder, ranker: ranker, retriever: preRankAffinity ? retriever : nil, request: request,
                    eligibility: eligibility, delivery: delivery, engagement: engagement)
            } ?? (CandidateGeneration.exhaustive(eligibility, delivery: delivery, now: request.now), [])
            picks = Ranking.best(
                candidates, count: ranked, ranker: ranker, request: request, relevance: eligibility.relevance, fatigue: eligibility.fatigue, engagement: engagement,
                predicted: predicted)
            if retrieved != nil, let audit, audit.samples(request.decisionID) {
                let ranking = Ranking.best(
                    CandidateGeneration.exhaustive(eligibility, delivery: delivery, now: request.now), count: wanted, ranker: ranker, request: request,
                    relevance: eligibility.relevance, fatigue: eligibility.fatigue, engagement: engagement)
                let full = ranking.prefix(positions.count)
                let ids = Set(candidates.map(\.adID))
                audit.record(
                    chosen: full.count, found: full.filter { ids.contains($0.candidate.adID) }.count, fullValue: full.reduce(0) { $0 + $1.value },
                    stagedValue: picks.prefix(positions.count).reduce(0) { $0 + $1.value },
                    fullRevenue: expectedRevenue(ranking.prefix(wanted), slots: positions.count),
                    stagedRevenue: expectedRevenue(picks.prefix(wanted), slots: positions.count))
            }
        }
        let considered = picks
        picks.removeLast(max(0, picks.count - wanted))
        let runnerUp = picks.count > positions.count ? picks.removeLast() : nil
        var prices = Auction.prices(picks.map(\.bid), runnerUp: runnerUp?.bid, rules: auction)
        if exploration.isOn {
            Exploration.apply(
                &picks, prices: &prices, policy: exploration, auction: auction, eligibility: eligibility, delivery: delivery, request: request)
        }
        let decision = Decision(
            decisionID: request.decisionID, arm: arm, placements: PagePlacement.place(picks, prices: prices, positions: positions, request: request, signer: signer))
        return finish(
            decision, request: request, view: view, eligibility: eligibility, delivery: delivery, considered: considered, runnerUp: runnerUp,
            slots: positions.count)
    }

    /// Expected revenue of a page's auction (micros per impression): the first `slots` picks
    /// win, the one after them (if any) is the best left out, and each winner's price is
    /// multiplied by its billed events per impression, the q its value was made from.
    private func expectedRevenue(_ ranked: ArraySlice<Pick>, slots: Int) -> Double {
        let winners = Array(ranked.prefix(slots))
        let runnerUp = ranked.count > slots ? ranked[ranked.startIndex + slots] : nil
        let prices = Auction.prices(winners.map(\.bid), runnerUp: runnerUp?.bid, rules: auction)
        return zip(winners, prices).reduce(0) { sum, pair in
            let (pick, price) = pair
            guard pick.candidate.bidMicros > 0 else { return sum }
            return sum + Double(price) * (pick.value + pick.cost) / Double(pick.candidate.bidMicros)
        }
    }

    /// Adds the trace and, on sampled decisions with a slot to compete for, every campaign's fate.
    private func finish(
        _ decision: Decision, request: DecisionRequest, view: CatalogView, eligibility: Eligibility, delivery: DeliveryState, considered: [Pick],
        runnerUp: Pick?, slots: Int
    ) -> Decision {
        var decision = decision
        if traceCandidates > 0 {
            var trace = trace(decision, request: request, eligibility: eligibility, considered: considered, runnerUp: runnerUp, slots: slots)
            trace.notableLosers = notableLosers(decision, order: view.ranking ?? view.valueOrder, eligibility: eligibility, delivery: delivery, slots: slots)
            decision.trace = trace
        }
        if lossSampleRate > 0, slots > 0, Double(StableHash.fnv1a(request.decisionID, seed: 0x1055) % 1_000_000) < lossSampleRate * 1_000_000 {
            decision.losses = losses(decision, eligibility: eligibility, delivery: delivery, considered: considered, slots: slots)
        }
        return decision
    }

    func trace(_ decision: Decision, request: DecisionRequest, eligibility: Eligibility, considered: [Pick], runnerUp: Pick?, slots: Int) -> DecisionTrace {
        let snapshot = eligibility.snapshot
        let placedAds = Set(decision.placements.map(\.candidate.adID))
        let policyName = switch policy {
        case .ranked: "ranked"
        case .uniformRandom: "uniform_random"
        }
        return DecisionTrace(
            decisionID: decision.decisionID, arm: decision.arm, userID: request.userID, at: request.now, profile: request.profile, context: request.context,
            personalized: request.profile?.personalization ?? true, policy: policyName, auction: auction, slots: slots,
            placed: decision.placements.map {
                DecisionTrace.Placed(
                    afterPost: $0.afterPost, candidate: $0.candidate, prediction: $0.prediction, valueMicros: $0.expectedValueMicros,
                    priceMicros: $0.priceMicros, explored: $0.explored, propensity: $0.propensity)
            },
            considered: considered.prefix(traceCandidates).map { pick in
                let outcome: DecisionTrace.Considered.Outcome =
                    placedAds.contains(pick.candidate.adID) ? .placed : pick.candidate.adID == runnerUp?.candidate.adID ? .runnerUp : .outbid
                return DecisionTrace.Considered(candidate: pick.candidate, prediction: pick.prediction, valueMicros: pick.value, outcome: outcome)
            },
            runnerUpValueMicros: runnerUp?.value,
            frequencyCappedCampaigns: eligibility.capped.map { snapshot.campaigns[Int($0)].id },
            frequencyCappedAds: eligibility.cappedAds.sorted().map(AdID.init), hiddenAds: eligibility.hidden.sorted().map(AdID.init),
            hiddenAdvertisers: eligibility.hiddenAdvertisers.sorted().map(AdvertiserID.init), notRelevantCount: eligibility.relevance.notRelevant.count)
    }

    /// The first ads of `order` (the serving ranker's best for anyone) from campaigns that won
    /// nothing here, at most `notableLoserCount` campaigns, each with the rule that kept its campaign
    /// or the ad itself out, or `outbid`: what an operator asks first about a page ("why not the
    /// big campaign?"). Only the head of the order is read: a few entries per decision. None on
    /// a page without a slot, where nothing competed.
    func notableLosers(_ decision: Decision, order: RankingIndex?, eligibility: Eligibility, delivery: DeliveryState, slots: Int) -> [DecisionTrace.NotableLoser] {
        guard let order, Self.notableLoserCount > 0, slots > 0 else { return [] }
        let snapshot = eligibility.snapshot
        let sameSnapshot = order.snapshot === snapshot
        let placed = decision.placements.map(\.campaignID)
        var losers: [DecisionTrace.NotableLoser] = []
        delivery.state.withLock { state in
            for entry in order.order.prefix(4 * Self.notableLoserCount) where losers.count < Self.notableLoserCount {
                let found = sameSnapshot ? entry : snapshot.adIndex(slot: Int64(order.snapshot.adStateSlots[Int(entry)]))
                guard let adIndex = found else { continue }
                let campaignIndex = snapshot.adCampaigns[Int(adIndex)]
                let campaign = snapshot.campaigns[Int(campaignIndex)]
                guard eligibility.inSlice(campaignIndex), !placed.contains(campaign.id), !losers.contains(where: { $0.campaignID == campaign.id }) else { continue }
                losers.append(DecisionTrace.NotableLoser(
                    campaignID: campaign.id, adID: snapshot.adIDs[Int(adIndex)], advertiserID: campaign.advertiserID, objective: campaign.objective,
                    bidMicros: campaign.bidMicros, valueMicros: order.values[Int(entry)],
                    reason: eligibility.exclusion(campaignIndex, state) ?? eligibility.adExclusion(adIndex) ?? .outbid))
            }
        }
        return losers
    }

    /// How many campaigns a trace explains among those that lost (`notableLosers`).
    static let notableLoserCount = 5

    /// Every active campaign's fate in this decision: the first rule that kept it out, or
    /// outbid, or won. An outbid campaign among the considered candidates gets the least bid
    /// that would have beaten the last placed ad's total value (its advertiser's value is
    /// proportional to its bid, the engagement cost is not).
    func losses(_ decision: Decision, eligibility: Eligibility, delivery: DeliveryState, considered: [Pick], slots: Int) -> [CampaignLoss] {
        let snapshot = eligibility.snapshot
        // Every active campaign passes through the loop below: no hashing or allocation per
        // campaign (a page places at most a few ads, so `placed` is scanned).
        let placed = decision.placements.map(\.campaignID)
        // The auction's last winner (before exploration); with a slot left empty any eligible
        // campaign could have had it: no bid to beat.
        let lastValue = considered.count >= slots && decision.placements.count == slots ? considered[slots - 1].value : nil
        // Each considered campaign's best pick (its total value and the engagement cost taken
        // from it), sorted by id and searched by halving: a few dozen at most, asked for by every
        // outbid campaign (a dictionary hashed each id).
        let best = considered.sorted { $0.candidate.campaignID.rawValue < $1.candidate.campaignID.rawValue }
            .reduce(into: [(campaign: Int64, value: Double, cost: Double)]()) {
                if $0.last?.campaign == $1.candidate.campaignID.rawValue {
                    if $1.value > $0[$0.count - 1].value { $0[$0.count - 1] = ($1.candidate.campaignID.rawValue, $1.value, $1.cost) }
                } else {
                    $0.append(($1.candidate.campaignID.rawValue, $1.value, $1.cost))
                }
            }
        func bestPick(_ campaign: CampaignID) -> (value: Double, cost: Double)? {
            let low = best.partitionPoint { $0.campaign < campaign.rawValue }
            return low < best.count && best[low].campaign == campaign.rawValue ? (best[low].value, best[low].cost) : nil
        }
        var out: [CampaignLoss] = []
        out.reserveCapacity(snapshot.campaigns.count)
        delivery.state.withLock { state in
            for index in snapshot.campaigns.indices where eligibility.inSlice(Int32(index)) {
                let i = Int32(index)
                let entry = snapshot.campaigns[index]
                var minimumBid: Micros?
                let reason: LossReason
                if placed.contains(entry.id) {
                    reason = .won
                } else if let excluded = eligibility.exclusion(i, state) {
                    reason = excluded
                } else {
                    reason = .outbid
                    // The advertiser's value (bid × q) grows with the bid; the engagement cost does
                    // not: the least bid b with b × q − cost above the last winner's total value.
                    if let lastValue, let pick = bestPick(entry.id), pick.value + pick.cost > 0, lastValue + pick.cost > 0 {
                        // Rounded up past floating-point noise, then one micro more: a tie goes to the lower ad id.
                        let needed = (Double(entry.bidMicros) * (lastValue + pick.cost) / (pick.value + pick.cost) * (1 - 1e-12)).rounded(.up)
                        // A value shrunk to nearly nothing ("not relevant", fatigue) asks for more than any bid.
                        if needed.isFinite, needed < Double(Micros.max / 2) { minimumBid = Micros(needed) + 1 }
                    }
                }
                out.append(CampaignLoss(campaignID: entry.id, reason: reason, minimumBidToWinMicros: minimumBid, slot: entry.stateSlot))
            }
        }
        return out
    }
}
