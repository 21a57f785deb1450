import Domain

/// How much traffic goes to learning about ads with few impressions. Each slot of a ranked page
/// explores with probability `share`: it is given to one of the eligible young ads (fewer than
/// `maxImpressions` impressions), chosen by Thompson sampling on their CTR posteriors
/// (`BetaPrior.click` updated by the ad's clicks and impressions), each draw valued like the
/// auction values a prediction (bid × drawn CTR, × P(conversion) for CPA; CPM by its bid).
/// Without exploration the rule-based ranking locks onto the first ads whose smoothed CTR beats
/// the prior and never shows the others; the learned ranker then learns nothing about them.
public struct ExplorationPolicy: Sendable, Equatable {
    public static let defaultMaxImpressions: Int64 = 500

    /// Probability that a slot explores: the bound on the share of impressions exploration
    /// takes. 0 turns it off.
    public var share: Double
    /// Ads with fewer impressions than this are explored.
    public var maxImpressions: Int64
    /// At most this many eligible young ads compete for an exploring slot, found by walking the
    /// young ads from an offset that moves every minute (so all of them get their turn), looking
    /// at no more than `scanLimit` of them.
    public var poolSize: Int
    public var scanLimit: Int
    /// Posterior draws that estimate each pool ad's chance of winning the Thompson draw.
    public var draws: Int

    public init(share: Double = 0, maxImpressions: Int64 = defaultMaxImpressions, poolSize: Int = 16, scanLimit: Int = 512, draws: Int = 64) {
        self.share = share
        self.maxImpressions = maxImpressions
        self.poolSize = poolSize
        self.scanLimit = scanLimit
        self.draws = draws
    }

    public static let off = ExplorationPolicy()
    public var isOn: Bool { share > 0 && maxImpressions > 0 && poolSize > 0 && draws > 0 }
}

/// The exploration step of a ranked decision, after the auction and before placement.
///
/// For each slot, a coin with P(`share`) decides whether it explores. An exploring slot draws
/// its ad from the pool's Thompson probabilities q: `draws` posterior draws per pool ad, each
/// won by the ad of highest drawn value; q(ad) is its share of wins, and the slot's ad is then
/// drawn from q itself, so q is exactly the probability it was drawn with. The propensity every
/// placement logs is therefore exact for the policy that served it:
/// P(ad in slot) = (1 − share) · [ad is the auction's winner] + share · q(ad); with no young ad
/// to offer for the slot, exploring changes nothing and the winner's propensity is 1.
/// An exploring slot that draws the auction's own winner changes nothing. An explored ad did not
/// win an auction: it pays its billing type's reserve (never above its bid).
enum Exploration {
    /// One slot's stochastic choice: the options, q over them, and which was drawn.
    struct SlotChoice {
        var options: [Pick]
        var q: [Double]
        var chosen: Int?
    }

    static func apply(
        _ picks: inout [Pick], prices: inout [Micros], policy: ExplorationPolicy, auction: AuctionRules, eligibility: Eligibility,
        delivery: DeliveryState, request: DecisionRequest
    ) {
        guard policy.isOn, !picks.isEmpty else { return }
        var rng = SplitMix64(seed: StableHash.fnv1a(request.decisionID) ^ 0x6578_706C_6F72_6521)
        // The pool is needed on every slot: with no young ad to offer, exploring changes nothing
        // and the winner's propensity is 1.
        let pool = youngPool(policy: policy, eligibility: eligibility, delivery: delivery, now: request.now)
        for slot in picks.indices {
            let explores = Double.random(in: 0..<1, using: &rng) < policy.share
            let winner = picks[slot]
            // Ads of advertisers placed in the other slots are out: one ad per advertiser a page
            // (a page has a few slots: a scan of it as it stands, not a set).
            func offered(_ young: Pick) -> Bool {
                !picks.indices.contains { $0 != slot && picks[$0].candidate.advertiserID == young.candidate.advertiserID }
            }
            // A slot that does not explore, won by an ad that is not young, draws nothing: whether
            // any young ad could have been offered is all its propensity needs (the general path
            // below gives the same), found without building the slot's options — most slots.
            if !explores, !pool.contains(where: { $0.candidate.adID == winner.candidate.adID }) {
                let propensity = pool.contains(where: offered) ? 1 - policy.share : 1
                picks[slot].propensity = propensity
                continue
            }
            let options = pool.filter(offered)
            guard !options.isEmpty else {
                picks[slot].propensity = 1
                continue
            }
            let choice = choose(
                options: options, explores: explores, winner: winner.candidate.adID, draws: policy.draws, relevance: eligibility.relevance,
                fatigue: eligibility.fatigue, rng: &rng)
            if let chosen = choice.chosen, choice.options[chosen].candidate.adID != winner.candidate.adID {
                var explored = choice.options[chosen]
                explored.explored = true
                explored.propensity = policy.share * choice.q[chosen]
                picks[slot] = explored
                prices[slot] = min(explored.candidate.bidMicros, auction.reserve(explored.candidate.objective))
            } else {
                let q = choice.options.firstIndex { $0.candidate.adID == winner.candidate.adID }.map { choice.q[$0] } ?? 0
                picks[slot].propensity = (1 - policy.share) + policy.share * q
            }
        }
    }

    /// Thompson probabilities over `options` and, when the slot explores, the drawn option.
    /// When it does not explore, q is needed only for the winner's propensity: computed only if
    /// the winner is among the options.
    static func choose(
        options: [Pick], explores: Bool, winner: AdID, draws: Int, relevance: Relevance = Relevance(notRelevant: []), fatigue: Fatigue = .off,
        rng: inout SplitMix64
    ) -> SlotChoice {
        guard !options.isEmpty, explores || options.contains(where: { $0.candidate.adID == winner }) else {
            return SlotChoice(options: options, q: Array(repeating: 0, count: options.count), chosen: nil)
        }
        let q = thompsonProbabilities(options, draws: draws, relevance: relevance, fatigue: fatigue, rng: &rng)
        guard explores else { return SlotChoice(options: options, q: q, chosen: nil) }
        var r = Double.random(in: 0..<1, using: &rng)
        var chosen = q.lastIndex { $0 > 0 } ?? 0
        for (i, p) in q.enumerated() where p > 0 {
            if r < p {
                chosen = i
                break
            }
            r -= p
        }
        return SlotChoice(options: options, q: q, chosen: chosen)
    }

    /// Each option's share of `draws` Thompson draws won (ties to the lower ad id). Sums to 1.
    /// A drawn CTR decays with the user's fatigue for the ad, its value with "not relevant".
    static func thompsonProbabilities(
        _ options: [Pick], draws: Int, relevance: Relevance = Relevance(notRelevant: []), fatigue: Fatigue = .off, rng: inout SplitMix64
    ) -> [Double] {
        var wins = [Int](repeating: 0, count: options.count)
        let factors = options.map { relevance.factor($0.candidate.ad) }
        let decays = options.map { fatigue.factor($0.candidate.campaignID) }
        for _ in 0..<draws {
            var best = -1
            var bestValue = -Double.infinity
            for (i, option) in options.enumerated() {
                let c = option.candidate
                let ctr = BetaPrior.click.draw(successes: c.clicks, trials: c.impressions, using: &rng)
                let value = Prediction(click: ctr * decays[i], conversion: option.prediction.conversion)
                    .expectedValuePerImpression(objective: c.objective, bidMicros: c.bidMicros) * factors[i]
                if best < 0 || value > bestValue || (value == bestValue && c.adID < options[best].candidate.adID) {
                    best = i
                    bestValue = value
                }
            }
            wins[best] += 1
        }
        return wins.map { Double($0) / Double(draws) }
    }

    /// Up to `poolSize` eligible young ads (schedule, targeting, caps, hides, budget, reserve),
    /// each scored with its smoothed rates, walking the young ads from a per-minute offset.
    static func youngPool(policy: ExplorationPolicy, eligibility: Eligibility, delivery: DeliveryState, now: Timestamp) -> [Pick] {
        let snapshot = eligibility.snapshot
        var pool: [Pick] = []
        pool.reserveCapacity(policy.poolSize)
        delivery.state.withLock { state in
            let young = state.young
            guard !young.isEmpty else { return }
            let minute = UInt64(max(0, now.milliseconds / 60_000))
            let start = Int(((minute &* 0x9E37_79B9_7F4A_7C15) >> 17) % UInt64(young.count))
            let looked = min(young.count, policy.scanLimit)
            for step in 0..<looked where pool.count < policy.poolSize {
                let stateSlot = young[(start + step) % young.count]
                guard let adIndex = snapshot.adIndex(slot: Int64(stateSlot)) else { continue }
                let counters = state.ads[Int(stateSlot)]
                let campaignIndex = snapshot.adCampaigns[Int(adIndex)]
                guard counters.impressions < policy.maxImpressions, eligibility.admitsAd(adIndex), eligibility.admitsCampaign(campaignIndex),
                      eligibility.hasBudget(campaignIndex, state) else { continue }
                let entry = snapshot.campaigns[Int(campaignIndex)]
                var pick = Pick(candidate: CandidateGeneration.candidate(adIndex, entry, counters, state.advertiserTotals(entry), eligibility.seen(entry.id), eligibility.userHides, snapshot, now))
                // Scored with the smoothed rates: the posterior means Thompson sampling draws around.
                pick.score(eligibility.fatigue.apply(RuleBasedRanker().predict(pick.candidate, user: nil, context: FeedContext()), entry.id))
                pool.append(pick)
            }
        }
        return pool
    }
}
