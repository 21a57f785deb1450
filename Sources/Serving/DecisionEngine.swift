import Domain

/// One ad placed in a page.
public struct Placement: Sendable {
    public var afterPost: Int
    public var ad: Ad
    public var campaignID: CampaignID
    public var advertiserID: AdvertiserID
    public var objective: Objective
    public var prediction: Prediction
    /// What the ranker saw for this ad: the serve-time inputs that training logs keep.
    public var candidate: Candidate
    /// Expected value of the impression in micros: what it was ranked by.
    public var expectedValueMicros: Double
    /// The probability with which the policy chose this ad for this slot, given the slots
    /// before it (1 for the deterministic ranking): what off-policy evaluation needs.
    public var propensity: Double
    public var priceMicros: Micros
    public var impressionToken: String
}

public struct Decision: Sendable {
    public var decisionID: String
    public var placements: [Placement]
}

/// How a decision chooses among eligible ads.
public enum SelectionPolicy: Sendable, Equatable {
    /// Highest expected value first (the ranker's predictions).
    case ranked
    /// Uniformly at random, slot by slot, among the eligible ads of advertisers not yet placed;
    /// each placement logs its exact propensity. Seeded per decision, so reproducible.
    case uniformRandom(seed: UInt64)
}

/// The decision path, pure apart from reading live delivery state: eligibility (index, schedule,
/// budget, frequency cap, hides), ranking by expected value, one ad per advertiser, ad-load
/// positions, pricing and signed tokens. No I/O, no HTTP: the server, the simulator and the
/// benchmark all call it.
public struct DecisionEngine: Sendable {
    public var adLoad: AdLoadPolicy
    public var signer: TokenSigner
    public var policy: SelectionPolicy

    public init(adLoad: AdLoadPolicy = AdLoadPolicy(), signer: TokenSigner, policy: SelectionPolicy = .ranked) {
        self.adLoad = adLoad
        self.signer = signer
        self.policy = policy
    }

    /// A selected candidate, before it is placed.
    private struct Pick {
        var adIndex: Int32
        var campaignIndex: Int32
        var prediction: Prediction
        var value: Double
        var propensity: Double = 1
        /// What the ranker saw; the placement keeps it.
        var candidate: Candidate
    }

    /// Decides one page. With a `ranking` (user-independent ranker) the ads are taken from its
    /// precomputed order and `snapshot` must be `ranking.snapshot`; without one, every eligible
    /// ad is scored by `ranker` for this user.
    public func decide(
        decisionID: String, userID: UserID, profile: UserProfile?, context: FeedContext, organicCount: Int,
        now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker, ranking: RankingIndex? = nil
    ) -> Decision {
        let positions = adLoad.positions(organicCount: organicCount)
        guard !positions.isEmpty else { return Decision(decisionID: decisionID, placements: []) }
        let audience = snapshot.audience(for: profile, device: context.device)
        let picks: [Pick]
        if case .uniformRandom(let seed) = policy {
            picks = selectAtRandom(
                count: positions.count, seed: seed ^ StableHash.fnv1a(decisionID), userID: userID, profile: profile, context: context,
                audience: audience, now: now, snapshot: snapshot, delivery: delivery, ranker: ranker)
        } else if let ranking, ranking.snapshot === snapshot {
            picks = selectInOrder(count: positions.count, userID: userID, audience: audience, now: now, ranking: ranking, delivery: delivery)
        } else {
            picks = select(
                count: positions.count, userID: userID, profile: profile, context: context, audience: audience, now: now,
                snapshot: snapshot, delivery: delivery, ranker: ranker)
        }

        var placements: [Placement] = []
        placements.reserveCapacity(picks.count)
        for (pick, afterPost) in zip(picks, positions) {
            let entry = snapshot.campaigns[Int(pick.campaignIndex)]
            let ad = snapshot.ads[Int(pick.adIndex)]
            // First price for now: the bid, per billed event. The auction (GSP) replaces this.
            let price = entry.objective.pricePerBilledEvent(bid: entry.bidMicros)
            let token = ImpressionToken(
                decisionID: decisionID, afterPost: afterPost, userID: userID, adID: ad.id, campaignID: entry.id,
                objective: entry.objective, priceMicros: price, issuedAt: now)
            placements.append(
                Placement(
                    afterPost: afterPost, ad: ad, campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
                    prediction: pick.prediction, candidate: pick.candidate, expectedValueMicros: pick.value, propensity: pick.propensity, priceMicros: price,
                    impressionToken: signer.sign(token)))
        }
        return Decision(decisionID: decisionID, placements: placements)
    }

    /// The `count` best eligible ads by expected value, from distinct advertisers, best first:
    /// every eligible ad scored by `ranker` for this user.
    private func select(
        count: Int, userID: UserID, profile: UserProfile?, context: FeedContext, audience: CatalogSnapshot.Audience,
        now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker
    ) -> [Pick] {
        let (eligible, seen) = eligible(userID: userID, audience: audience, now: now, snapshot: snapshot, delivery: delivery)
        let candidates = eligible.map { item in
            let entry = snapshot.campaigns[Int(item.campaignIndex)]
            return candidate(item.adIndex, entry, item.counters, seen[entry.id.rawValue] ?? 0, snapshot, now)
        }
        let predictions = ranker.predict(candidates, user: profile, context: context)
        var best: [Pick] = []
        best.reserveCapacity(count + 1)
        for (i, prediction) in predictions.enumerated() {
            let (adIndex, campaignIndex, _) = eligible[i]
            let entry = snapshot.campaigns[Int(campaignIndex)]
            let value = prediction.expectedValuePerImpression(objective: entry.objective, bidMicros: entry.bidMicros)
            Self.offer(
                Pick(adIndex: adIndex, campaignIndex: campaignIndex, prediction: prediction, value: value, candidate: candidates[i]),
                advertiser: entry.advertiserID, into: &best, capacity: count, snapshot: snapshot)
        }
        return best
    }

    /// Uniformly random picks, slot by slot, among eligible ads of advertisers not yet placed.
    /// Works on eligible campaigns weighted by their visible ads, so it never materializes
    /// every eligible ad: a campaign is drawn with probability (its ads) / (all ads left), then
    /// one of its ads uniformly — together a uniform draw over ads, with propensity 1 / (ads left).
    private func selectAtRandom(
        count: Int, seed: UInt64, userID: UserID, profile: UserProfile?, context: FeedContext, audience: CatalogSnapshot.Audience,
        now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker
    ) -> [Pick] {
        let (campaigns, hidden, seen) = eligibleCampaigns(userID: userID, audience: audience, now: now, snapshot: snapshot, delivery: delivery)
        func visibleAds(_ campaignIndex: Int32) -> [Int32] {
            let entry = snapshot.campaigns[Int(campaignIndex)]
            let all = Array(entry.adStart..<entry.adEnd)
            return hidden.isEmpty ? all : all.filter { !hidden.contains(snapshot.adIDs[Int($0)].rawValue) }
        }
        // Hidden ads are few: count them per campaign instead of filtering every campaign's ads.
        var hiddenIn: [Int32: Int] = [:]
        for adID in hidden {
            if let campaignID = snapshot.adsByID[AdID(adID)]?.campaignID, let index = snapshot.campaignIndices[campaignID] { hiddenIn[index, default: 0] += 1 }
        }
        var remaining = campaigns.map { index in
            (campaign: index, ads: Int(snapshot.campaigns[Int(index)].adEnd - snapshot.campaigns[Int(index)].adStart) - (hiddenIn.isEmpty ? 0 : hiddenIn[index, default: 0]))
        }
        if !hiddenIn.isEmpty { remaining.removeAll { $0.ads <= 0 } }
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
            let ads = visibleAds(pick.campaign)
            chosen.append((ads[min(r, ads.count - 1)], pick.campaign, 1 / Double(total)))
            let advertiser = snapshot.campaigns[Int(pick.campaign)].advertiserID
            remaining.removeAll { snapshot.campaigns[Int($0.campaign)].advertiserID == advertiser }
        }
        let counters = delivery.state.withLock { state in chosen.map { state.ads[Int(snapshot.adStateSlots[Int($0.adIndex)])] } }
        let candidates = zip(chosen, counters).map { choice, counters in
            let entry = snapshot.campaigns[Int(choice.campaignIndex)]
            return candidate(choice.adIndex, entry, counters, seen[entry.id.rawValue] ?? 0, snapshot, now)
        }
        let predictions = ranker.predict(candidates, user: profile, context: context)
        return predictions.enumerated().map { i, prediction in
            let choice = chosen[i]
            let entry = snapshot.campaigns[Int(choice.campaignIndex)]
            return Pick(
                adIndex: choice.adIndex, campaignIndex: choice.campaignIndex, prediction: prediction,
                value: prediction.expectedValuePerImpression(objective: entry.objective, bidMicros: entry.bidMicros),
                propensity: choice.propensity, candidate: candidates[i])
        }
    }

    private func candidate(
        _ adIndex: Int32, _ entry: CatalogSnapshot.Entry, _ counters: DeliveryState.AdCounters, _ seen: Int, _ snapshot: CatalogSnapshot,
        _ now: Timestamp
    ) -> Candidate {
        let ad = snapshot.ads[Int(adIndex)]
        return Candidate(
            adID: snapshot.adIDs[Int(adIndex)], campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
            bidMicros: entry.bidMicros, ad: ad, adAgeHours: ad.ageHours(at: now), impressions: counters.impressions, clicks: counters.clicks,
            conversions: counters.conversions, userCampaignImpressions: seen)
    }

    /// Every ad this user may see now, with its counters: targeting and schedule from the
    /// index, frequency caps and hides from the user's state, budget from campaign spend.
    private func eligible(
        userID: UserID, audience: CatalogSnapshot.Audience, now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState
    ) -> (ads: [(adIndex: Int32, campaignIndex: Int32, counters: DeliveryState.AdCounters)], seen: [Int64: Int]) {
        let (campaigns, hidden, seen) = eligibleCampaigns(userID: userID, audience: audience, now: now, snapshot: snapshot, delivery: delivery)
        var candidates: [(adIndex: Int32, campaignIndex: Int32, counters: DeliveryState.AdCounters)] = []
        candidates.reserveCapacity(campaigns.count * 4)
        delivery.state.withLock { state in
            for campaignIndex in campaigns {
                let entry = snapshot.campaigns[Int(campaignIndex)]
                for adIndex in entry.adStart..<entry.adEnd {
                    if !hidden.isEmpty && hidden.contains(snapshot.adIDs[Int(adIndex)].rawValue) { continue }
                    candidates.append((adIndex, campaignIndex, state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]))
                }
            }
        }
        return (candidates, seen)
    }

    /// The campaigns this user may see now (targeting, schedule, frequency cap, budget), and the
    /// ads the user hid. Live delivery state is shared with event ingestion, so the lock is
    /// taken only to copy out what this request needs: the user's caps and hides first, then the
    /// spend of the campaigns that passed targeting. Matching runs unlocked.
    private func eligibleCampaigns(
        userID: UserID, audience: CatalogSnapshot.Audience, now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState
    ) -> (campaigns: [Int32], hidden: Set<Int64>, seen: [Int64: Int]) {
        let day = now.day
        let nowMs = now.milliseconds
        let user = delivery.state.withLock { $0.users[userID] }
        let capped = snapshot.cappedCampaigns(recent: user?.recent ?? [], now: nowMs)
        var matched: [Int32] = []
        snapshot.forEachMatchingCampaign(audience, at: nowMs) { campaignIndex in
            if !capped.isEmpty && capped.contains(campaignIndex) { return }
            matched.append(campaignIndex)
        }
        delivery.state.withLock { state in
            matched.removeAll { campaignIndex in
                let entry = snapshot.campaigns[Int(campaignIndex)]
                let spend = state.spend[Int(entry.stateSlot)]
                return !Budget.hasRoom(
                    dailyBudget: entry.dailyBudgetMicros, spentToday: spend.spentToday(day: day),
                    totalBudget: entry.totalBudgetMicros, spentTotal: spend.total)
            }
        }
        return (matched, user?.hiddenAds ?? [], Self.impressionsByCampaign(user?.recent ?? []))
    }

    /// How often the user saw each campaign recently (the delivery state's memory).
    private static func impressionsByCampaign(_ recent: [(campaign: Int64, at: Int64)]) -> [Int64: Int] {
        var seen: [Int64: Int] = [:]
        for item in recent { seen[item.campaign, default: 0] += 1 }
        return seen
    }

    /// The `count` best eligible ads from a precomputed best-first order: walks it, skipping what
    /// this user may not see, and stops when the slots are full — nothing later in the order can
    /// beat what was picked. The lock is held for the walk, which is short.
    private func selectInOrder(
        count: Int, userID: UserID, audience: CatalogSnapshot.Audience, now: Timestamp, ranking: RankingIndex, delivery: DeliveryState
    ) -> [Pick] {
        let snapshot = ranking.snapshot
        let day = now.day
        let nowMs = now.milliseconds
        var best: [Pick] = []
        best.reserveCapacity(count + 1)
        delivery.state.withLock { state in
            let user = state.users[userID]
            let hidden = user?.hiddenAds ?? []
            let capped = snapshot.cappedCampaigns(recent: user?.recent ?? [], now: nowMs)
            let recent = user?.recent ?? []
            for adIndex in ranking.order {
                let campaignIndex = snapshot.adCampaigns[Int(adIndex)]
                let entry = snapshot.campaigns[Int(campaignIndex)]
                if best.contains(where: { snapshot.campaigns[Int($0.campaignIndex)].advertiserID == entry.advertiserID }) { continue }
                guard snapshot.matches(campaignIndex, audience, nowMs) else { continue }
                let spend = state.spend[Int(entry.stateSlot)]
                guard Budget.hasRoom(
                    dailyBudget: entry.dailyBudgetMicros, spentToday: spend.spentToday(day: day),
                    totalBudget: entry.totalBudgetMicros, spentTotal: spend.total)
                else { continue }
                if !capped.isEmpty && capped.contains(campaignIndex) { continue }
                if !hidden.isEmpty && hidden.contains(snapshot.adIDs[Int(adIndex)].rawValue) { continue }
                let seen = recent.reduce(0) { $0 + ($1.campaign == entry.id.rawValue ? 1 : 0) }
                best.append(Pick(
                    adIndex: adIndex, campaignIndex: campaignIndex, prediction: ranking.predictions[Int(adIndex)], value: ranking.values[Int(adIndex)],
                    candidate: candidate(adIndex, entry, state.ads[Int(snapshot.adStateSlots[Int(adIndex)])], seen, snapshot, now)))
                if best.count == count { break }
            }
        }
        return best
    }

    /// Keeps `best` sorted by value (ties: lower ad id first), at most `capacity` long, with at
    /// most one pick per advertiser.
    @inline(__always)
    private static func offer(_ pick: Pick, advertiser: AdvertiserID, into best: inout [Pick], capacity: Int, snapshot: CatalogSnapshot) {
        func beats(_ a: Pick, _ b: Pick) -> Bool {
            a.value != b.value ? a.value > b.value : snapshot.adIDs[Int(a.adIndex)] < snapshot.adIDs[Int(b.adIndex)]
        }
        if best.count == capacity, let last = best.last, !beats(pick, last) { return }
        if let same = best.firstIndex(where: { snapshot.campaigns[Int($0.campaignIndex)].advertiserID == advertiser }) {
            guard beats(pick, best[same]) else { return }
            best.remove(at: same)
        }
        var i = best.count
        while i > 0 && beats(pick, best[i - 1]) { i -= 1 }
        best.insert(pick, at: i)
        if best.count > capacity { best.removeLast() }
    }
}
