import Domain
import Foundation
import Storage
import TestSupport
import Testing

extension StoreKind: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}

/// One contract, every store: each test runs on SQLite and, where a server is given
/// (`ADSERVE_TEST_POSTGRES_URL`; always under CI), on PostgreSQL. Each `open()` of a temporary
/// store is a new connection to it, as another process or serving node would open it.
@Suite struct StoreContractTests {
    func with(_ kind: StoreKind, _ body: (TemporaryStore) async throws -> Void) async throws {
        try await kind.withTemporary(body)
    }

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

    @Test(arguments: StoreKind.available) func catalogRoundTripsEveryField(kind: StoreKind) async throws {
        try await with(kind) { database in
        let store = try await database.open()
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
    }

    @Test(arguments: StoreKind.available) func usersUpsertAndActivityIsNewestFirst(kind: StoreKind) async throws {
        try await with(kind) { database in
        let store = try await database.open()
        let id = try UserID(validating: "u-1")
        try await store.upsertUser(UserProfile(id: id, age: 20, interests: ["a"]))
        try await store.upsertUser(UserProfile(id: id, age: 21, country: "fr", interests: ["b", "c"]))
        #expect(try await store.user(id) == UserProfile(id: id, age: 21, country: "fr", interests: ["b", "c"]))
        try await store.appendActivity(Activity(userID: id, type: .like, topics: ["x"], at: Timestamp(seconds: 1)))
        try await store.appendActivity(Activity(userID: id, type: .view, seconds: 4.5, at: Timestamp(seconds: 2)))
        #expect(try await store.recentActivity(of: id, limit: 10).map(\.type) == [.view, .like])
        }
    }

    @Test(arguments: StoreKind.available) func eventIsRecordedOnceAndChargedWithinBudgets(kind: StoreKind) async throws {
        try await with(kind) { database in
        let store = try await database.open()
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
    }

    /// Nothing acknowledged is lost: a second connection that never saw a clean shutdown of the
    /// first (as after `kill -9`) finds every committed write on disk.
    @Test(arguments: StoreKind.available) func committedWritesAreOnDiskWithoutACleanShutdown(kind: StoreKind) async throws {
        try await with(kind) { database in
        let first = try await database.open()
        let advertiser = try await first.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
        let created = try await first.createCampaign(campaign(advertiser.id))
        _ = try await first.record(try event("t1", .conversion, campaign: created.id, price: 1_000))
        let second = try await database.open()
        #expect(try await second.campaign(created.id) == created)
        #expect(try await second.hasEvent(placementKey: "t1", type: .conversion))
        #expect(try await second.adCounters()[AdID(1)]?.conversions == 1)
        _ = first
        }
    }

    @Test(arguments: StoreKind.available) func secretIsCreatedOnceAndKept(kind: StoreKind) async throws {
        try await with(kind) { database in
            let made = try await database.open().secret(named: "k") { [1, 2, 3] }
            let again = try await database.open().secret(named: "k") { [9, 9, 9] }
            #expect(made == [1, 2, 3])
            #expect(again == [1, 2, 3])
            let store = try await database.open()
            try await store.rotateSecret(named: "k", to: [4, 5], previousValidUntil: Timestamp(seconds: 60))
            #expect(try await database.open().secret(named: "k") { [0] } == [4, 5])
            #expect(try await store.previousSecret(named: "k")?.value == [1, 2, 3])
            #expect(try await store.previousSecret(named: "k")?.validUntil == Timestamp(seconds: 60))
        }
    }

    @Test(arguments: StoreKind.available) func reopeningMigratesOnceAndKeepsData(kind: StoreKind) async throws {
        try await with(kind) { database in
            do {
                let store = try await database.open()
                _ = try await store.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
            }
            let store = try await database.open()
            #expect(try await store.advertiser(AdvertiserID(1))?.name == "Acme")
            // Only campaigns and users make a store non-empty (what `serve --demo` checks).
            #expect(try await store.isEmpty())
        }
    }

    /// Two serving nodes receive the same events at the same moment (a retried request landing
    /// on both): every event is recorded once, charged once, and the campaign is never charged
    /// past its daily budget.
    @Test(arguments: StoreKind.available) func concurrentDuplicatesOnTwoNodesChargeOnceAndNeverPastTheBudget(kind: StoreKind) async throws {
        try await with(kind) { database in
            let (nodeA, nodeB) = (try await database.open(), try await database.open())
            let advertiser = try await nodeA.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
            var c = campaign(advertiser.id)
            c.dailyBudgetMicros = 20_000_000
            let created = try await nodeA.createCampaign(c)
            let events = try (0..<60).map { try event("t\($0)", .click, campaign: created.id, price: 1_000_000) }
            let outcomes = try await withThrowingTaskGroup(of: EventOutcome.self) { group in
                for event in events {
                    group.addTask { try await nodeA.record(event) }
                    group.addTask { try await nodeB.record(event) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.count == 120)
            #expect(outcomes.filter { !$0.duplicate }.count == 60)
            #expect(outcomes.filter(\.duplicate).allSatisfy { $0.chargedMicros == 0 })
            #expect(outcomes.map(\.chargedMicros).reduce(0, +) == 20_000_000)
            let spend = try await nodeB.campaignSpend(day: events[0].at.day)
            #expect(spend == [CampaignSpend(campaignID: created.id, todayMicros: 20_000_000, totalMicros: 20_000_000)])
            #expect(try await nodeA.dailyCounters(campaign: created.id).map(\.counters.clicks) == [60])
        }
    }

    /// What one node writes, another finds by asking for changes after the revision it last
    /// saw, including writes made concurrently on both; nothing is skipped or repeated.
    @Test(arguments: StoreKind.available) func catalogChangesAreACursorThatSkipsNothing(kind: StoreKind) async throws {
        try await with(kind) { database in
            let (nodeA, nodeB) = (try await database.open(), try await database.open())
            let start = try await nodeB.catalogChanges(after: -1)
            #expect(start.campaigns.isEmpty && start.ads.isEmpty)
            let advertiser = try await nodeA.createAdvertiser(name: "Acme", keyHash: "h", at: Timestamp(seconds: 1))
            let first = try await nodeA.createCampaign(campaign(advertiser.id))
            let changes = try await nodeB.catalogChanges(after: start.revision)
            #expect(changes.campaigns == [first] && changes.ads.isEmpty)
            #expect(changes.revision == first.revision)
            #expect(try await nodeB.catalogChanges(after: changes.revision).campaigns.isEmpty)
            // Twenty writes on two nodes at once, read by a third in several pulls meanwhile.
            let reader = try await database.open()
            async let written: [Int64] = withThrowingTaskGroup(of: Int64.self) { group in
                for i in 0..<20 {
                    let node = i.isMultiple(of: 2) ? nodeA : nodeB
                    group.addTask {
                        let ad = try await node.createAd(
                            Ad(id: AdID(0), campaignID: first.id, format: .image, mediaURLs: ["m"], caption: "ad \(i)", company: "Acme", product: "p",
                               description: "d", createdAt: Timestamp(seconds: 2)))
                        return ad.id.rawValue
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var seen: [Int64] = []
            var revision = changes.revision
            for _ in 0..<5 {
                let pulled = try await reader.catalogChanges(after: revision)
                seen += pulled.ads.map(\.id.rawValue)
                revision = pulled.revision
            }
            let ids = try await written
            seen += try await reader.catalogChanges(after: revision).ads.map(\.id.rawValue)
            #expect(seen.sorted() == ids.sorted())
            let updated = try await nodeB.updateCampaign(first.id) { $0.name = "renamed" }
            let last = try await nodeA.catalogChanges(after: revision)
            #expect(last.campaigns == [updated] && last.revision == updated.revision)
            // An ad with a content vector comes compacted for the catalog; a plain read is exact.
            let vector = (0..<Limits.embeddingDimensions).map { Float($0 % 11) / 11 - 0.4 }
            let vectored = try await nodeA.createAd(
                Ad(id: AdID(0), campaignID: first.id, format: .image, mediaURLs: ["m"], caption: "vectored", company: "Acme", product: "p",
                   description: "d", embedding: vector, createdAt: Timestamp(seconds: 3)))
            let pulled = try #require(try await nodeB.catalogChanges(after: last.revision).ads.first { $0.id == vectored.id })
            #expect(pulled.isCompacted && pulled.embedding == QuantizedVector(vector).floats)
            #expect(try await nodeB.ad(vectored.id)?.embedding == vector)
        }
    }

    /// Nodes reading one activity log: an item guarded by the cursor is added once, however
    /// many nodes try; the cursor never moves back.
    @Test(arguments: StoreKind.available) func anActivityGuardedByTheCursorIsAddedOnce(kind: StoreKind) async throws {
        try await with(kind) { database in
            let (nodeA, nodeB) = (try await database.open(), try await database.open())
            let user = try UserID(validating: "u1")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in [nodeA, nodeB, nodeA, nodeB] {
                    group.addTask {
                        try await node.addToActivityVector(
                            of: user, item: [1, 0], topics: ["yoga"], weight: 1, at: Timestamp(seconds: 10), cursor: ("log", 5))
                    }
                }
                try await group.waitForAll()
            }
            let once = try await nodeA.user(user)
            #expect(once?.activityVector == [1, 0])
            #expect(once?.recentTopics["yoga"] == 1)
            #expect(try await nodeB.cursor(named: "log") == 5)
            try await nodeB.setCursor(named: "log", to: 3)
            #expect(try await nodeA.cursor(named: "log") == 5)
            try await nodeB.setCursor(named: "log", to: 9)
            #expect(try await nodeA.cursor(named: "log") == 9)
        }
    }

    @Test(arguments: StoreKind.available) func importedIdsStayAndNewRowsGetHigherOnes(kind: StoreKind) async throws {
        try await with(kind) { database in
            let store = try await database.open()
            var c = campaign(AdvertiserID(5))
            c.id = CampaignID(7)
            let ad = Ad(
                id: AdID(11), campaignID: CampaignID(7), format: .image, mediaURLs: [], caption: "c", company: "Acme", product: "p", description: "d",
                createdAt: Timestamp(seconds: 1))
            let user = UserProfile(
                id: try UserID(validating: "u1"), age: 40, interests: ["golf"], activityVector: [0.25, 0.5], activityVectorAt: Timestamp(seconds: 3),
                recentTopics: ["golf": 2])
            try await store.importBatch(
                ImportBatch(
                    advertisers: [(Advertiser(id: AdvertiserID(5), name: "Five"), keyHash: "k5")], campaigns: [c], ads: [ad], users: [user],
                    activities: [Activity(userID: user.id, type: .like, topics: ["golf"], at: Timestamp(seconds: 2))]))
            #expect(try await !store.isEmpty())
            #expect(try await store.advertiser(keyHash: "k5")?.id == AdvertiserID(5))
            #expect(try await store.campaign(CampaignID(7)) == c)
            #expect(try await store.ad(AdID(11)) == ad)
            #expect(try await store.user(user.id) == user)
            #expect(try await store.activities(after: 0, limit: 10).map(\.activity.type) == [.like])
            let next = try await store.createCampaign(campaign(AdvertiserID(5)))
            #expect(next.id.rawValue > 7)
            let other = try await store.createAdvertiser(name: "Six", keyHash: "k6", at: Timestamp(seconds: 1))
            #expect(other.id.rawValue > 5)
        }
    }

    /// Keys, quotas, what serving loads per user (profile, impressions, lifetime counts, hides)
    /// and at start (per-ad counters), and click counts.
    @Test(arguments: StoreKind.available) func keysAndServingStateReadBack(kind: StoreKind) async throws {
        try await with(kind) { database in
            let store = try await database.open()
            let advertiser = try await store.createAdvertiser(name: "Acme", keyHash: "first", at: Timestamp(seconds: 1))
            let second = try await store.addKey(to: advertiser.id, keyHash: "second", at: Timestamp(seconds: 2))
            let first = try #require(try await store.keys(of: advertiser.id).first)
            #expect(try await store.revokeKey(first.id, of: advertiser.id, at: Timestamp(seconds: 3))?.revokedAt == Timestamp(seconds: 3))
            #expect(try await store.revokeKey(first.id, of: advertiser.id, at: Timestamp(seconds: 4)) == nil)
            #expect(try await store.advertiser(keyHash: "first") == nil)
            #expect(try await store.advertiser(keyHash: "second") == advertiser)
            #expect(try await store.keys(of: advertiser.id).map(\.id) == [first.id, second.id])
            let created = try await store.createCampaign(campaign(advertiser.id))
            let ad = try await store.createAd(
                Ad(id: AdID(0), campaignID: created.id, format: .image, mediaURLs: [], caption: "c", company: "Acme", product: "p", description: "d",
                   createdAt: Timestamp(seconds: 1)))
            #expect(try await store.catalogSize(of: advertiser.id) == (1, 1))
            #expect(try await store.adsPendingEmbedding(limit: 5).map(\.id) == [ad.id])
            #expect(try await store.ads(of: created.id) == [ad])
            let at = Timestamp(milliseconds: 1_780_315_200_000)
            func record(_ key: String, _ type: EventType) async throws {
                _ = try await store.record(
                    EventRecord(placementKey: key, type: type, userID: try UserID(validating: "u1"), adID: ad.id, campaignID: created.id, decisionID: "d",
                                priceMicros: 0, at: at))
            }
            try await record("p1", .impression)
            try await record("p2", .impression)
            try await record("p2", .click)
            try await record("p2", .hideAdvertiser)
            let u1 = try UserID(validating: "u1")
            try await store.upsertUser(UserProfile(id: u1, age: 30, interests: ["running"]))
            let record = try await store.userRecord(u1, impressionsSince: at)
            #expect(record.profile?.interests == ["running"])
            #expect(record.recent == [
                ImpressionRecord(userID: u1, campaignID: created.id, adID: ad.id, at: at), ImpressionRecord(userID: u1, campaignID: created.id, adID: ad.id, at: at),
            ])
            #expect(record.lifetime == [ImpressionCount(userID: u1, campaignID: created.id, adID: ad.id, impressions: 2)])
            #expect(record.hides == [HideRecord(userID: u1, adID: ad.id, advertiserID: advertiser.id, type: .hideAdvertiser)])
            let later = try await store.userRecord(u1, impressionsSince: at.adding(milliseconds: 1))
            #expect(later.recent.isEmpty && later.lifetime.count == 1)
            // Another user's record holds none of it; an unknown user has no profile.
            #expect(try await store.userRecord(try UserID(validating: "u2"), impressionsSince: at) == UserRecord(profile: nil))
            #expect(try await store.clickCount(of: try UserID(validating: "u1"), campaign: created.id, since: at, upTo: 10) == 1)
            #expect(try await store.clickCount(of: try UserID(validating: "u1"), campaign: nil, since: at.adding(milliseconds: 1), upTo: 10) == 0)
            let counters = try await store.adCounters()[ad.id]
            #expect(counters == DeliveryCounters(impressions: 2, clicks: 1, hides: 1))
            #expect(try await store.dailyCounters(ad: ad.id).map(\.counters) == [DeliveryCounters(impressions: 2, clicks: 1, hides: 1)])
        }
    }
}
