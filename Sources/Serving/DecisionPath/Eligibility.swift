import Domain
import Foundation

/// One arm's share of the catalog in a budget-split experiment: the experiment creates each
/// campaign once per arm, with that arm's share of the budgets, and arm `index` of `count`
/// serves only the copies whose `(id − 1) mod count == index`. Arms then never compete for the
/// same budget, and each learns only from its own copies' impressions.
public struct CampaignSlice: Sendable, Equatable {
    public var index: Int64
    public var count: Int64

    public init(index: Int, count: Int) {
        precondition(count > 0 && (0..<count).contains(index), "a slice's index must be within 0..<count")
        self.index = Int64(index)
        self.count = Int64(count)
    }

    @inline(__always)
    public func contains(_ campaign: CampaignID) -> Bool { (campaign.rawValue - 1) % count == index }

    /// The id of campaign `id`'s copy (a campaign id, or an ad's or advertiser's) in this slice.
    public func copy(of id: Int64) -> Int64 { (id - 1) * count + index + 1 }
    /// The original id of a copy in any slice of `count`.
    public static func original(of copy: Int64, count: Int) -> Int64 { (copy - 1) / Int64(count) + 1 }
}

/// Stage 1 of a decision: what this user may see now. The one place eligibility is written:
/// schedule and targeting (from the snapshot's index), frequency caps and hides (from the
/// user's delivery state), and budget (from campaign spend). Every selection — the exhaustive
/// scan, the walk of a best-first order, the random policy — asks it.
///
/// The user's state is copied out once at the start (a few recent impressions and hides), so
/// matching runs without the delivery lock; spend is read under the lock by the caller.
struct Eligibility {
    let snapshot: CatalogSnapshot
    let audience: CatalogSnapshot.Audience
    let now: Int64
    let day: Int64
    /// Ads the user hid (also those called "not relevant" and those shown when hiding their advertiser).
    let hidden: Set<Int64>
    /// Advertisers the user hid.
    let hiddenAdvertisers: Set<Int64>
    /// What the user called "not relevant": the share of value ads like it keep.
    let relevance: Relevance
    /// How much of P(click) each campaign's ads keep after this user's earlier showings.
    let fatigue: Fatigue
    /// Indices of the campaigns whose frequency cap the user has reached.
    let capped: [Int32]
    /// Ads whose per-ad frequency cap the user has reached.
    let cappedAds: Set<Int64>
    /// How often the user saw each campaign (by id) in the cap memory: fatigue, for the ranker.
    /// Empty for a user who opted out of personalization: caps still apply (`capped`), but the
    /// ranker does not learn from their activity.
    let seenByCampaign: [Int64: Int]
    /// Whether the ranker may see the user's activity (`UserProfile.personalization`).
    let personalized: Bool
    /// How many ads the user has hidden (with "not relevant" and hidden advertisers' ads): how
    /// little they tolerate ads, for the ranker; 0 for a user who opted out (their hidden ads
    /// stay hidden).
    var userHides: Int { personalized ? hidden.count : 0 }
    /// Reserves: a campaign bidding less than its billing type's reserve is not eligible.
    let auction: AuctionRules
    /// A budget-split arm's campaigns; nil: every campaign.
    let slice: CampaignSlice?
    /// This decision's seed for pacing draws: one uniform per campaign, the same every time
    /// the decision asks about that campaign.
    let paceSeed: UInt64

    init(
        snapshot: CatalogSnapshot, profile: UserProfile?, context: FeedContext, user: UserState?, now: Timestamp,
        auction: AuctionRules = AuctionRules(), slice: CampaignSlice? = nil, paceSeed: UInt64 = 0, fatigue: Double = 1
    ) {
        self.slice = slice
        self.paceSeed = paceSeed
        self.snapshot = snapshot
        self.audience = snapshot.audience(for: profile, device: context.device)
        self.now = now.milliseconds
        self.day = now.day
        self.hidden = user?.hiddenAds ?? []
        self.hiddenAdvertisers = user?.hiddenAdvertisers ?? []
        (self.capped, self.cappedAds) = snapshot.capped(user, now: now.milliseconds)
        self.personalized = profile?.personalization ?? true
        var seen: [Int64: Int] = [:]
        if personalized {
            for item in user?.recent ?? [] { seen[item.campaign, default: 0] += 1 }
        }
        self.seenByCampaign = seen
        self.relevance = Relevance(notRelevant: user?.notRelevant ?? [])
        self.fatigue = Fatigue(rate: fatigue, seenByCampaign: seen)
        self.auction = auction
    }

    /// Slice, schedule, targeting, frequency cap, reserve and hidden advertiser of one campaign.
    @inline(__always)
    func admitsCampaign(_ index: Int32) -> Bool {
        inSlice(index) && snapshot.matches(index, audience, now) && !isCapped(index) && meetsReserve(index) && !advertiserHidden(index)
    }

    /// Whether the campaign belongs to this arm's slice (always, outside a budget-split experiment).
    @inline(__always)
    func inSlice(_ index: Int32) -> Bool { slice?.contains(snapshot.campaigns[Int(index)].id) ?? true }

    @inline(__always)
    func advertiserHidden(_ index: Int32) -> Bool {
        !hiddenAdvertisers.isEmpty && hiddenAdvertisers.contains(snapshot.campaigns[Int(index)].advertiserID.rawValue)
    }


    @inline(__always)
    func meetsReserve(_ index: Int32) -> Bool {
        guard auction.hasReserve else { return true }
        let entry = snapshot.campaigns[Int(index)]
        return entry.bidMicros >= auction.reserve(entry.objective)
    }

    @inline(__always)
    func isCapped(_ index: Int32) -> Bool { !capped.isEmpty && capped.contains(index) }

    /// Whether the campaign may spend in this decision: budget left (`hasRoom`) and, when it
    /// is paced, let through by its pass rate (read under the delivery lock).
    @inline(__always)
    func hasBudget(_ index: Int32, _ state: borrowing DeliveryState.State) -> Bool {
        hasRoom(index, state) && passesPacing(index, state)
    }

    /// Whether the campaign can still be charged, from its spend.
    @inline(__always)
    func hasRoom(_ index: Int32, _ state: borrowing DeliveryState.State) -> Bool {
        let entry = snapshot.campaigns[Int(index)]
        let spend = state.spend[Int(entry.stateSlot)]
        return Budget.hasRoom(
            dailyBudget: entry.dailyBudgetMicros, spentToday: spend.spentToday(day: day),
            totalBudget: entry.totalBudgetMicros, spentTotal: spend.total)
    }

    /// Whether pacing lets the campaign into this decision: always at pass rate 1, else with
    /// that probability (a hash of the decision's seed and the campaign, uniform in [0, 1)).
    @inline(__always)
    func passesPacing(_ index: Int32, _ state: borrowing DeliveryState.State) -> Bool {
        let entry = snapshot.campaigns[Int(index)]
        let pace = state.spend[Int(entry.stateSlot)].pace
        guard pace < 1 else { return true }
        var mixer = SplitMix64(seed: paceSeed ^ UInt64(bitPattern: entry.id.rawValue) &* 0x9E37_79B9_7F4A_7C15)
        return Float(mixer.next() >> 40) * 0x1p-24 < pace
    }

    /// The first rule that keeps campaign `index` out of this decision (schedule, targeting,
    /// reserve, a hidden advertiser, a cap, every ad hidden or capped, budget, pacing), nil when
    /// it is eligible. For loss reasons and explanations; selection asks the rules directly.
    func exclusion(_ index: Int32, _ state: borrowing DeliveryState.State) -> LossReason? {
        let entry = snapshot.campaigns[Int(index)]
        if now < entry.startAt || now >= entry.endAt { return .schedule }
        if !snapshot.matches(index, audience, now) { return .targeting }
        if !meetsReserve(index) { return .belowReserve }
        if advertiserHidden(index) { return .hiddenByUser }
        if isCapped(index) { return .frequencyCap }
        if !(entry.adStart..<entry.adEnd).contains(where: admitsAd) {
            return (entry.adStart..<entry.adEnd).contains { cappedAds.contains(snapshot.adIDs[Int($0)].rawValue) } ? .frequencyCap : .hiddenByUser
        }
        if !hasRoom(index, state) { return .budget }
        if !passesPacing(index, state) { return .pacing }
        return nil
    }

    /// Why this user may not see the ad itself (hidden, or at its per-ad cap); nil when they may.
    func adExclusion(_ adIndex: Int32) -> LossReason? {
        guard !admitsAd(adIndex) else { return nil }
        return cappedAds.contains(snapshot.adIDs[Int(adIndex)].rawValue) ? .frequencyCap : .hiddenByUser
    }

    /// Whether some ads of eligible campaigns are shut out for this user (hidden or at a per-ad cap).
    var filtersAds: Bool { !hidden.isEmpty || !cappedAds.isEmpty }

    /// Whether the user has not hidden this ad nor reached its per-ad cap.
    @inline(__always)
    func admitsAd(_ adIndex: Int32) -> Bool {
        (hidden.isEmpty || !hidden.contains(snapshot.adIDs[Int(adIndex)].rawValue))
            && (cappedAds.isEmpty || !cappedAds.contains(snapshot.adIDs[Int(adIndex)].rawValue))
    }

    /// `seenByCampaign` for one campaign. Asked for every candidate: a user who has seen nothing
    /// (most, on a first decision) costs no hash of the id.
    func seen(_ campaign: CampaignID) -> Int { seenByCampaign.isEmpty ? 0 : seenByCampaign[campaign.rawValue] ?? 0 }

    /// Every campaign this user may see now, in index order (the user's country, then campaigns
    /// of no country): targeting and caps matched unlocked, then budgets under the lock.
    func campaigns(_ delivery: DeliveryState) -> [Int32] {
        var matched: [Int32] = []
        snapshot.forEachMatchingCampaign(audience, at: now) { index in
            if inSlice(index) && !isCapped(index) && meetsReserve(index) && !advertiserHidden(index) { matched.append(index) }
        }
        delivery.state.withLock { state in matched.removeAll { !hasBudget($0, state) } }
        return matched
    }

    /// The eligible ads of an eligible campaign, in ad order.
    func ads(of campaignIndex: Int32) -> [Int32] {
        let entry = snapshot.campaigns[Int(campaignIndex)]
        return (entry.adStart..<entry.adEnd).filter(admitsAd)
    }
}

/// A user's "not relevant" feedback as the ranking applies it: an ad keeps
/// 1 − `weight` × cosine² of its value, the cosine (≥ 0) of its content vector with the closest
/// ad the user called not relevant. The same ad is hidden; ads on the same topic lose most of
/// their value; unrelated ads (cosine near 0) keep it. Ads without a content vector keep it.
struct Relevance {
    static let weight = 0.8
    let notRelevant: [[Float]]
    /// Their squared norms, computed once per decision.
    let squaredNorms: [Double]

    init(notRelevant: [[Float]]) {
        self.notRelevant = notRelevant
        self.squaredNorms = notRelevant.map(VectorMath.squaredNorm)
    }

    var isNeutral: Bool { notRelevant.isEmpty }

    @inline(__always)
    func factor(_ ad: Ad) -> Double {
        guard !notRelevant.isEmpty else { return 1 }
        var closest = 0.0
        for (other, otherNorm) in zip(notRelevant, squaredNorms) {
            if let cosine = ad.contentCosine(other, squaredNorm: otherNorm) { closest = max(closest, cosine) }
        }
        return 1 - Self.weight * closest * closest
    }
}

/// Creative fatigue as the ranking applies it (`ServingConfiguration.fatigue`): each time the
/// user saw an ad's campaign in the cap memory multiplies its P(click) by `rate`, so the
/// advertiser's expected value of a click or conversion ad falls with it (an awareness ad's bid
/// per impression does not) while the engagement cost stays: total value = bid × q × decay −
/// cost, and second prices stay those of a value proportional to the bid. 1, the default, is
/// off. The learned ranker learns its own decay from the same count (a feature); this is for a
/// ranker that does not, such as the rule-based control.
struct Fatigue {
    static let off = Fatigue(rate: 1, seenByCampaign: [:])
    let rate: Double
    /// How often the user saw each campaign (by id); empty when off.
    let seenByCampaign: [Int64: Int]

    /// A rate outside [0, 1] is taken as the nearest bound; one that is not a number as 1.
    init(rate: Double, seenByCampaign: [Int64: Int]) {
        self.rate = rate.isNaN ? 1 : min(1, max(0, rate))
        self.seenByCampaign = self.rate < 1 ? seenByCampaign : [:]
    }

    /// True when no ad of this decision decays (off, or the user has seen nothing).
    var isNeutral: Bool { seenByCampaign.isEmpty }

    /// The share of P(click) left to an ad of `campaign`.
    @inline(__always)
    func factor(_ campaign: CampaignID) -> Double {
        guard !seenByCampaign.isEmpty, let seen = seenByCampaign[campaign.rawValue] else { return 1 }
        return pow(rate, Double(seen))
    }

    /// `prediction` with its P(click) decayed for an ad of `campaign`.
    @inline(__always)
    func apply(_ prediction: Prediction, _ campaign: CampaignID) -> Prediction {
        guard !seenByCampaign.isEmpty else { return prediction }
        var decayed = prediction
        decayed.click *= factor(campaign)
        return decayed
    }
}
