import Domain
import Storage
import Synchronization

/// What has been delivered, live: spend per campaign, counters per ad, and per user the recent
/// impressions (frequency caps) and hidden ads. Rebuilt from the store at start, then kept up to
/// date by event ingestion after each durable write. Campaigns and ads are dense arrays indexed
/// by the stable slots `CatalogPublisher` assigns, so the decision path reads them without hashing.
public final class DeliveryState: Sendable {
    struct CampaignSpendState {
        var day: Int64 = .min
        var today: Micros = 0
        var total: Micros = 0

        func spentToday(day now: Int64) -> Micros { day == now ? today : 0 }
    }

    struct UserState {
        /// (campaign id, time in ms) of recent impressions, oldest first.
        var recent: [(campaign: Int64, at: Int64)] = []
        var hiddenAds: Set<Int64> = []
    }

    struct State {
        var spend: [CampaignSpendState] = []
        /// Per ad state slot: all-time impressions, clicks and conversions (the rule-based rates).
        var ads: [DeliveryCounters] = []
        var users: [UserID: UserState] = [:]
    }

    let state = Mutex(State())

    /// How long impressions are remembered for frequency caps: the longest cap window.
    static let capMemoryMilliseconds = Int64(Limits.maxCapHours) * Timestamp.millisecondsPerHour

    public init() {}

    func ensureCapacity(campaigns: Int, ads: Int) {
        state.withLock { s in
            if s.spend.count < campaigns { s.spend += Array(repeating: CampaignSpendState(), count: campaigns - s.spend.count) }
            if s.ads.count < ads { s.ads += Array(repeating: DeliveryCounters(), count: ads - s.ads.count) }
        }
    }

    /// Rebuilds spend, ad counters, recent impressions and hides from the store.
    public func restore(from store: some AdStore, catalog: CatalogPublisher, now: Timestamp) async throws {
        let snapshot = catalog.snapshot
        let spend = try await store.campaignSpend(day: now.day)
        let counters = try await store.adCounters()
        let impressions = try await store.impressions(since: now.adding(milliseconds: -Self.capMemoryMilliseconds))
        let hides = try await store.hides()
        ensureCapacity(campaigns: snapshot.campaignSlots.count, ads: snapshot.adSlots.count)
        state.withLock { s in
            for row in spend {
                guard let slot = snapshot.campaignSlots[row.campaignID] else { continue }
                s.spend[Int(slot)] = CampaignSpendState(day: now.day, today: row.todayMicros, total: row.totalMicros)
            }
            for (adID, c) in counters {
                guard let slot = snapshot.adSlots[adID] else { continue }
                s.ads[Int(slot)] = c
            }
            for impression in impressions {
                s.users[impression.userID, default: UserState()].recent.append((impression.campaignID.rawValue, impression.at.milliseconds))
            }
            for hide in hides {
                s.users[hide.userID, default: UserState()].hiddenAds.insert(hide.adID.rawValue)
            }
        }
    }

    /// Applies one durably recorded event.
    public func apply(_ event: EventRecord, charged: Micros, snapshot: CatalogSnapshot) {
        let campaignSlot = snapshot.campaignSlots[event.campaignID].map(Int.init)
        let adSlot = snapshot.adSlots[event.adID].map(Int.init)
        let day = event.at.day
        state.withLock { s in
            if let campaignSlot, campaignSlot < s.spend.count, charged > 0 {
                if day > s.spend[campaignSlot].day {
                    s.spend[campaignSlot].today = 0
                    s.spend[campaignSlot].day = day
                }
                // An event of an earlier day applied late counts in the total only.
                if day == s.spend[campaignSlot].day { s.spend[campaignSlot].today += charged }
                s.spend[campaignSlot].total += charged
            }
            switch event.type {
            case .impression:
                if let adSlot, adSlot < s.ads.count { s.ads[adSlot].impressions += 1 }
                let horizon = event.at.milliseconds - Self.capMemoryMilliseconds
                var user = s.users[event.userID, default: UserState()]
                user.recent.removeAll { $0.at < horizon }
                user.recent.append((event.campaignID.rawValue, event.at.milliseconds))
                s.users[event.userID] = user
            case .click:
                if let adSlot, adSlot < s.ads.count {
                    if event.invalidReason == nil { s.ads[adSlot].clicks += 1 } else { s.ads[adSlot].invalidClicks += 1 }
                }
            case .conversion:
                if let adSlot, adSlot < s.ads.count { s.ads[adSlot].conversions += 1 }
            case .hide:
                s.users[event.userID, default: UserState()].hiddenAds.insert(event.adID.rawValue)
            }
        }
    }

    /// Spend of one campaign, today and in total (for tests and reports).
    public func spend(of campaign: CampaignID, snapshot: CatalogSnapshot, day: Int64) -> (today: Micros, total: Micros) {
        guard let slot = snapshot.campaignSlots[campaign].map(Int.init) else { return (0, 0) }
        return state.withLock { s in
            slot < s.spend.count ? (s.spend[slot].spentToday(day: day), s.spend[slot].total) : (0, 0)
        }
    }
}
