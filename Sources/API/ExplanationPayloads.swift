import Domain
import Serving

/// `GET /v1/decisions/{id}/explain`: the decision's trace for operators.
struct ExplainPayload: Encodable {
    struct AdRef: Encodable {
        var adId: Int64
        var campaignId: Int64
        var advertiserId: Int64
        var objective: Objective
        var bidMicros: Int64
        var impressions: Int64
        var clicks: Int64
    }

    struct Placed: Encodable {
        var afterPost: Int
        var ad: AdRef
        var pClick: Double
        var pConversion: Double
        var expectedValueMicros: Double
        var priceMicros: Int64
        var explored: Bool
        var propensity: Double
        /// How the price came about, in words with the numbers.
        var auction: String
        var contributions: [ContributionPayload]
    }

    struct Considered: Encodable {
        var ad: AdRef
        var pClick: Double
        var pConversion: Double
        var expectedValueMicros: Double
        var outcome: String
    }

    /// One of the best ads for anyone that did not win here, and the rule that kept its
    /// campaign out (`reason`, a loss reason; `outbid`: eligible, and lost on value for this user).
    struct NotableLoser: Encodable {
        var adId: Int64
        var campaignId: Int64
        var advertiserId: Int64
        var objective: Objective
        var bidMicros: Int64
        var valueForAnyoneMicros: Double
        var reason: String
    }

    struct ContributionPayload: Encodable {
        var inputs: String
        var clickDelta: Double
    }

    struct Filtered: Encodable {
        var frequencyCappedCampaigns: [Int64]
        var frequencyCappedAds: [Int64]
        var hiddenAds: [Int64]
        var hiddenAdvertisers: [Int64]
        var notRelevantFeedback: Int
    }

    var decisionId: String
    var arm: String
    var userId: String
    var at: String
    var personalized: Bool
    var policy: String
    var pricing: String
    var reserves: [String: Int64]
    /// Ad positions the ad-load rules gave the page.
    var slots: Int
    var placements: [Placed]
    var candidates: [Considered]
    var runnerUpValueMicros: Double?
    var filtered: Filtered
    var notableLosers: [NotableLoser]
    var note: String

    init(_ t: DecisionTrace, ranker: some Ranker) {
        func ref(_ c: Candidate) -> AdRef {
            AdRef(
                adId: c.adID.rawValue, campaignId: c.campaignID.rawValue, advertiserId: c.advertiserID.rawValue, objective: c.objective,
                bidMicros: c.bidMicros, impressions: c.impressions, clicks: c.clicks)
        }
        decisionId = t.decisionID
        arm = t.arm
        userId = t.userID.rawValue
        at = t.at.iso8601
        personalized = t.personalized
        policy = t.policy
        pricing = t.auction.pricing.rawValue
        reserves = ["cpm": t.auction.reserveCPMMicros, "cpc": t.auction.reserveCPCMicros, "cpa": t.auction.reserveCPAMicros]
        slots = t.slots
        let runnerUp = t.runnerUpValueMicros
        // What a winner was priced against: the next slot's winner, or for the last the runner-up.
        let auctionWinners = t.placed.filter { !$0.explored }
        func next(after p: DecisionTrace.Placed) -> Double? {
            guard let i = auctionWinners.firstIndex(where: { $0.afterPost == p.afterPost }) else { return nil }
            return i + 1 < auctionWinners.count ? auctionWinners[i + 1].valueMicros : runnerUp
        }
        placements = t.placed.map { p in
            let unit = switch p.candidate.objective {
            case .awareness: "per impression (a CPM bid of \(p.candidate.bidMicros) per 1,000)"
            case .traffic: "per click"
            case .conversions: "per conversion"
            }
            let auction: String
            if p.explored {
                auction = "placed by exploration (propensity \(p.propensity)): pays the reserve, \(p.priceMicros) micros \(unit)"
            } else if t.auction.pricing == .firstPrice || t.policy != "ranked" {
                auction = "pays its bid: \(p.priceMicros) micros \(unit)"
            } else if let next = next(after: p) {
                auction = "value \(p.valueMicros) micros per impression against the next candidate's \(next): pays the least bid that keeps its slot, \(p.priceMicros) micros \(unit) (never above its bid, never below the reserve)"
            } else {
                auction = "no competitor left out: pays the reserve, \(p.priceMicros) micros \(unit)"
            }
            return Placed(
                afterPost: p.afterPost, ad: ref(p.candidate), pClick: p.prediction.click, pConversion: p.prediction.conversion,
                expectedValueMicros: p.valueMicros, priceMicros: p.priceMicros, explored: p.explored, propensity: p.propensity, auction: auction,
                contributions: ranker.contributions(p.candidate, user: t.profile, context: t.context).prefix(5).map {
                    ContributionPayload(inputs: $0.inputs, clickDelta: $0.clickDelta)
                })
        }
        candidates = t.considered.map {
            Considered(
                ad: ref($0.candidate), pClick: $0.prediction.click, pConversion: $0.prediction.conversion, expectedValueMicros: $0.valueMicros,
                outcome: $0.outcome.rawValue)
        }
        runnerUpValueMicros = runnerUp
        filtered = Filtered(
            frequencyCappedCampaigns: t.frequencyCappedCampaigns.map(\.rawValue), frequencyCappedAds: t.frequencyCappedAds.map(\.rawValue),
            hiddenAds: t.hiddenAds.map(\.rawValue), hiddenAdvertisers: t.hiddenAdvertisers.map(\.rawValue), notRelevantFeedback: t.notRelevantCount)
        notableLosers = t.notableLosers.map {
            NotableLoser(
                adId: $0.adID.rawValue, campaignId: $0.campaignID.rawValue, advertiserId: $0.advertiserID.rawValue, objective: $0.objective,
                bidMicros: $0.bidMicros, valueForAnyoneMicros: $0.valueMicros, reason: $0.reason.rawValue)
        }
        note = "Predictions, values and prices are as decided; contributions are recomputed now by the serving ranker (leave-one-group-out on P(click))."
    }
}

/// `GET /v1/decisions/{id}/why?ad_id=`.
struct WhyPayload: Encodable {
    var decisionId: String
    var adId: Int64
    var personalized: Bool
    var text: String
}

/// `GET /v1/reports/campaigns/{id}/losses`.
struct LossesPayload: Encodable {
    var campaignId: Int64
    var sampleRate: Double
    var sampledDecisions: Int
    var reasons: [String: Int]
    var outbidMinimumBidToWinMicros: BidSummary?
    var note: String

    struct BidSummary: Encodable {
        var samples: Int
        var median: Int64
        var p25: Int64
        var p75: Int64
    }

    init(campaignID: CampaignID, counts: LossTally.Counts, sampleRate: Double) {
        campaignId = campaignID.rawValue
        self.sampleRate = sampleRate
        sampledDecisions = counts.sampledDecisions
        reasons = Dictionary(uniqueKeysWithValues: LossReason.allCases.map { ($0.rawValue, counts.reasons[$0] ?? 0) })
        let bids = counts.minimumBidsToWin.sorted()
        outbidMinimumBidToWinMicros = bids.isEmpty
            ? nil : BidSummary(samples: bids.count, median: bids[bids.count / 2], p25: bids[bids.count / 4], p75: bids[(bids.count * 3) / 4])
        note = "Every campaign's fate on a sample of this node's decisions since it started: the first rule that kept it out, or outbid, or won. The bids are the least that would have beaten the last placed ad, over the latest samples where it ranked among the best candidates."
    }
}
