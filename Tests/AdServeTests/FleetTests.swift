import Domain
import Events
@testable import Serving
import Storage
import TestSupport
import Testing

/// Several serving nodes over one store: what one node writes and spends, the others learn
/// by `syncWithFleet` (the server runs it every `--fleet-sync`); money stays exact meanwhile.
@Suite struct FleetTests {
    struct Node {
        let serving: DecisionService
        let catalog: CatalogService
        let events: EventIngestor

        init(_ database: TemporaryStore, clock: ManualClock, prefix: UInt64, storeTimeout: Duration = .seconds(120)) async throws {
            let store = try await database.open(timeout: storeTimeout)
            serving = try await DecisionService.open(
                store: store, clock: clock, configuration: .payingBids, decisionIDs: DecisionIDGenerator(prefix: prefix))
            catalog = CatalogService(store: store, catalog: serving.catalog, clock: clock)
            events = EventIngestor(serving: serving)
        }

        /// A traffic campaign with one ad, created through this node.
        func campaignWithAd(name: String, bid: Micros, daily: Micros, total: Micros, clock: ManualClock) async throws -> (Campaign, Ad) {
            let (advertiser, _) = try await catalog.createAdvertiser(name: "Acme")
            let campaign = try await catalog.createCampaign(
                Campaign(
                    id: CampaignID(0), advertiserID: advertiser.id, name: name, objective: .traffic, bidMicros: bid, dailyBudgetMicros: daily,
                    totalBudgetMicros: total, createdAt: clock.now()))
            let ad = try await catalog.createAd(
                Ad(id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: "c", company: "Acme",
                   product: "p", description: "d", createdAt: clock.now()))
            return (campaign, ad)
        }

        func decide(_ user: String) async throws -> Decision {
            try await serving.decide(userID: try UserID(validating: user), context: FeedContext(), organicCount: 10)
        }
    }

    @Test(arguments: StoreKind.available) func aBudgetSpentOnOneNodeStopsTheOtherAtItsNextSync(kind: StoreKind) async throws {
        try await kind.withTemporary { database in
        let clock = ManualClock(TestWorld.start)
        let a = try await Node(database, clock: clock, prefix: 1)
        let b = try await Node(database, clock: clock, prefix: 2)

        // A campaign created through node A: node B serves it after its next sync.
        let (campaign, _) = try await a.campaignWithAd(name: "two clicks", bid: 1_000_000, daily: 2_000_000, total: 10_000_000, clock: clock)
        a.serving.refresh()
        #expect(try await b.decide("u0").placements.isEmpty)
        let pulled = try await b.serving.syncWithFleet(counters: true)
        #expect(pulled.catalogRows == 2)
        let servedByB = try #require(try await b.decide("u1").placements.first)

        // Node A spends the daily budget: two clicks at the bid.
        var tokens: [String] = []
        for user in ["u2", "u3"] { tokens.append(try #require(try await a.decide(user).placements.first).impressionToken) }
        clock.advance(milliseconds: 5_000)
        for token in tokens {
            #expect(try await a.events.ingest(IncomingEvent(type: .click, impressionToken: token)).outcome.chargedMicros == 1_000_000)
        }
        #expect(try await a.decide("u4").placements.isEmpty)
        // Node B has not heard yet; a click on its earlier ad is recorded but not charged: the
        // store's budget check is fleet-wide.
        #expect(try await !b.decide("u5").placements.isEmpty)
        let late = try await b.events.ingest(IncomingEvent(type: .click, impressionToken: servedByB.impressionToken))
        #expect(!late.duplicate && late.outcome.chargedMicros == 0)
        // Its next sync stops it.
        let sync = try await b.serving.syncWithFleet(counters: false)
        #expect(sync.campaignsRaised == 1)
        #expect(try await b.decide("u6").placements.isEmpty)
        #expect(b.serving.spend(of: campaign.id).today == 2_000_000)
        // The same click reported to the other node is a duplicate there too.
        #expect(try await a.events.ingest(IncomingEvent(type: .click, impressionToken: servedByB.impressionToken)).duplicate)
        }
    }

    /// A secret rotated through one node reaches the others: a token the rotating node signs is
    /// verified on another node at once (it reads the secret again on a token it cannot verify),
    /// and after a sync the other node signs with the new key too; tokens signed before the
    /// rotation verify everywhere within the grace period.
    @Test(arguments: StoreKind.available) func aSecretRotatedOnOneNodeReachesTheOthers(kind: StoreKind) async throws {
        try await kind.withTemporary { database in
        let clock = ManualClock(TestWorld.start)
        let a = try await Node(database, clock: clock, prefix: 1)
        let b = try await Node(database, clock: clock, prefix: 2)
        _ = try await a.campaignWithAd(name: "rotation", bid: 1_000, daily: 10_000_000, total: 100_000_000, clock: clock)
        a.serving.refresh()
        try await b.serving.syncWithFleet(counters: false)
        let before = try #require(try await b.decide("u1").placements.first).impressionToken
        try await a.serving.rotateTokenSecret()
        // Signed by A with the new key, reported to B, which has not synced since.
        let signedByA = try #require(try await a.decide("u2").placements.first).impressionToken
        #expect(try await !b.events.ingest(IncomingEvent(type: .impression, impressionToken: signedByA)).duplicate)
        // B now signs with the new key: A verifies without reading anything.
        let sync = try await b.serving.syncWithFleet(counters: false)
        #expect(!sync.secretRotated)  // already taken in by the recheck above
        let signedByB = try #require(try await b.decide("u3").placements.first).impressionToken
        #expect(try await !a.events.ingest(IncomingEvent(type: .impression, impressionToken: signedByB)).duplicate)
        // A token from before the rotation still verifies on both nodes.
        #expect(try await !a.events.ingest(IncomingEvent(type: .impression, impressionToken: before)).duplicate)
        #expect(try await b.events.ingest(IncomingEvent(type: .impression, impressionToken: before)).duplicate)
        // A forged token is still refused.
        let forged = String(signedByB.dropLast(2)) + (signedByB.hasSuffix("AA") ? "BB" : "AA")
        await #expect(throws: AdServeError.self) {
            try await b.events.ingest(IncomingEvent(type: .impression, impressionToken: forged))
        }
        }
    }

    /// The rule-based rates and exploration see the other nodes' impressions after a counter sync.
    @Test(arguments: StoreKind.available) func adCountersFromOtherNodesAreTakenIn(kind: StoreKind) async throws {
        try await kind.withTemporary { database in
        let clock = ManualClock(TestWorld.start)
        let a = try await Node(database, clock: clock, prefix: 1)
        let (_, ad) = try await a.campaignWithAd(name: "c", bid: 1_000, daily: 1_000_000_000, total: 1_000_000_000, clock: clock)
        a.serving.refresh()
        let b = try await Node(database, clock: clock, prefix: 2)
        for user in ["u1", "u2", "u3"] {
            let token = try #require(try await a.decide(user).placements.first).impressionToken
            _ = try await a.events.ingest(IncomingEvent(type: .impression, impressionToken: token))
        }
        let slot = try #require(b.serving.catalog.snapshot.adSlots[ad.id])
        #expect(b.serving.delivery.state.withLock { $0.ads[Int(slot)].impressions } == 0)
        try await b.serving.syncWithFleet(counters: true)
        #expect(b.serving.delivery.state.withLock { $0.ads[Int(slot)].impressions } == 3)
        // Taking the same counters in twice changes nothing.
        try await b.serving.syncWithFleet(counters: true)
        #expect(b.serving.delivery.state.withLock { $0.ads[Int(slot)].impressions } == 3)
        }
    }

    /// The database goes away (it refuses connections and drops the ones it had): decisions go
    /// on from what the node holds, an event is refused as unavailable (so it is not
    /// acknowledged, and the feed retries it), and when the database is back the same event is
    /// recorded and charged once.
    @Test(arguments: StoreKind.available.filter { $0 == .postgres })
    func throughADatabaseOutageDecisionsGoOnAndEventsAreRefusedUntilItIsBack(kind: StoreKind) async throws {
        try await kind.withTemporary { database in
            let clock = ManualClock(TestWorld.start)
            let node = try await Node(database, clock: clock, prefix: 1, storeTimeout: .seconds(20))
            _ = try await node.campaignWithAd(name: "c", bid: 1_000_000, daily: 10_000_000, total: 10_000_000, clock: clock)
            node.serving.refresh()
            let token = try #require(try await node.decide("u1").placements.first).impressionToken
            clock.advance(milliseconds: 5_000)

            try await database.setConnectable(false)
            // A user the node has never loaded: decided without a profile, not refused.
            #expect(try await !node.decide("someone-new").placements.isEmpty)
            await #expect(throws: AdServeError.self) {
                do {
                    _ = try await node.events.ingest(IncomingEvent(type: .click, impressionToken: token))
                } catch let error as AdServeError {
                    #expect(error.code == .unavailable)
                    throw error
                }
            }
            await #expect(throws: AdServeError.self) { try await node.serving.syncWithFleet(counters: false) }

            try await database.setConnectable(true)
            // The feed retries until the store answers (the pool reconnects within moments).
            var retried: IngestedEvent?
            for _ in 0..<100 where retried == nil {
                retried = try? await node.events.ingest(IncomingEvent(type: .click, impressionToken: token))
                if retried == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            let recorded = try #require(retried)
            #expect(!recorded.duplicate && recorded.outcome.chargedMicros == 1_000_000)
            #expect(try await node.events.ingest(IncomingEvent(type: .click, impressionToken: token)).duplicate)
        }
    }
}
