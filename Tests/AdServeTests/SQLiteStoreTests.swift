import Domain
import SQLiteStorage
import Storage
import TestSupport
import Testing

@Suite struct SQLiteStoreTests {
    let database = TemporaryDatabase()

    func campaign(_ advertiser: AdvertiserID) -> Campaign {
        Campaign(
            id: CampaignID(0), advertiserID: advertiser, name: "Spring", objective: .conversions, bidMicros: 2_000_000,
            dailyBudgetMicros: 10_000_000, totalBudgetMicros: 25_000_000, startAt: Timestamp(seconds: 1_000), endAt: Timestamp(seconds: 2_000),
            targeting: Targeting(ageMin: 18, ageMax: 35, genders: ["female"], countries: ["us", "ca"], languages: ["en"], interests: ["yoga"], devices: ["ios"]),
            frequencyCap: FrequencyCap(impressions: 3, perHours: 24), status: .paused, createdAt: Timestamp(seconds: 500))
    }

    func event(_ token: String, _ type: EventType, campaign: CampaignID, price: Micros, at: Timestamp = Timestamp(milliseconds: 1_780_315_200_000)) throws -> EventRecord {
        EventRecord(
            placementKey: token, type: type, userID: try UserID(validating: "u1"), adID: AdID(1), campaignID: campaign, decisionID: "d",
            priceMicros: price, at: at)
    }

    @Test func catalogRoundTripsEveryField() async throws {
        let store = try database.open()
        let advertiser = try await store.createAdvertiser(name: "Acme", keyHash: "h1", at: Timestamp(seconds: 1))
        #expect(try await store.advertiser(keyHash: "h1") == advertiser)
        #expect(try await store.advertiser(keyHash: "nope") == nil)
        let created = try await store.createCampaign(campaign(advertiser.id))
        #expect(created.id.rawValue > 0)
        #expect(try await store.campaign(created.id) == created)
        let ad = try await store.createAd(
            Ad(id: AdID(0), campaignID: created.id, format: .video, mediaURLs: ["a", "b"], caption: "c", company: "Acme", product: "p",
               description: "d", embedding: [0.5, -1.25, 3], status: .active, createdAt: Timestamp(seconds: 9)))
        #expect(try await store.ad(ad.id) == ad)
        let changed = try await store.updateCampaign(created.id) { campaign in
            campaign.status = .active
            campaign.frequencyCap = nil
        }
        #expect(changed.status == .active && changed.frequencyCap == nil && changed.name == created.name)
        #expect(changed.revision > ad.revision && ad.revision > created.revision)
        #expect(try await store.campaigns(of: advertiser.id) == [changed])
        // A change that throws writes nothing.
        await #expect(throws: AdServeError.self) {
            try await store.updateCampaign(created.id) { campaign in
                campaign.name = "never stored"
                throw AdServeError.invalid("name", "refused")
            }
        }
        #expect(try await store.campaign(created.id) == changed)
        await #expect(throws: AdServeError.notFound("campaign 999")) { try await store.updateCampaign(CampaignID(999)) { _ in } }
        #expect(try await store.allAds() == [ad])
    }

    @Test func usersUpsertAndActivityIsNewestFirst() async throws {
        let store = try database.open()
        let id = try UserID(validating: "u-1")
        try await store.upsertUser(UserProfile(id: id, age: 20, interests: ["a"]))
        try await store.upsertUser(UserProfile(id: id, age: 21, country: "fr", interests: ["b", "c"]))
        #expect(try await store.user(id) == UserProfile(id: id, age: 21, country: "fr", interests: ["b", "c"]))
        try await store.appendActivity(Activity(userID: id, type: .like, topics: ["x"], at: Timestamp(seconds: 1)))
        try await store.appendActivity(Activity(userID: id, type: .view, seconds: 4.5, at: Timestamp(seconds: 2)))
        #expect(try await store.recentActivity(of: id, limit: 10).map(\.type) == [.view, .like])
    }

    @Test func eventIsRecordedOnceAndChargedWithinBudgets() async throws {
        let store = try database.open()
        let advertiser = try await store.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
        var c = campaign(advertiser.id)
        c.dailyBudgetMicros = 5_000_000
        c.totalBudgetMicros = 7_000_000
        let created = try await store.createCampaign(c)
        #expect(try await store.record(try event("t1", .conversion, campaign: created.id, price: 2_000_000)) == EventOutcome(duplicate: false, chargedMicros: 2_000_000))
        #expect(try await store.record(try event("t1", .conversion, campaign: created.id, price: 2_000_000)) == EventOutcome(duplicate: true, chargedMicros: 0))
        #expect(try await store.record(try event("t2", .conversion, campaign: created.id, price: 2_000_000)).chargedMicros == 2_000_000)
        // Daily budget 5: only 1 left today.
        #expect(try await store.record(try event("t3", .conversion, campaign: created.id, price: 2_000_000)).chargedMicros == 1_000_000)
        #expect(try await store.record(try event("t4", .conversion, campaign: created.id, price: 2_000_000)).chargedMicros == 0)
        // Next day: the total budget (7) leaves 2.
        let tomorrow = Timestamp(milliseconds: 1_780_315_200_000 + Timestamp.millisecondsPerDay)
        #expect(try await store.record(try event("t5", .conversion, campaign: created.id, price: 3_000_000, at: tomorrow)).chargedMicros == 2_000_000)
        let days = try await store.dailyCounters(campaign: created.id)
        #expect(days.map(\.counters.spendMicros) == [5_000_000, 2_000_000])
        #expect(days.map(\.counters.conversions) == [4, 1])
        #expect(try await store.campaignSpend(day: tomorrow.day) == [CampaignSpend(campaignID: created.id, todayMicros: 2_000_000, totalMicros: 7_000_000)])
        #expect(try await store.hasEvent(placementKey: "t1", type: .conversion))
        #expect(try await !store.hasEvent(placementKey: "t1", type: .click))
    }

    /// Nothing acknowledged is lost: a second connection that never saw a clean shutdown of the
    /// first (as after `kill -9`) finds every committed write on disk.
    @Test func committedWritesAreOnDiskWithoutACleanShutdown() async throws {
        let first = try database.open()
        let advertiser = try await first.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
        let created = try await first.createCampaign(campaign(advertiser.id))
        _ = try await first.record(try event("t1", .conversion, campaign: created.id, price: 1_000))
        let second = try database.open()
        #expect(try await second.campaign(created.id) == created)
        #expect(try await second.hasEvent(placementKey: "t1", type: .conversion))
        #expect(try await second.adCounters()[AdID(1)]?.conversions == 1)
        _ = first
    }

    @Test func secretIsCreatedOnceAndKept() async throws {
        let made = try await database.open().secret(named: "k") { [1, 2, 3] }
        let again = try await database.open().secret(named: "k") { [9, 9, 9] }
        #expect(made == [1, 2, 3])
        #expect(again == [1, 2, 3])
    }

    @Test func reopeningMigratesOnceAndKeepsData() async throws {
        do {
            let store = try database.open()
            _ = try await store.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
        }
        let store = try database.open()
        #expect(try await store.advertiser(AdvertiserID(1))?.name == "Acme")
        // Only campaigns and users make a store non-empty (what `serve --demo` checks).
        #expect(try await store.isEmpty())
    }
}
