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
    /// `order` split by the campaigns' objective (`Objective.allCases` order): each billing
    /// type's ads best first. A value with no user is far from the value for a user in
    /// different ways per objective (a conversion ad's rises most with the user's own conversion
    /// rate), so the candidate stage's value pool draws from each objective's order.
    let objectiveOrders: [[Int32]]
    /// Per ad index of `snapshot`.
    let predictions: [Prediction]
    let values: [Double]

    /// With `forValue`, predictions come from `predictForRanking` (enough for the values; a
    /// value order does not place from its predictions).
    init(
        snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker, now: Timestamp, forValue: Bool = false,
        engagement: EngagementCost = EngagementCost()
    ) {
        let (counters, advertisers) = delivery.state.withLock { state in
            (snapshot.adStateSlots.map { state.ads[Int($0)] }, snapshot.campaigns.map { state.advertiserTotals($0) })
        }
        var predictions: [Prediction] = []
        var values: [Double] = []
        predictions.reserveCapacity(snapshot.adIDs.count)
        values.reserveCapacity(snapshot.adIDs.count)
        // In batches, so a learned ranker does its per-request work once per batch.
        var batch: [Candidate] = []
        batch.reserveCapacity(4096)
        func flush() {
            let batchPredictions = forValue
                ? ranker.predictForRanking(batch, user: nil, context: FeedContext()) : ranker.predict(batch, user: nil, context: FeedContext())
            for (candidate, prediction) in zip(batch, batchPredictions) {
                predictions.append(prediction)
                values.append(prediction.expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros) - engagement.cost(candidate, hide: prediction.hide))
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
        self.order = Array(0..<Int32(snapshot.adIDs.count)).sorted { a, b in
            values[Int(a)] != values[Int(b)] ? values[Int(a)] > values[Int(b)] : snapshot.adIDs[Int(a)] < snapshot.adIDs[Int(b)]
        }
        var objectiveOrders = [[Int32]](repeating: [], count: Objective.allCases.count)
        for adIndex in order {
            let objective = snapshot.campaigns[Int(snapshot.adCampaigns[Int(adIndex)])].objective
            objectiveOrders[Objective.allCases.firstIndex(of: objective)!].append(adIndex)
        }
        self.objectiveOrders = objectiveOrders
        self.snapshot = snapshot
        self.predictions = predictions
        self.values = values
    }
}
