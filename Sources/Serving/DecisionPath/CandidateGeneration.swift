import Domain

/// One candidate with where it lives in the snapshot: what later stages carry.
struct Pick {
    var adIndex: Int32
    var campaignIndex: Int32
    var candidate: Candidate
    var prediction = Prediction(click: 0, conversion: 0)
    var value = 0.0
    var propensity = 1.0
}

/// Stage 2 of a decision: the candidates the ranker scores. Today every eligible ad (the
/// exhaustive stage); a retrieval stage that narrows them goes here.
enum CandidateGeneration {
    /// Every eligible ad of the eligible campaigns, with its live counters.
    static func exhaustive(_ eligibility: Eligibility, delivery: DeliveryState, now: Timestamp) -> [Pick] {
        let campaigns = eligibility.campaigns(delivery)
        let snapshot = eligibility.snapshot
        var picks: [Pick] = []
        picks.reserveCapacity(campaigns.count * 4)
        delivery.state.withLock { state in
            for campaignIndex in campaigns {
                let entry = snapshot.campaigns[Int(campaignIndex)]
                let seen = eligibility.seen(entry.id)
                for adIndex in entry.adStart..<entry.adEnd where eligibility.admitsAd(adIndex) {
                    let counters = state.ads[Int(snapshot.adStateSlots[Int(adIndex)])]
                    picks.append(Pick(adIndex: adIndex, campaignIndex: campaignIndex, candidate: candidate(adIndex, entry, counters, seen, snapshot, now)))
                }
            }
        }
        return picks
    }

    /// The candidate value of one ad: what a ranker may look at.
    static func candidate(
        _ adIndex: Int32, _ entry: CatalogSnapshot.Entry, _ counters: DeliveryCounters, _ seen: Int, _ snapshot: CatalogSnapshot, _ now: Timestamp
    ) -> Candidate {
        let ad = snapshot.ads[Int(adIndex)]
        return Candidate(
            adID: snapshot.adIDs[Int(adIndex)], campaignID: entry.id, advertiserID: entry.advertiserID, objective: entry.objective,
            bidMicros: entry.bidMicros, ad: ad, adAgeHours: ad.ageHours(at: now), impressions: counters.impressions, clicks: counters.clicks,
            conversions: counters.conversions, userCampaignImpressions: seen)
    }
}
