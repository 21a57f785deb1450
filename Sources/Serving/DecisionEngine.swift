import Domain

/// One ad placed in a page.
public struct Placement: Sendable {
    public var afterPost: Int
    public var ad: Ad
    public var campaignID: CampaignID
    public var advertiserID: AdvertiserID
    public var objective: Objective
    public var prediction: Prediction
    /// Expected value of the impression in micros: what it was ranked by.
    public var expectedValueMicros: Double
    public var priceMicros: Micros
    public var impressionToken: String
}

public struct Decision: Sendable {
    public var decisionID: String
    public var placements: [Placement]
}

/// The decision path, pure apart from reading live delivery state: eligibility (index, schedule,
/// budget, frequency cap, hides), ranking by expected value, one ad per advertiser, ad-load
/// positions, pricing and signed tokens. No I/O, no HTTP: the server, the simulator and the
/// benchmark all call it.
public struct DecisionEngine: Sendable {
    public var adLoad: AdLoadPolicy
    public var signer: TokenSigner

    public init(adLoad: AdLoadPolicy = AdLoadPolicy(), signer: TokenSigner) {
        self.adLoad = adLoad
        self.signer = signer
    }

    /// A selected candidate, before it is placed.
    private struct Pick {
        var adIndex: Int32
        var campaignIndex: Int32
        var prediction: Prediction
        var value: Double
    }

    public func decide(
        decisionID: String, userID: UserID, profile: UserProfile?, context: FeedContext, organicCount: Int,
        now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker
    ) -> Decision {
        let positions = adLoad.positions(organicCount: organicCount)
        guard !positions.isEmpty else { return Decision(decisionID: decisionID, placements: []) }
        let audience = snapshot.audience(for: profile, device: context.device)
        let picks = select(
            count: positions.count, userID: userID, profile: profile, context: context, audience: audience, now: now,
            snapshot: snapshot, delivery: delivery, ranker: ranker)

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
                    prediction: pick.prediction, expectedValueMicros: pick.value, priceMicros: price,
                    impressionToken: signer.sign(token)))
        }
        return Decision(decisionID: decisionID, placements: placements)
    }

    /// The `count` best eligible ads by expected value, from distinct advertisers, best first.
    private func select(
        count: Int, userID: UserID, profile: UserProfile?, context: FeedContext, audience: CatalogSnapshot.Audience,
        now: Timestamp, snapshot: CatalogSnapshot, delivery: DeliveryState, ranker: some Ranker
    ) -> [Pick] {
        var best: [Pick] = []
        best.reserveCapacity(count + 1)
        let day = now.day
        let nowMs = now.milliseconds
        delivery.state.withLock { state in
            let user = state.users[userID]
            snapshot.forEachMatchingCampaign(audience, at: nowMs) { campaignIndex in
                let entry = snapshot.campaigns[Int(campaignIndex)]
                let spend = state.spend[Int(entry.stateSlot)]
                guard Budget.hasRoom(
                    dailyBudget: entry.dailyBudgetMicros, spentToday: spend.spentToday(day: day),
                    totalBudget: entry.totalBudgetMicros, spentTotal: spend.total)
                else { return }
                if entry.capImpressions > 0, let user {
                    let since = nowMs - entry.capWindowMilliseconds
                    var seen: Int32 = 0
                    for impression in user.recent where impression.campaign == entry.id.rawValue && impression.at > since { seen += 1 }
                    if seen >= entry.capImpressions { return }
                }
                for adIndex in entry.adStart..<entry.adEnd {
                    let adID = snapshot.adIDs[Int(adIndex)]
                    if let user, user.hiddenAds.contains(adID.rawValue) { continue }
                    let counters = state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]
                    let candidate = Candidate(
                        adID: adID, campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
                        bidMicros: entry.bidMicros, impressions: counters.impressions, clicks: counters.clicks,
                        conversions: counters.conversions)
                    let prediction = ranker.predict(candidate, user: profile, context: context)
                    let value = prediction.expectedValuePerImpression(objective: entry.objective, bidMicros: entry.bidMicros)
                    Self.offer(Pick(adIndex: adIndex, campaignIndex: campaignIndex, prediction: prediction, value: value),
                               advertiser: entry.advertiserID, into: &best, capacity: count, snapshot: snapshot)
                }
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
