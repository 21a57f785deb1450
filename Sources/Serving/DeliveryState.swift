import Domain
import Storage
import Synchronization

/// What has been delivered, live: spend per campaign and counters per ad (per user state is
/// `UserCache`'s). Rebuilt from the store at start, then kept up to date by event ingestion
/// after each durable write and by the fleet sync. Campaigns and ads are dense arrays indexed
/// by the stable slots `CatalogPublisher` assigns, so the decision path reads them without hashing.
public final class DeliveryState: Sendable {
    struct CampaignSpendState {
        var day: Int64 = .min
        var today: Micros = 0
        var total: Micros = 0
        /// The pacing pass rate (`BudgetPacer`): the probability that a decision considers the
        /// campaign; 1 without pacing.
        var pace: Float = 1
        /// Where today's pacing target starts (`BudgetPacer.target`): the day it was set, the
        /// share of the day's traffic gone by then and the spend then.
        var paceDay: Int64 = .min
        var anchorShare: Double = 0
        var anchorSpend: Micros = 0

        func spentToday(day now: Int64) -> Micros { day == now ? today : 0 }

        /// Starts a new day's spend when `day` is later than the one held.
        mutating func roll(to day: Int64) {
            guard day > self.day else { return }
            today = 0
            self.day = day
        }
    }

    struct State {
        var spend: [CampaignSpendState] = []
        /// Per ad state slot: all-time impressions, clicks and conversions (the rule-based rates).
        var ads: [DeliveryCounters] = []
        /// Per advertiser: all-time valid clicks and conversions of its ads (pooled P(conversion)).
        var advertisers: [Int64: RateTotals] = [:]

        /// The advertiser's totals, for conversion campaigns (the others never price conversions).
        @inline(__always)
        func advertiserTotals(_ entry: CatalogSnapshot.Entry) -> RateTotals {
            entry.objective == .conversions ? advertisers[entry.advertiserID.rawValue] ?? RateTotals() : RateTotals()
        }
        /// Ad state slots with fewer than `youngBelow` impressions, ascending: where exploration
        /// looks for ads to learn about, without scanning the catalog.
        var young: [Int32] = []
        var youngBelow: Int64

        /// Adds one event to an ad's counters and, for a conversion campaign's click or
        /// conversion, to its advertiser's totals.
        mutating func count(_ event: EventRecord, adSlot: Int?, advertiser: Int64?) {
            switch event.type {
            case .impression:
                if let adSlot, adSlot < ads.count {
                    ads[adSlot].impressions += 1
                    if ads[adSlot].impressions == youngBelow { removeYoung(Int32(adSlot)) }
                }
            case .click:
                if let adSlot, adSlot < ads.count {
                    if event.invalidReason == nil { ads[adSlot].clicks += 1 } else { ads[adSlot].invalidClicks += 1 }
                }
                if event.invalidReason == nil, let advertiser { advertisers[advertiser, default: RateTotals()].clicks += 1 }
            case .conversion:
                if let adSlot, adSlot < ads.count { ads[adSlot].conversions += 1 }
                if let advertiser { advertisers[advertiser, default: RateTotals()].conversions += 1 }
            case .hide, .hideAdvertiser, .notRelevant:
                if let adSlot, adSlot < ads.count { ads[adSlot].hides += 1 }
            }
        }

        mutating func removeYoung(_ slot: Int32) {
            let low = young.partitionPoint { $0 < slot }
            if low < young.count, young[low] == slot { young.remove(at: low) }
        }
    }

    let state: Mutex<State>
    /// Copies of each ad and advertiser in a budget-split experiment (one per arm,
    /// `CampaignSlice`) whose history is pooled: an event's counters are added to every copy,
    /// so each arm's rule-based rates, exploration and pooled P(conversion) read the ad's whole
    /// history, as one ad's counters would in production, while budgets stay split. 1: no copies.
    let historyCopies: Int

    struct RateTotals {
        var clicks: Int64 = 0
        var conversions: Int64 = 0
    }

    /// `youngBelow`: ads with fewer impressions are young, candidates for exploration
    /// (`ExplorationPolicy.maxImpressions`).
    public init(youngBelow: Int64 = ExplorationPolicy.defaultMaxImpressions, historyCopies: Int = 1) {
        state = Mutex(State(youngBelow: youngBelow))
        self.historyCopies = max(1, historyCopies)
    }

    func ensureCapacity(campaigns: Int, ads: Int) {
        state.withLock { s in
            if s.spend.count < campaigns { s.spend += Array(repeating: CampaignSpendState(), count: campaigns - s.spend.count) }
            if s.ads.count < ads {
                // New slots have no impressions yet: young, and above every slot listed so far.
                if s.youngBelow > 0 { s.young += (s.ads.count..<ads).map { Int32($0) } }
                s.ads += Array(repeating: DeliveryCounters(), count: ads - s.ads.count)
            }
        }
    }

    /// Rebuilds spend and ad counters from the store: a read of the catalog's size, whatever
    /// the history's length or the number of users.
    public func restore(from store: some AdStore, catalog: CatalogPublisher, now: Timestamp) async throws {
        let snapshot = catalog.snapshot
        let spend = try await store.campaignSpend(day: now.day)
        let counters = try await store.adCounters()
        ensureCapacity(campaigns: snapshot.campaignSlots.count, ads: snapshot.adSlots.count)
        state.withLock { s in
            for row in spend {
                guard let slot = snapshot.campaignSlots[row.campaignID] else { continue }
                s.spend[Int(slot)].day = now.day
                s.spend[Int(slot)].today = row.todayMicros
                s.spend[Int(slot)].total = row.totalMicros
            }
            for (adID, c) in counters {
                // Only conversion campaigns' clicks pool P(conversion | click): others track none.
                if let campaign = snapshot.adsByID[adID].flatMap({ snapshot.campaignsByID[$0.campaignID] }), campaign.objective == .conversions {
                    let advertiser = campaign.advertiserID.rawValue
                    s.advertisers[advertiser, default: RateTotals()].clicks += c.clicks
                    s.advertisers[advertiser, default: RateTotals()].conversions += c.conversions
                }
                guard let slot = snapshot.adSlots[adID] else { continue }
                s.ads[Int(slot)] = c
            }
        }
        retainYoung(activeIn: snapshot)
    }

    /// Takes in what the whole fleet has spent, read from the store: each campaign's spend
    /// becomes the larger of what this node knows and what the store says (both only grow within
    /// a day, and the store holds this node's own charges too, so the larger is the newer).
    /// Returns how many campaigns' spend rose.
    @discardableResult
    public func mergeFleetSpend(_ rows: [CampaignSpend], snapshot: CatalogSnapshot, day: Int64) -> Int {
        state.withLock { s in
            var raised = 0
            for row in rows {
                guard let slot = snapshot.campaignSlots[row.campaignID].map(Int.init), slot < s.spend.count else { continue }
                var spend = s.spend[slot]
                spend.roll(to: day)
                guard day == spend.day else { continue }
                let before = (spend.today, spend.total)
                spend.today = max(spend.today, row.todayMicros)
                spend.total = max(spend.total, row.totalMicros)
                if (spend.today, spend.total) != before { raised += 1 }
                s.spend[slot] = spend
            }
            return raised
        }
    }

    /// Takes in the fleet's all-time counters per ad, read from the store, the same way: each
    /// counter becomes the larger of this node's and the store's, so the rule-based rates and
    /// exploration's young list see the impressions and clicks other nodes served.
    public func mergeFleetCounters(_ counters: [AdID: DeliveryCounters], snapshot: CatalogSnapshot) {
        state.withLock { s in
            for (adID, c) in counters {
                guard let slot = snapshot.adSlots[adID].map(Int.init), slot < s.ads.count else { continue }
                var mine = s.ads[slot]
                let wasYoung = mine.impressions < s.youngBelow
                mine.impressions = max(mine.impressions, c.impressions)
                mine.clicks = max(mine.clicks, c.clicks)
                mine.conversions = max(mine.conversions, c.conversions)
                mine.hides = max(mine.hides, c.hides)
                mine.spendMicros = max(mine.spendMicros, c.spendMicros)
                mine.invalidClicks = max(mine.invalidClicks, c.invalidClicks)
                s.ads[slot] = mine
                if wasYoung, mine.impressions >= s.youngBelow { s.removeYoung(Int32(slot)) }
            }
        }
    }

    /// Applies one durably recorded event to its campaign's spend and its ad's counters (its
    /// user's part is `UserCache.apply`; `DecisionService.applyRecorded` does both).
    public func apply(_ event: EventRecord, charged: Micros, snapshot: CatalogSnapshot) {
        let campaignSlot = snapshot.campaignSlots[event.campaignID].map(Int.init)
        let campaign = snapshot.campaignsByID[event.campaignID]
        let advertiser = (event.type == .click || event.type == .conversion) && campaign?.objective == .conversions ? campaign?.advertiserID.rawValue : nil
        let day = event.at.day
        let copies = historyCopies
        state.withLock { s in
            if let campaignSlot, campaignSlot < s.spend.count, charged > 0 {
                s.spend[campaignSlot].roll(to: day)
                // An event of an earlier day applied late counts in the total only.
                if day == s.spend[campaignSlot].day { s.spend[campaignSlot].today += charged }
                s.spend[campaignSlot].total += charged
            }
            guard copies > 1 else {
                s.count(event, adSlot: snapshot.adSlots[event.adID].map(Int.init), advertiser: advertiser)
                return
            }
            // Spend is the copy's own; the history is every copy's.
            let ad = CampaignSlice.original(of: event.adID.rawValue, count: copies)
            let owner = advertiser.map { CampaignSlice.original(of: $0, count: copies) }
            for index in 0..<copies {
                let slice = CampaignSlice(index: index, count: copies)
                s.count(event, adSlot: snapshot.adSlots[AdID(slice.copy(of: ad))].map(Int.init), advertiser: owner.map(slice.copy(of:)))
            }
        }
    }

    /// Keeps only the young ads that are active in `snapshot` (a paused or removed ad gains no
    /// impressions and would stay young for ever), and adds active ones that are young again
    /// in the list (an ad resumed). Called when a snapshot is published.
    /// The lock is held only to read the counters and to swap the list; an ad that comes of
    /// age in between stays listed until the next publish (exploration checks counts anyway).
    func retainYoung(activeIn snapshot: CatalogSnapshot) {
        let (impressions, bound) = state.withLock { s in
            (snapshot.adStateSlots.map { Int($0) < s.ads.count ? s.ads[Int($0)].impressions : 0 }, s.youngBelow)
        }
        var young: [Int32] = []
        for (slot, count) in zip(snapshot.adStateSlots, impressions) where count < bound { young.append(slot) }
        young.sort()
        state.withLock { $0.young = young }
    }

    /// The pacing pass rate of one campaign (1: not throttled).
    public func pace(of campaign: CampaignID, snapshot: CatalogSnapshot) -> Double {
        guard let slot = snapshot.campaignSlots[campaign].map(Int.init) else { return 1 }
        return state.withLock { s in slot < s.spend.count ? Double(s.spend[slot].pace) : 1 }
    }

    /// Spend of one campaign, today and in total (for tests and reports).
    public func spend(of campaign: CampaignID, snapshot: CatalogSnapshot, day: Int64) -> (today: Micros, total: Micros) {
        guard let slot = snapshot.campaignSlots[campaign].map(Int.init) else { return (0, 0) }
        return state.withLock { s in
            slot < s.spend.count ? (s.spend[slot].spentToday(day: day), s.spend[slot].total) : (0, 0)
        }
    }
}
