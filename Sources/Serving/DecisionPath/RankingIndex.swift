import Domain

/// For a ranker whose predictions depend only on the ad (the rule-based control), every ad's
/// expected value is the same for all users. So it is computed once per refresh — from the
/// delivery counters of that moment — and the ads are kept sorted best-first. (A learned
/// ranker's order, with no user, is the candidate stage's value order: the ads worth most to
/// anyone.) A decision then
/// walks that order and stops as soon as its slots are filled: a few hundred ads visited
/// instead of every eligible one (the early termination of the threshold algorithm, Fagin,
/// Lotem & Naor 2001, with exact scores). Budgets, caps and hides are still checked live.
public final class RankingIndex: Sendable {
    /// The catalog the order was built for; a decision reads this snapshot, not a newer one.
    public let snapshot: CatalogSnapshot
    /// Ad indices of `snapshot`, by expected value descending, then ad id ascending.
    let order: [Int32]
    /// `order` split by the campaigns' objective (`Objective.allCases` order; a value order
    /// only, empty otherwise): each billing type's ads best first. A value with no user is far from the value for a user in
    /// different ways per objective (a conversion ad's rises most with the user's own conversion
    /// rate), so the candidate stage's value pool draws from each objective's order.
    let objectiveOrders: [[Int32]]
    /// Per ad index of `snapshot`.
    let predictions: [Prediction]
    let values: [Double]

    /// Per interest that campaigns target (`CatalogSnapshot.targetedInterests`; a value order
    /// only, when asked for): the state slots (`RetrievalKey.adSlot`) of the `interestDepth` best
    /// ads for a user known by that interest alone, best first. The user's interests move a
    /// learned ranker's value through its interest × ad crosses, which a value for no user leaves
    /// out. Slots, not indices: each order costs a ranking of every ad, so a value order carries
    /// them over from an older one (`ServingConfiguration.interestOrderMilliseconds`).
    let interestOrders: [String: [Int32]]
    static let interestDepth = 4_096

    /// With `forValue`, predictions come from `predictForRanking` (enough for the values; a
    /// value order does not place from its predictions). With `buildInterests` (and a ranker
    /// that depends on the user), every interest targeted now has an order: carried over from
    /// `interests` if there, else ranked anew; orders of interests no longer targeted are dropped.
    init(
        snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker, now: Timestamp, forValue: Bool = false,
        engagement: EngagementCost = EngagementCost(), buildInterests: Bool = false, interests: [String: [Int32]] = [:]
    ) {
        let (counters, advertisers) = delivery.state.withLock { state in
            (snapshot.adStateSlots.map { state.ads[Int($0)] }, snapshot.campaigns.map { state.advertiserTotals($0) })
        }
        /// Every ad's value for `user`, and its prediction when `keepPredictions` (only the
        /// order for no user keeps them).
        func score(_ user: UserProfile?, keepPredictions: Bool) -> (predictions: [Prediction], values: [Double]) {
            var predictions: [Prediction] = []
            var values: [Double] = []
            if keepPredictions { predictions.reserveCapacity(snapshot.adIDs.count) }
            values.reserveCapacity(snapshot.adIDs.count)
            // In batches, so a learned ranker does its per-request work once per batch.
            var batch: [Candidate] = []
            batch.reserveCapacity(4096)
            func flush() {
                let batchPredictions = forValue
                    ? ranker.predictForRanking(batch, user: user, context: FeedContext()) : ranker.predict(batch, user: user, context: FeedContext())
                for (candidate, prediction) in zip(batch, batchPredictions) {
                    if keepPredictions { predictions.append(prediction) }
                    values.append(engagement.totalValue(candidate, prediction))
                }
                batch.removeAll(keepingCapacity: true)
            }
            for campaignIndex in snapshot.campaigns.indices {
                let entry = snapshot.campaigns[campaignIndex]
                for adIndex in Int(entry.adStart)..<Int(entry.adEnd) {
                    let c = counters[adIndex]
                    var candidate = Candidate(
                        adID: snapshot.adIDs[adIndex], campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
                        bidMicros: entry.bidMicros, ad: snapshot.ads[adIndex], adAgeHours: snapshot.ads[adIndex].ageHours(at: now),
                        impressions: c.impressions, clicks: c.clicks, conversions: c.conversions, adSlot: snapshot.adStateSlots[adIndex])
                    candidate.hides = c.hides
                    candidate.advertiserClicks = advertisers[campaignIndex].clicks
                    candidate.advertiserConversions = advertisers[campaignIndex].conversions
                    batch.append(candidate)
                    if batch.count == 4096 { flush() }
                }
            }
            flush()
            return (predictions, values)
        }
        /// The ads best first by `values`, then by ad id; the first `limit` only.
        func sorted(_ values: [Double], limit: Int = .max) -> [Int32] {
            var kept = Array(0..<Int32(snapshot.adIDs.count))
            if kept.count > limit {
                // Only the ads at or above the limit-th value are sorted by the comparator (the
                // threshold comes from a plain sort of the values, much the cheaper).
                let threshold = values.sorted(by: >)[limit - 1]
                kept.removeAll { values[Int($0)] < threshold }
            }
            kept.sort { a, b in
                values[Int(a)] != values[Int(b)] ? values[Int(a)] > values[Int(b)] : snapshot.adIDs[Int(a)] < snapshot.adIDs[Int(b)]
            }
            return Array(kept.prefix(limit))
        }
        let (predictions, values) = score(nil, keepPredictions: true)
        self.order = sorted(values)
        var interestOrders: [String: [Int32]] = [:]
        if buildInterests, !ranker.isUserIndependent {
            for interest in snapshot.targetedInterests {
                interestOrders[interest] = interests[interest] ?? {
                    let best = sorted(score(UserProfile(id: UserID(trusted: "segment"), interests: [interest]), keepPredictions: false).values, limit: Self.interestDepth)
                    return best.map { snapshot.adStateSlots[Int($0)] }
                }()
            }
        }
        self.interestOrders = interestOrders
        // Only a value order's candidate stage reads them; the control's walk does not.
        var objectiveOrders = [[Int32]](repeating: [], count: forValue ? Objective.allCases.count : 0)
        if forValue {
            for adIndex in order {
                let objective = snapshot.campaigns[Int(snapshot.adCampaigns[Int(adIndex)])].objective
                objectiveOrders[Objective.allCases.firstIndex(of: objective)!].append(adIndex)
            }
        }
        self.objectiveOrders = objectiveOrders
        self.snapshot = snapshot
        self.predictions = predictions
        self.values = values
    }
}
