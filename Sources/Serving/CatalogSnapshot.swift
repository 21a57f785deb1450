import Domain

/// An immutable, indexed view of every servable campaign and ad: built off the request path,
/// published by swapping one reference, and read by a request from start to end.
///
/// Campaigns and ads are dense arrays (struct-of-arrays for the hot fields); targeting values
/// are interned to integers; campaigns are indexed by country, the most selective dimension,
/// so a decision visits only the campaigns that can match instead of every ad.
public final class CatalogSnapshot: Sendable {
    /// A campaign's values for one targeting dimension: `targetValues[start..<end]`, sorted.
    /// Empty means "anyone".
    struct Values: Sendable {
        var start: Int32
        var end: Int32
        var isEmpty: Bool { start == end }
    }

    /// The hot fields of one active campaign: plain values only (targeting lists live in
    /// `targetValues`), so reading an entry costs no reference counting.
    struct Entry: Sendable {
        var id: CampaignID
        var advertiserID: AdvertiserID
        var objective: Objective
        var bidMicros: Micros
        var dailyBudgetMicros: Micros
        var totalBudgetMicros: Micros
        var startAt: Int64
        var endAt: Int64
        var ageMin: Int16
        var ageMax: Int16
        var countries: Values
        var genders: Values
        var languages: Values
        var interests: Values
        var devices: Values
        /// The campaign's frequency caps: `capRules[capStart..<capEnd]`.
        var capStart: Int32
        var capEnd: Int32
        /// Whether a cap counts impressions for ever (delivery state then keeps lifetime counts).
        var hasLifetimeCap: Bool
        /// Stable index into `DeliveryState`'s per-campaign arrays.
        var stateSlot: Int32
        /// Whether budget pacing spreads its daily budget (`PacingMode.standard`).
        var paced: Bool
        /// When the campaign was created (pacing spreads the budget from then on, that day).
        var createdAt: Int64
        /// The campaign's active ads: `ads[adStart..<adEnd]`.
        var adStart: Int32
        var adEnd: Int32
    }

    let campaigns: [Entry]
    /// One frequency cap of a campaign, as the decision path checks it.
    struct CapRule: Sendable {
        var impressions: Int32
        /// 0: lifetime.
        var windowMilliseconds: Int64
        var perAd: Bool
    }
    let capRules: [CapRule]
    /// Interned targeting values of every campaign, back to back.
    let targetValues: [Int32]
    /// Parallel arrays over active ads, grouped by campaign.
    let adIDs: [AdID]
    let adCampaigns: [Int32]
    let adStateSlots: [Int32]
    let ads: [Ad]
    /// Campaign indices per interned country, and those that target no country.
    let byCountry: [[Int32]]
    let anyCountry: [Int32]
    let vocabulary: [String: Int32]
    /// The interests most active campaigns target (at most `maxTargetedInterests`, by campaigns
    /// then name), sorted: the segments of the value order (`RankingIndex.interestOrders`),
    /// each of which costs a ranking of every ad.
    public let targetedInterests: [String]
    public static let maxTargetedInterests = 32

    /// Every campaign and ad known, active or not, by id (for events, reports and auth).
    public let campaignsByID: [CampaignID: Campaign]
    public let adsByID: [AdID: Ad]
    let campaignSlots: [CampaignID: Int32]
    /// Index in `campaigns` of each active campaign.
    let campaignIndices: [CampaignID: Int32]
    let adSlots: [AdID: Int32]
    /// Index in `ads` of the active ad at each ad state slot, -1 where none: how a key of the
    /// candidate index (a slot, stable across snapshots) finds its ad in this snapshot.
    let adIndexBySlot: [Int32]
    /// Index in `campaigns` of the active campaign at each campaign state slot, -1 where none.
    let campaignIndexBySlot: [Int32]

    /// The catalog version this snapshot was built from.
    public let version: UInt64

    public var activeAdCount: Int { adIDs.count }
    /// One more than the highest state slot of an active ad: every active ad's `RetrievalKey.adSlot` is below it.
    public var adSlotCount: Int { adIndexBySlot.count }
    public var activeCampaignCount: Int { campaigns.count }

    init(campaigns allCampaigns: [CampaignID: Campaign], ads allAds: [AdID: Ad], campaignSlots: [CampaignID: Int32], adSlots: [AdID: Int32], version: UInt64 = 0) {
        self.version = version
        var vocabulary: [String: Int32] = [:]
        func intern(_ value: String) -> Int32 {
            if let id = vocabulary[value] { return id }
            let id = Int32(vocabulary.count)
            vocabulary[value] = id
            return id
        }
        var targetValues: [Int32] = []
        var targetingCampaigns: [String: Int] = [:]
        func internAll(_ values: [String]) -> Values {
            let start = Int32(targetValues.count)
            targetValues += values.map(intern).sorted()
            return Values(start: start, end: Int32(targetValues.count))
        }

        var adsByCampaign: [CampaignID: [Ad]] = [:]
        for ad in allAds.values where ad.status == .active {
            adsByCampaign[ad.campaignID, default: []].append(ad)
        }

        var entries: [Entry] = []
        var adIDs: [AdID] = []
        var adCampaigns: [Int32] = []
        var adStateSlots: [Int32] = []
        var ads: [Ad] = []
        var countryLists: [Int32: [Int32]] = [:]
        var anyCountry: [Int32] = []
        var capRules: [CapRule] = []
        for campaign in allCampaigns.values.sorted(by: { $0.id < $1.id }) where campaign.status == .active {
            guard let campaignAds = adsByCampaign[campaign.id], let slot = campaignSlots[campaign.id] else { continue }
            let servable = campaignAds.compactMap { ad in adSlots[ad.id].map { (ad, $0) } }.sorted { $0.0.id < $1.0.id }
            guard !servable.isEmpty else { continue }
            let targeting = campaign.targeting
            for interest in Set(targeting.interests) { targetingCampaigns[interest, default: 0] += 1 }
            let index = Int32(entries.count)
            let start = Int32(adIDs.count)
            for (ad, adSlot) in servable {
                adIDs.append(ad.id)
                adCampaigns.append(index)
                adStateSlots.append(adSlot)
                ads.append(ad)
            }
            let capStart = Int32(capRules.count)
            for cap in campaign.frequencyCaps {
                capRules.append(CapRule(
                    impressions: Int32(clamping: cap.impressions),
                    windowMilliseconds: cap.perHours.map { Int64(min($0, Limits.maxCapHours)) * Timestamp.millisecondsPerHour } ?? 0,
                    perAd: cap.per == .ad))
            }
            entries.append(
                Entry(
                    id: campaign.id, advertiserID: campaign.advertiserID, objective: campaign.objective, bidMicros: campaign.bidMicros,
                    dailyBudgetMicros: campaign.dailyBudgetMicros, totalBudgetMicros: campaign.totalBudgetMicros,
                    startAt: campaign.startAt?.milliseconds ?? .min, endAt: campaign.endAt?.milliseconds ?? .max,
                    ageMin: Int16(clamping: targeting.ageMin ?? -1), ageMax: Int16(clamping: targeting.ageMax ?? -1),
                    countries: internAll(targeting.countries), genders: internAll(targeting.genders), languages: internAll(targeting.languages),
                    interests: internAll(targeting.interests), devices: internAll(targeting.devices),
                    capStart: capStart, capEnd: Int32(capRules.count), hasLifetimeCap: campaign.hasLifetimeCap,
                    stateSlot: slot, paced: campaign.pacing == .standard, createdAt: campaign.createdAt.milliseconds, adStart: start,
                    adEnd: Int32(adIDs.count)))
            if targeting.countries.isEmpty {
                anyCountry.append(index)
            } else {
                for country in targeting.countries { countryLists[intern(country), default: []].append(index) }
            }
        }
        var byCountry = [[Int32]](repeating: [], count: vocabulary.count)
        for (country, list) in countryLists { byCountry[Int(country)] = list }

        self.campaigns = entries
        self.capRules = capRules
        self.campaignIndices = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($0.element.id, Int32($0.offset)) })
        self.targetValues = targetValues
        self.adIDs = adIDs
        self.adCampaigns = adCampaigns
        self.adStateSlots = adStateSlots
        self.ads = ads
        self.byCountry = byCountry
        self.anyCountry = anyCountry
        self.vocabulary = vocabulary
        self.targetedInterests = targetingCampaigns.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
            .prefix(Self.maxTargetedInterests).map(\.key).sorted()
        self.campaignsByID = allCampaigns
        self.adsByID = allAds
        self.campaignSlots = campaignSlots
        self.adSlots = adSlots
        var bySlot = [Int32](repeating: -1, count: Int(adStateSlots.max() ?? -1) + 1)
        for (index, slot) in adStateSlots.enumerated() { bySlot[Int(slot)] = Int32(index) }
        self.adIndexBySlot = bySlot
        var campaignsBySlot = [Int32](repeating: -1, count: Int(entries.map(\.stateSlot).max() ?? -1) + 1)
        for (index, entry) in entries.enumerated() { campaignsBySlot[Int(entry.stateSlot)] = Int32(index) }
        self.campaignIndexBySlot = campaignsBySlot
    }

    /// The active ad at a state slot, if any.
    @inline(__always)
    func adIndex(slot: Int64) -> Int32? {
        guard slot >= 0, slot < adIndexBySlot.count else { return nil }
        let index = adIndexBySlot[Int(slot)]
        return index >= 0 ? index : nil
    }

    /// Loads the lines of campaign `index`'s entry (`CacheTouch`), which judging it reads first.
    @inline(__always)
    func touchCampaign(_ index: Int32) -> UInt64 {
        campaigns.withUnsafeBufferPointer { entries in
            CacheTouch.lines(UnsafeRawPointer(entries.baseAddress! + Int(index)), bytes: MemoryLayout<Entry>.stride)
        }
    }

    /// The active campaign at a campaign state slot, if any.
    @inline(__always)
    func campaignIndex(slot: Int) -> Int32? {
        guard slot >= 0, slot < campaignIndexBySlot.count else { return nil }
        let index = campaignIndexBySlot[slot]
        return index >= 0 ? index : nil
    }

    /// One active ad as the candidate stage indexes it: its key (`RetrievalKey`, stable while
    /// the ad exists) and what its vector is made from.
    public struct ActiveAd: Sendable {
        public var key: RetrievalKey
        public var ad: Ad
        public var advertiserID: AdvertiserID
        public var objective: Objective
    }

    /// Calls `body` with every active ad of an active campaign, in index order.
    public func forEachActiveAd(_ body: (ActiveAd) throws -> Void) rethrows {
        for (index, ad) in ads.enumerated() {
            let entry = campaigns[Int(adCampaigns[index])]
            try body(ActiveAd(key: retrievalKey(Int32(index)), ad: ad, advertiserID: entry.advertiserID, objective: entry.objective))
        }
    }

    /// How a retriever names the ad at `adIndex`: its state slot and its campaign's.
    func retrievalKey(_ adIndex: Int32) -> RetrievalKey {
        RetrievalKey(adSlot: adStateSlots[Int(adIndex)], campaignSlot: campaigns[Int(adCampaigns[Int(adIndex)])].stateSlot)
    }

    /// A user's attributes, interned against this snapshot's vocabulary once per request.
    struct Audience {
        var age: Int16
        var gender: Int32
        var country: Int32
        var language: Int32
        var device: Int32
        var interests: [Int32]
    }

    func audience(for profile: UserProfile?, device: String?) -> Audience {
        func id(_ value: String?) -> Int32 { value.flatMap { vocabulary[$0.lowercased()] } ?? -1 }
        return Audience(
            age: Int16(clamping: profile?.age ?? -1), gender: id(profile?.gender), country: id(profile?.country),
            language: id(profile?.language), device: id(device),
            interests: (profile?.interests ?? []).compactMap { vocabulary[$0.lowercased()] }.sorted())
    }

    /// What a user's frequency caps shut out now: the indices of campaigns at a campaign-wide
    /// cap and the ids of ads at a per-ad cap, from the user's recent impressions (windowed caps)
    /// and lifetime counts (lifetime caps). A few impressions per user, so cheap.
    func capped(_ user: UserState?, now: Int64) -> (campaigns: [Int32], ads: Set<Int64>) {
        guard let user, !user.recent.isEmpty || !user.lifetimeCampaigns.isEmpty else { return ([], []) }
        // One pass over the recent impressions, grouped by capped campaign.
        var recentByCampaign: [Int64: [(ad: Int64, at: Int64)]] = [:]
        for impression in user.recent {
            guard let index = campaignIndices[CampaignID(impression.campaign)], campaigns[Int(index)].capStart < campaigns[Int(index)].capEnd else { continue }
            recentByCampaign[impression.campaign, default: []].append((impression.ad, impression.at))
        }
        var seen = Set(recentByCampaign.keys)
        seen.formUnion(user.lifetimeCampaigns.keys)
        var campaignsOut: [Int32] = []
        var adsOut: Set<Int64> = []
        for campaign in seen {
            guard let index = campaignIndices[CampaignID(campaign)] else { continue }
            let entry = campaigns[Int(index)]
            guard entry.capStart < entry.capEnd else { continue }
            let recent = recentByCampaign[campaign] ?? []
            for rule in capRules[Int(entry.capStart)..<Int(entry.capEnd)] {
                let limit = Int(rule.impressions)
                if rule.windowMilliseconds == 0 {
                    if rule.perAd {
                        for ad in entry.adStart..<entry.adEnd where user.lifetimeAds[adIDs[Int(ad)].rawValue, default: 0] >= limit {
                            adsOut.insert(adIDs[Int(ad)].rawValue)
                        }
                    } else if user.lifetimeCampaigns[campaign, default: 0] >= limit {
                        campaignsOut.append(index)
                    }
                    continue
                }
                let since = now - rule.windowMilliseconds
                let inWindow = recent.filter { $0.at > since }
                if rule.perAd {
                    var perAd: [Int64: Int] = [:]
                    for impression in inWindow { perAd[impression.ad, default: 0] += 1 }
                    for (ad, count) in perAd where count >= limit { adsOut.insert(ad) }
                } else if inWindow.count >= limit {
                    campaignsOut.append(index)
                }
            }
        }
        return (Array(Set(campaignsOut)).sorted(), adsOut)
    }

    /// Calls `body` with the index of every campaign whose schedule and targeting admit this
    /// audience now. Visits only the campaigns of the user's country and those of no country.
    func forEachMatchingCampaign(_ audience: Audience, at now: Int64, _ body: (Int32) -> Void) {
        func visit(_ list: [Int32]) {
            for index in list where matches(index, audience, now) { body(index) }
        }
        if audience.country >= 0, Int(audience.country) < byCountry.count { visit(byCountry[Int(audience.country)]) }
        visit(anyCountry)
    }

    /// Whether a campaign's schedule and targeting admit this audience now.
    @inline(__always)
    func matches(_ index: Int32, _ a: Audience, _ now: Int64) -> Bool {
        let c = campaigns[Int(index)]
        if !c.countries.isEmpty && !contains(c.countries, a.country) { return false }
        guard now >= c.startAt, now < c.endAt else { return false }
        if c.ageMin >= 0 && (a.age < 0 || a.age < c.ageMin) { return false }
        if c.ageMax >= 0 && (a.age < 0 || a.age > c.ageMax) { return false }
        if !c.genders.isEmpty && !contains(c.genders, a.gender) { return false }
        if !c.languages.isEmpty && !contains(c.languages, a.language) { return false }
        if !c.devices.isEmpty && !contains(c.devices, a.device) { return false }
        if !c.interests.isEmpty && !intersects(c.interests, a.interests) { return false }
        return true
    }

    @inline(__always)
    private func contains(_ values: Values, _ value: Int32) -> Bool {
        var i = Int(values.start)
        while i < Int(values.end) {
            if targetValues[i] == value { return true }
            i += 1
        }
        return false
    }

    /// Whether a campaign's sorted values and the user's sorted values share one.
    private func intersects(_ values: Values, _ user: [Int32]) -> Bool {
        var i = Int(values.start)
        var j = 0
        while i < Int(values.end) && j < user.count {
            if targetValues[i] == user[j] { return true }
            if targetValues[i] < user[j] { i += 1 } else { j += 1 }
        }
        return false
    }
}
