import Domain
import Events
import Foundation
import Learning
import Models
import Serving
import Simulator
import Storage
import Synchronization
import Testing
import TestSupport

/// Per-user state lives in the store behind a bounded cache (`UserCache`), and learning hears
/// serving through a bounded buffer (`ObserverBuffer`) that drops learning work, never events.
@Suite struct UserStateTests {
    /// One ad capped at one impression per user per day, and a user who has seen it.
    private func cappedWorld(configuration: ServingConfiguration = ServingConfiguration()) async throws -> (TestWorld, Ad, Decision) {
        let world = try await TestWorld.make(configuration: configuration)
        let campaign = try await world.campaign(try await world.advertiser(), cap: FrequencyCap(impressions: 1, perHours: 24))
        let ad = try await world.ad(campaign)
        _ = try await world.user("u1")
        world.publish()
        let first = try await world.decide("u1")
        let placement = try #require(first.placements.first)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
        return (world, ad, first)
    }

    @Test func aRestartedNodeReadsNoUserAtStartAndLoadsTheirCapsWhenTheyComeBack() async throws {
        let (world, ad, _) = try await cappedWorld()
        #expect(try await world.decide("u1").placements.isEmpty)  // capped here, from the live state
        let restarted = try await world.reopened()
        #expect(restarted.serving.users.counts.entries == 0)
        // The first decision for the user loads their impressions from the store: still capped.
        #expect(try await restarted.decide("u1").placements.isEmpty)
        #expect(restarted.serving.users.counts.entries == 1)
        // Another user is not.
        _ = try await restarted.user("u2")
        #expect(try await restarted.decide("u2").placements.map(\.candidate.adID) == [ad.id])
    }

    @Test func theCacheStaysWithinItsCapacityAndAnEvictedUserIsLoadedAgainWithTheirHides() async throws {
        var configuration = ServingConfiguration()
        configuration.userCacheCapacity = 32
        let world = try await TestWorld.make(configuration: configuration)
        let campaign = try await world.campaign(try await world.advertiser())
        let ad = try await world.ad(campaign)
        world.publish()
        _ = try await world.user("hider")
        let shown = try #require(try await world.decide("hider").placements.first)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .hide, impressionToken: shown.impressionToken))
        #expect(try await world.decide("hider").placements.isEmpty)
        for i in 0..<400 { _ = try await world.decide("visitor\(i)") }
        let counts = world.serving.users.counts
        // 16 shards of 2: never more than 32 users held, and the rest were evicted.
        #expect(counts.entries <= 32)
        #expect(counts.evictions >= 400 + 1 - 32)
        // Evicted or not, the hide holds: it is read back from the store.
        #expect(try await world.decide("hider").placements.isEmpty)
        _ = try await world.user("fresh")
        #expect(try await world.decide("fresh").placements.map(\.candidate.adID) == [ad.id])
    }

    @Test func aLoadThatRacedAnEventForItsUserIsNotCached() throws {
        let cache = UserCache(capacity: 100)
        let user = try UserID(validating: "u1")
        let ticket = cache.ticket(for: user)
        // An impression of this user is recorded while the load reads the store.
        cache.update(user) { _ in }
        #expect(!cache.insert(profile: nil, state: UserState(), loadedAt: 0, for: user, ticket: ticket))
        #expect(cache.lookup(user, now: 0) == nil)
        #expect(cache.insert(profile: nil, state: UserState(), loadedAt: 0, for: user, ticket: cache.ticket(for: user)))
        #expect(cache.lookup(user, now: 0) != nil)
    }

    /// Two nodes over one store: what one records for a user reaches the other once its cached
    /// entry is older than the configured age.
    @Test func capsRecordedByAnotherNodeArriveWithinTheCacheAge() async throws {
        var configuration = ServingConfiguration()
        configuration.userStateMaxAgeMilliseconds = 60_000
        let a = try await TestWorld.make(configuration: configuration)
        let campaign = try await a.campaign(try await a.advertiser(), cap: FrequencyCap(impressions: 1, perHours: 24))
        let ad = try await a.ad(campaign)
        _ = try await a.user("u1")
        a.publish()
        let b = try await TestWorld.make(database: a.database, clock: a.clock, configuration: configuration, decisionPrefix: 99)
        // B caches the user (no impressions yet); A serves and records an impression.
        #expect(try await b.decide("u1").placements.map(\.candidate.adID) == [ad.id])
        let placement = try #require(try await a.decide("u1").placements.first)
        _ = try await EventIngestor(serving: a.serving).ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
        #expect(try await a.decide("u1").placements.isEmpty)
        // B still holds what it loaded; a minute later it loads the user again and sees the cap.
        a.clock.advance(milliseconds: 30_000)
        #expect(try await b.decide("u1").placements.count == 1)
        a.clock.advance(milliseconds: 30_000)
        #expect(try await b.decide("u1").placements.isEmpty)
    }

    /// Records what it hears, in order.
    private final class Recorder: ServingObserver {
        let heard = Mutex<[String]>([])
        func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {
            heard.withLock { $0.append("decided \(decision.decisionID)") }
        }
        func recorded(_ event: EventRecord) { heard.withLock { $0.append("\(event.type.rawValue) \(event.placementKey)") } }
    }

    @Test func aFullBufferDropsTheOldestWorkAndCountsIt() throws {
        let recorder = Recorder()
        let buffer = ObserverBuffer(capacity: 3, observers: [recorder])
        func event(_ key: String) throws -> EventRecord {
            EventRecord(
                placementKey: key, type: .click, userID: try UserID(validating: "u"), adID: AdID(1), campaignID: CampaignID(1), decisionID: "d",
                priceMicros: 0, at: TestWorld.start)
        }
        for key in ["p1", "p2", "p3", "p4", "p5"] { buffer.recorded(try event(key)) }
        // A decision without placements teaches nothing and takes no room.
        buffer.decided(Decision(decisionID: "empty", arm: "default", placements: []), profile: nil, context: FeedContext(), at: TestWorld.start)
        #expect(buffer.counts.waiting == 3)
        #expect(buffer.counts.dropped == 2)
        #expect(recorder.heard.withLock { $0 }.isEmpty)  // nothing reaches the observers until drained
        #expect(buffer.drain() == 3)
        #expect(recorder.heard.withLock { $0 } == ["click p3", "click p4", "click p5"])
        #expect(buffer.counts.waiting == 0)
    }

    /// With a buffer of one, a burst of events loses learning input but no event: every one is
    /// acknowledged, stored and charged.
    @Test func aBurstOfEventsThroughATinyBufferLosesLearningWorkNotEvents() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        let campaign = try await world.campaign(try await world.advertiser(), objective: .awareness, bid: 10_000, daily: 1_000_000_000)
        _ = try await world.ad(campaign)
        world.publish()
        let recorder = Recorder()
        let buffer = ObserverBuffer(capacity: 1, observers: [recorder])
        world.serving.observers.add(buffer)
        let ingestor = EventIngestor(serving: world.serving)
        var tokens: [String] = []
        for i in 0..<20 {
            _ = try await world.user("u\(i)")
            tokens += try await world.decide("u\(i)").placements.map(\.impressionToken)
        }
        for token in tokens {
            let outcome = try await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: token)).outcome
            #expect(!outcome.duplicate)
        }
        #expect(buffer.counts.dropped == 20 + tokens.count - 1)  // decisions and events, all but the newest
        buffer.drain()
        #expect(recorder.heard.withLock { $0 }.count == 1)
        let counters = try await world.store.adCounters().values.reduce(0) { $0 + $1.impressions }
        #expect(counters == Int64(tokens.count))
        // Each impression charged once, at its price (a CPM bid of 10,000 micros: 10 per impression).
        #expect(world.serving.spend(of: campaign.id).today == Int64(tokens.count) * 10)
        #expect(try await world.store.campaignSpend(day: TestWorld.start.day).first?.todayMicros == Int64(tokens.count) * 10)
    }

    /// The join holds reported impressions only: placements decided but never reported wait in a
    /// bounded list, and past it are forgotten and counted.
    @Test func theJoinHoldsReportedImpressionsOnly() {
        let learner = OnlineLearner(click: ModelSlot(), conversion: ModelSlot(), awaitingReports: 5)
        let features = ClickFeatureInput(
            age: nil, gender: nil, country: nil, language: nil, interests: [], adId: 1, campaignId: 1, advertiserId: 1, format: "image",
            objective: "traffic", caption: "c", adImpressions: 0, adClicks: 0, adAgeHours: 0, userCampaignImpressions: 0, device: nil, hour: nil,
            sessionPosition: nil)
        for i in 0..<8 { learner.served(id: "d/\(i)", features: features, at: TestWorld.start) }
        #expect(learner.counts.awaiting == 5)
        #expect(learner.counts.forgotten == 3)
        learner.reported(id: "d/6")
        learner.reported(id: "d/7")
        learner.reported(id: "d/0")  // forgotten: never enters the join
        #expect(learner.counts.joined == 2)
        #expect(learner.counts.awaiting == 3)
        // The slots go round oldest first: d/3, d/4 and d/5 are forgotten, and the slot d/6 left
        // when it was reported is reused without counting.
        for i in 8..<12 { learner.served(id: "d/\(i)", features: features, at: TestWorld.start) }
        #expect(learner.counts.awaiting == 4)
        #expect(learner.counts.forgotten == 6)
        learner.reported(id: "d/5")  // forgotten
        learner.reported(id: "d/11")
        #expect(learner.counts.joined == 3)
        // Once their click windows close, the three reported impressions are the only examples.
        let examples = learner.advance(to: TestWorld.start.adding(milliseconds: 2 * Timestamp.millisecondsPerHour))
        #expect(examples.map(\.id).sorted() == ["d/11", "d/6", "d/7"])
    }

    /// `adserve user-bench` on a small store: the node starts holding no user, the cold pass
    /// loads more users than the cache holds and the cache stays at its bound; a second run
    /// reuses the filled store.
    @Test func theUserBenchmarkKeepsTheCacheWithinItsBound() async throws {
        let database = TemporaryDatabase()
        var benchmark = UserScaleBenchmark(users: 600, ads: 100, history: 2, userCache: 64, coldDecisions: 400, warmDecisions: 50)
        let first = try await benchmark.run(store: try database.open())
        #expect(first.fill_s != nil)
        #expect(first.cached_users <= 64)
        #expect(first.evictions >= 400 - 64)
        #expect(first.cold.requests == 400 && first.warm.requests == 50)
        benchmark.warmDecisions = 0
        let second = try await benchmark.run(store: try database.open())
        #expect(second.fill_s == nil)
    }
}
