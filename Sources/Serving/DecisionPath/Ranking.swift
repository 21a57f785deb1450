import Domain

/// Stage 3 of a decision: which candidates win the page's slots, best first, at most one per
/// advertiser. Three ways, one per policy and ranker:
/// - `best`: every candidate scored by the ranker for this user (a user-dependent ranker);
/// - `walk`: a precomputed best-first order walked until the slots are full (a ranker whose
///   predictions depend on the ad alone, `RankingIndex`);
/// - `random`: uniformly at random among eligible ads, with exact propensities.
enum Ranking {
    /// The `count` best candidates by expected value, from distinct advertisers, best first.
    /// Ranked by `predictForRanking`; a kept ad whose objective does not price conversions then
    /// gets its P(conversion) from `predict` (what the page shows and logs, and the trace), which
    /// does not change its value, and an awareness ad, which prices neither, its P(click) too.
    /// Any other ad's P(click) stays the one it was ranked by. `predicted` holds the ranker's
    /// predictions for the first candidates when it has made them already (`PreRanking`).
    static func best(
        _ candidates: [Candidate], count: Int, ranker: some Ranker, request: DecisionRequest, relevance: Relevance, fatigue: Fatigue = .off,
        engagement: EngagementCost = EngagementCost(), predicted: [Prediction] = []
    ) -> [Pick] {
        let predictions = predicted.isEmpty
            ? ranker.predictForRanking(candidates, user: request.profile, context: request.context)
            : predicted + ranker.predictForRanking(Array(candidates[predicted.count...]), user: request.profile, context: request.context)
        var best: [Pick] = []
        best.reserveCapacity(count + 1)
        // Candidates are read in place and a pick is made only for one that would enter the
        // list: copying each into a pick, most of them to be dropped, costs a retain and a
        // release of its ad apiece.
        for i in candidates.indices {
            let prediction = fatigue.apply(predictions[i], candidates[i].campaignID)
            let cost = engagement.cost(candidates[i], hide: prediction.hide)
            var value = prediction.expectedValuePerImpression(objective: candidates[i].objective, bidMicros: candidates[i].bidMicros) - cost
            if !relevance.isNeutral { value *= relevance.factor(candidates[i].ad) }
            // With an engagement cost, an ad worth less than it costs the user is not shown.
            if engagement.isOn && value <= 0 { continue }
            if best.count == count, let last = best.last, !beats(value, candidates[i].adID, last) { continue }
            offer(Pick(candidate: candidates[i], prediction: prediction, value: value, cost: cost), into: &best, capacity: count)
        }
        let unpriced = best.indices.filter { best[$0].candidate.objective != .conversions }
        if !unpriced.isEmpty {
            let full = ranker.predict(unpriced.map { best[$0].candidate }, user: request.profile, context: request.context)
            for (i, prediction) in zip(unpriced, full) {
                best[i].prediction.conversion = prediction.conversion
                if best[i].candidate.objective == .awareness { best[i].prediction.click = fatigue.apply(prediction, best[i].candidate.campaignID).click }
            }
        }
        return best
    }

    /// The `count` best eligible ads from a precomputed best-first order: walks it, skipping what
    /// this user may not see, and stops when the slots are full — nothing later in the order can
    /// beat what was picked. The delivery lock is held for the walk, which is short. With the
    /// user's "not relevant" feedback or fatigue, values shrink (`Relevance`, `Fatigue`): the
    /// walk goes on until the order's next value is below the last kept pick's shrunk value,
    /// and an ad whose shrunk value could not enter is passed over before its eligibility is
    /// asked.
    static func walk(
        _ ranking: RankingIndex, count: Int, eligibility: Eligibility, delivery: DeliveryState, now: Timestamp, engagement: EngagementCost = EngagementCost()
    ) -> [Pick] {
        let snapshot = ranking.snapshot
        var best: [Pick] = []
        best.reserveCapacity(count + 1)
        let relevance = eligibility.relevance
        let fatigue = eligibility.fatigue
        let neutral = relevance.isNeutral && fatigue.isNeutral
        delivery.state.withLock { state in
            for adIndex in ranking.order {
                if best.count == count && (neutral || ranking.values[Int(adIndex)] < best[count - 1].value) { break }
                // The order's values are total values: from the first one not positive on, none is shown.
                if engagement.isOn && ranking.values[Int(adIndex)] <= 0 { break }
                let campaignIndex = snapshot.adCampaigns[Int(adIndex)]
                let entry = snapshot.campaigns[Int(campaignIndex)]
                if neutral, best.contains(where: { $0.candidate.advertiserID == entry.advertiserID }) { continue }
                var prediction = ranking.predictions[Int(adIndex)]
                var value = ranking.values[Int(adIndex)]
                if !neutral {
                    // Fatigue takes from the advertiser's value, not from the engagement cost.
                    let decay = fatigue.factor(entry.id)
                    if decay < 1 {
                        let before = prediction.expectedValuePerImpression(objective: entry.objective, bidMicros: entry.bidMicros)
                        prediction.click *= decay
                        value -= before - prediction.expectedValuePerImpression(objective: entry.objective, bidMicros: entry.bidMicros)
                    }
                    value *= relevance.factor(snapshot.ads[Int(adIndex)])
                    if engagement.isOn && value <= 0 { continue }
                    if best.count == count, !beats(value, snapshot.adIDs[Int(adIndex)], best[count - 1]) { continue }
                }
                guard eligibility.admitsCampaign(campaignIndex), eligibility.hasBudget(campaignIndex, state), eligibility.admitsAd(adIndex) else { continue }
                let counters = state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]
                let candidate = CandidateGeneration.candidate(adIndex, entry, counters, state.advertiserTotals(entry), eligibility.seen(entry.id), eligibility.userHides, snapshot, now)
                let pick = Pick(candidate: candidate, prediction: prediction, value: value, cost: engagement.cost(candidate))
                if neutral { best.append(pick) } else { offer(pick, into: &best, capacity: count) }
            }
        }
        return best
    }

    /// Uniformly random picks, slot by slot, among eligible ads of advertisers not yet placed.
    /// Works on eligible campaigns weighted by their visible ads, so it never materializes every
    /// eligible ad: a campaign is drawn with probability (its visible ads) / (all visible ads
    /// left), then one of its visible ads uniformly — together a uniform draw over ads, with
    /// propensity 1 / (visible ads left). Visible means active, in this campaign and not hidden.
    static func random(
        count: Int, seed: UInt64, ranker: some Ranker, request: DecisionRequest, eligibility: Eligibility, delivery: DeliveryState
    ) -> [Pick] {
        let snapshot = eligibility.snapshot
        // Without hides a campaign's visible ads are its whole range; with them, listed once.
        var remaining = eligibility.campaigns(delivery).map { index in
            let entry = snapshot.campaigns[Int(index)]
            let visible = eligibility.filtersAds ? eligibility.ads(of: index) : nil
            return (campaign: index, ads: visible?.count ?? Int(entry.adEnd - entry.adStart), visible: visible)
        }
        if eligibility.filtersAds { remaining.removeAll { $0.ads == 0 } }
        var rng = SplitMix64(seed: seed)
        var chosen: [(adIndex: Int32, campaignIndex: Int32, propensity: Double)] = []
        while chosen.count < count, !remaining.isEmpty {
            let total = remaining.reduce(0) { $0 + $1.ads }
            var r = Int.random(in: 0..<total, using: &rng)
            var pick = remaining[remaining.count - 1]
            for item in remaining {
                if r < item.ads { pick = item; break }
                r -= item.ads
            }
            let entry = snapshot.campaigns[Int(pick.campaign)]
            let adIndex = pick.visible?[r] ?? entry.adStart + Int32(r)
            chosen.append((adIndex, pick.campaign, 1 / Double(total)))
            remaining.removeAll { snapshot.campaigns[Int($0.campaign)].advertiserID == entry.advertiserID }
        }
        var picks = delivery.state.withLock { state in
            chosen.map { choice in
                let entry = snapshot.campaigns[Int(choice.campaignIndex)]
                let counters = state.ads[Int(snapshot.adStateSlots[Int(choice.adIndex)])]
                return Pick(
                    candidate: CandidateGeneration.candidate(choice.adIndex, entry, counters, state.advertiserTotals(entry), eligibility.seen(entry.id), eligibility.userHides, snapshot, request.now),
                    propensity: choice.propensity)
            }
        }
        let predictions = ranker.predict(picks.map(\.candidate), user: request.profile, context: request.context)
        for i in picks.indices { picks[i].score(predictions[i]) }
        return picks
    }

    /// Keeps `best` sorted by value (ties: lower ad id first), at most `capacity` long, with at
    /// most one pick per advertiser.
    @inline(__always)
    static func offer(_ pick: Pick, into best: inout [Pick], capacity: Int) {
        func beats(_ a: Pick, _ b: Pick) -> Bool { Ranking.beats(a.value, a.candidate.adID, b) }
        if best.count == capacity, let last = best.last, !beats(pick, last) { return }
        if let same = best.firstIndex(where: { $0.candidate.advertiserID == pick.candidate.advertiserID }) {
            guard beats(pick, best[same]) else { return }
            best.remove(at: same)
        }
        var i = best.count
        while i > 0 && beats(pick, best[i - 1]) { i -= 1 }
        best.insert(pick, at: i)
        if best.count > capacity { best.removeLast() }
    }

    /// Whether an ad of this value and id ranks before `pick`: higher value first, then the lower ad id.
    @inline(__always)
    static func beats(_ value: Double, _ adID: AdID, _ pick: Pick) -> Bool {
        value != pick.value ? value > pick.value : adID < pick.candidate.adID
    }
}
