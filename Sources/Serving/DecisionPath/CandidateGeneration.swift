import Domain

/// One candidate as later stages carry it: what the ranker saw, what it predicted, the
/// expected value it is ranked by, and how likely the policy was to choose it.
struct Pick {
    var candidate: Candidate
    var prediction = Prediction(click: 0, conversion: 0)
    var value = 0.0
    var propensity = 1.0
    /// The engagement cost subtracted from the advertiser's value (`EngagementCost`): `value`
    /// is what is left, the total value slots go by.
    var cost = 0.0
    /// Placed by exploration rather than won in the auction (`Exploration`).
    var explored = false

    /// Records a prediction and the total value of one impression it implies: the advertiser's
    /// expected value less the engagement cost.
    mutating func score(_ prediction: Prediction, engagement: EngagementCost = EngagementCost()) {
        self.prediction = prediction
        cost = engagement.cost(candidate, hide: prediction.hide)
        value = prediction.expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros) - cost
    }

    /// What the auction prices it by.
    var bid: Auction.Bid { Auction.Bid(objective: candidate.objective, bidMicros: candidate.bidMicros, value: value, cost: cost) }
}

/// Stage 2 of a decision: the candidates the ranker scores. Either every eligible ad (the
/// exhaustive stage), or what a retrieval model finds for the user among the eligible ads —
/// its top K and a small pool of fresh ads (`retrieved`).
enum CandidateGeneration {
    /// How many of the user's interests (in the profile's order) add their pool: a profile
    /// may hold a hundred.
    static let maxInterestPools = 4

    /// The retriever's top `k` eligible ads for this user and its eligible fresh ads, then up
    /// to `valuePool` more: the best eligible ads of the value order (`valueOrder`, the serving
    /// ranker's value with no user), so that ads worth most whoever sees them (high bids, high
    /// conversion rates, CPM) reach the ranker although the retrieval model, which predicts
    /// clicks, would not fetch them; then up to `objectivePool` more of each objective's own
    /// order (`RankingIndex.objectiveOrders`). A value with no user misjudges the objectives
    /// unequally: a conversion ad's value for a user holds the user's own conversion rate, two to
    /// ten times the no-user one in the bench's audits, so the best conversion ads for a user
    /// sit thousands of places down the shared order but near the top of their own. Then up to
    /// `interestPool` more of each of the user's interests' order (`RankingIndex.interestOrders`):
    /// the best ads for someone of that interest, which the interest × ad crosses of a learned
    /// ranker lift for this user and a value for no user leaves out. Nil when the
    /// retriever cannot retrieve. Schedule,
    /// targeting, caps and hides are checked during the index search (unlocked); budgets right
    /// after, under the delivery lock. The ads are given as indices of the eligibility's
    /// snapshot: a candidate is made (`candidates`) only for those the ranker will score
    /// (`PreRanking`).
    static func retrieved(
        _ eligibility: Eligibility, retriever: any CandidateRetriever, k: Int, valueOrder: RankingIndex?, valuePool: Int, objectivePool: Int,
        interestPool: Int, request: DecisionRequest, delivery: DeliveryState
    ) -> Retrieved? {
        let snapshot = eligibility.snapshot
        var keys: [Int64] = []
        keys.reserveCapacity(k + 64)
        var scores: [Float] = []
        scores.reserveCapacity(k + 64)
        // Each campaign's schedule, targeting and cap judged once per request, from the key
        // alone: 0 not yet judged, 1 admitted, 2 refused. An ad gone from this snapshot but
        // still in the index (published, not yet synced) passes here and is dropped below.
        var verdicts = [UInt8](repeating: 0, count: snapshot.campaignIndexBySlot.count)
        let best = verdicts.withUnsafeMutableBufferPointer { verdicts in
            retriever.retrieve(user: request.profile, context: request.context, k: k, now: request.now, admits: { keys, admitted in
                // The entries of the campaigns not judged yet, loaded together first: judged
                // one key after another, each would miss the cache behind the one before.
                var folded: UInt64 = 0
                for raw in keys {
                    let slot = RetrievalKey(rawValue: raw).campaignSlot
                    guard slot >= 0, slot < verdicts.count, verdicts[slot] == 0, let index = snapshot.campaignIndex(slot: slot) else { continue }
                    folded ^= snapshot.touchCampaign(index)
                }
                CacheTouch.keep(folded)
                for j in keys.indices {
                    let key = RetrievalKey(rawValue: keys[j])
                    let slot = key.campaignSlot
                    guard slot >= 0, slot < verdicts.count else {
                        admitted[j] = false
                        continue
                    }
                    if verdicts[slot] == 0 {
                        let admits = snapshot.campaignIndex(slot: slot).map(eligibility.admitsCampaign) ?? false
                        verdicts[slot] = admits ? 1 : 2
                    }
                    admitted[j] = verdicts[slot] == 1
                        && (!eligibility.filtersAds || (snapshot.adIndex(slot: key.adSlot).map(eligibility.admitsAd) ?? false))
                }
            }, into: &keys, scores: &scores)
        }
        guard let best else { return nil }
        // The retrieved ads in this snapshot (one gone from it but still indexed is dropped),
        // their scores kept in place beside them; the first `bestKept` the search's best, then
        // the fresh ads.
        var adIndices: [Int32] = []
        adIndices.reserveCapacity(keys.count)
        var bestKept = 0
        for (j, (raw, score)) in zip(keys, scores).enumerated() {
            guard let adIndex = snapshot.adIndex(slot: RetrievalKey(rawValue: raw).adSlot) else { continue }
            scores[adIndices.count] = score
            adIndices.append(adIndex)
            if j < best { bestKept += 1 }
        }
        // The most candidates the stage can hand on: the retrieved ads and every pool full.
        let most = keys.count + valuePool + Objective.allCases.count * objectivePool + maxInterestPools * interestPool
        var candidates = Retrieved()
        candidates.adIndices.reserveCapacity(most)
        candidates.affinities.reserveCapacity(most)
        var retrieved = AdIndexSet(capacity: most)
        delivery.state.withLock { state in
            func add(_ adIndex: Int32, affinity: Float = .nan) -> Bool {
                guard eligibility.hasBudget(snapshot.adCampaigns[Int(adIndex)], state) else { return false }
                candidates.adIndices.append(adIndex)
                candidates.affinities.append(affinity)
                return true
            }
            touchBudgets(adIndices, snapshot, state)
            for j in 0..<bestKept {
                retrieved.insert(adIndices[j])
                _ = add(adIndices[j], affinity: scores[j])
            }
            let freshStart = candidates.adIndices.count
            for j in bestKept..<adIndices.count {
                retrieved.insert(adIndices[j])
                _ = add(adIndices[j], affinity: scores[j])
            }
            candidates.fresh = freshStart..<candidates.adIndices.count
            guard let valueOrder, valuePool > 0 || objectivePool > 0 || interestPool > 0 else { return }
            let sameSnapshot = valueOrder.snapshot === snapshot
            /// Adds up to `pool` eligible ads of `order` (ad indices of the value order's snapshot,
            /// or with `bySlot` ad state slots) that are not candidates yet.
            func addBest(of order: [Int32], pool: Int, bySlot: Bool = false) {
                var added = 0
                for entry in order {
                    guard added < pool else { break }
                    // The order's ad in this snapshot (an order a few snapshots old names ads by slot).
                    let adIndex = bySlot
                        ? snapshot.adIndex(slot: Int64(entry))
                        : sameSnapshot ? entry : snapshot.adIndex(slot: Int64(valueOrder.snapshot.adStateSlots[Int(entry)]))
                    guard let adIndex, !retrieved.contains(adIndex), eligibility.admitsAd(adIndex),
                          eligibility.admitsCampaign(snapshot.adCampaigns[Int(adIndex)]), add(adIndex) else { continue }
                    retrieved.insert(adIndex)
                    added += 1
                }
            }
            // The best ads for anyone, then each objective's best not among them yet.
            addBest(of: valueOrder.order, pool: valuePool)
            for order in valueOrder.objectiveOrders { addBest(of: order, pool: objectivePool) }
            // Then the best for someone of each of the user's interests (the first few that have an order).
            guard interestPool > 0, let interests = request.profile?.interests else { return }
            var pools = 0
            for interest in interests where pools < maxInterestPools {
                guard let order = valueOrder.interestOrders[interest] else { continue }
                addBest(of: order, pool: interestPool, bySlot: true)
                pools += 1
            }
        }
        return candidates
    }

    /// What the stage found: ads as indices of the eligibility's snapshot and, for each, the
    /// user's affinity with it as the retriever's search measured it (NaN for an ad the search
    /// did not score: a fresh ad, or one of a pool).
    struct Retrieved {
        var adIndices: [Int32] = []
        var affinities: [Float] = []
        /// Where the retriever's fresh ads are in `adIndices`: after its best, before the pools.
        /// Pre-ranking keeps them all, so a new ad always reaches the ranker.
        var fresh = 0..<0
    }

    /// The candidates of these ads (indices of the eligibility's snapshot, which passed every
    /// check): what a ranker may look at, with the live counters.
    static func candidates(_ adIndices: [Int32], _ eligibility: Eligibility, delivery: DeliveryState, now: Timestamp) -> [Candidate] {
        let snapshot = eligibility.snapshot
        touch(adIndices, snapshot)
        var candidates: [Candidate] = []
        candidates.reserveCapacity(adIndices.count)
        delivery.state.withLock { state in
            touchCounters(adIndices, snapshot, state)
            for adIndex in adIndices {
                let entry = snapshot.campaigns[Int(snapshot.adCampaigns[Int(adIndex)])]
                let counters = state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]
                candidates.append(candidate(adIndex, entry, counters, state.advertiserTotals(entry), eligibility.seen(entry.id), eligibility.userHides, snapshot, now))
            }
        }
        return candidates
    }

    /// Touches the ads' storage (`CacheTouch`): first the line each starts with and its id,
    /// then their content bytes and topic names, whose addresses that line holds.
    static func touch(_ adIndices: [Int32], _ snapshot: CatalogSnapshot) {
        var folded: UInt64 = 0
        for adIndex in adIndices {
            folded ^= snapshot.ads[Int(adIndex)].touchStorage()
            folded ^= UInt64(bitPattern: snapshot.adIDs[Int(adIndex)].rawValue)
        }
        for adIndex in adIndices { folded ^= snapshot.ads[Int(adIndex)].touchContent() }
        CacheTouch.keep(folded)
    }

    /// Touches the ads' campaign entries, then the campaigns' spend, as `hasRoom` reads them
    /// (under the delivery lock).
    static func touchBudgets(_ adIndices: [Int32], _ snapshot: CatalogSnapshot, _ state: borrowing DeliveryState.State) {
        var folded: UInt64 = 0
        for adIndex in adIndices {
            folded ^= UInt64(UInt32(bitPattern: snapshot.campaigns[Int(snapshot.adCampaigns[Int(adIndex)])].stateSlot))
        }
        for adIndex in adIndices {
            folded ^= UInt64(bitPattern: state.spend[Int(snapshot.campaigns[Int(snapshot.adCampaigns[Int(adIndex)])].stateSlot)].total)
        }
        CacheTouch.keep(folded)
    }

    /// Touches the ads' delivery counters (under the delivery lock).
    static func touchCounters(_ adIndices: [Int32], _ snapshot: CatalogSnapshot, _ state: borrowing DeliveryState.State) {
        var folded: UInt64 = 0
        for adIndex in adIndices {
            folded ^= UInt64(bitPattern: state.ads[Int(snapshot.adStateSlots[Int(adIndex)])].impressions)
        }
        CacheTouch.keep(folded)
    }

    /// Every eligible ad of the eligible campaigns, with its live counters.
    static func exhaustive(_ eligibility: Eligibility, delivery: DeliveryState, now: Timestamp) -> [Candidate] {
        let campaigns = eligibility.campaigns(delivery)
        let snapshot = eligibility.snapshot
        var candidates: [Candidate] = []
        candidates.reserveCapacity(campaigns.count * 4)
        delivery.state.withLock { state in
            for campaignIndex in campaigns {
                let entry = snapshot.campaigns[Int(campaignIndex)]
                let seen = eligibility.seen(entry.id)
                for adIndex in entry.adStart..<entry.adEnd where eligibility.admitsAd(adIndex) {
                    let counters = state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]
                    candidates.append(candidate(adIndex, entry, counters, state.advertiserTotals(entry), seen, eligibility.userHides, snapshot, now))
                }
            }
        }
        return candidates
    }

    /// The candidate value of one ad: what a ranker may look at.
    static func candidate(
        _ adIndex: Int32, _ entry: CatalogSnapshot.Entry, _ counters: DeliveryCounters, _ advertiser: DeliveryState.RateTotals, _ seen: Int,
        _ userHides: Int, _ snapshot: CatalogSnapshot, _ now: Timestamp
    ) -> Candidate {
        let ad = snapshot.ads[Int(adIndex)]
        var candidate = Candidate(
            adID: snapshot.adIDs[Int(adIndex)], campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
            bidMicros: entry.bidMicros, ad: ad, adAgeHours: ad.ageHours(at: now), impressions: counters.impressions, clicks: counters.clicks,
            conversions: counters.conversions, userCampaignImpressions: seen, adSlot: snapshot.adStateSlots[Int(adIndex)])
        candidate.advertiserClicks = advertiser.clicks
        candidate.advertiserConversions = advertiser.conversions
        candidate.hides = counters.hides
        candidate.userHides = userHides
        return candidate
    }
}

/// The ad indices already among a request's candidates: open addressing over a power-of-two
/// table at most half full, sized once for the request. Swift's `Set` hashes each index with
/// a seeded SipHash; this is a multiply and a shift.
struct AdIndexSet {
    private var slots: [Int32]
    private let shift: Int
    private(set) var count = 0

    init(capacity: Int) {
        var bits = 4
        while 1 << bits < 2 * max(capacity, 1) { bits += 1 }
        slots = [Int32](repeating: -1, count: 1 << bits)
        shift = 64 - bits
    }

    @inline(__always)
    private func home(_ index: Int32) -> Int { Int(truncatingIfNeeded: (UInt64(UInt32(bitPattern: index)) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(shift)) }

    func contains(_ index: Int32) -> Bool {
        var i = home(index)
        while slots[i] != -1 {
            if slots[i] == index { return true }
            i = (i + 1) & (slots.count - 1)
        }
        return false
    }

    /// Adds a non-negative index; grows the table past half full.
    mutating func insert(_ index: Int32) {
        precondition(index >= 0, "ad indices are not negative")
        var i = home(index)
        while slots[i] != -1 {
            if slots[i] == index { return }
            i = (i + 1) & (slots.count - 1)
        }
        slots[i] = index
        count += 1
        if 2 * count > slots.count { grow() }
    }

    private mutating func grow() {
        let old = slots
        self = AdIndexSet(capacity: old.count)
        for index in old where index != -1 { insert(index) }
    }
}
