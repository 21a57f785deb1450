import Domain
import Serving
import Simulator
import Storage
import TestSupport
import Testing

/// The rule-based order with early termination must pick exactly what scoring every eligible
/// ad picks, on a generated world with delivery history, caps, hides and spent budgets.
@Suite struct RankingIndexTests {
    /// The same rule-based ranker, declared user-dependent: forces the full scan.
    struct FullScan: Ranker {
        let inner = RuleBasedRanker()
        func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
            inner.predict(candidate, user: user, context: context)
        }
    }

    @Test func earlyTerminationPicksWhatAFullScanPicks() async throws {
        let database = TemporaryDatabase()
        let clock = ManualClock(TestWorld.start)
        let store = try database.open()
        let world = World(size: .init(users: 300, ads: 3_000), seed: 11, start: clock.now()).batch
        try await store.importBatch(world)

        var rng = SplitMix64(seed: 5)
        let users = world.users.map(\.id)
        for n in 0..<3_000 {
            let ad = world.ads.randomElement(using: &rng)!
            let user = users.randomElement(using: &rng)!
            let kinds: [EventType] = n % 7 == 0 ? [.impression, .click] : n % 50 == 0 ? [.impression, .hide] : [.impression]
            for type in kinds {
                _ = try await store.record(EventRecord(
                    placementKey: "t\(n)", type: type, userID: user, adID: ad.id, campaignID: ad.campaignID, decisionID: "d\(n)",
                    priceMicros: type == .click ? 40_000_000 : 0, at: clock.now().adding(milliseconds: -Int64(n))))
            }
        }

        let ordered = try await DecisionService.open(store: store, clock: clock)
        let scanned = try await DecisionService.open(store: store, clock: clock, ranker: FullScan())
        var compared = 0
        for user in users + [try UserID(validating: "nobody")] {
            for device in [nil, "ios", "android"] {
                let context = FeedContext(device: device)
                let a = try await ordered.decide(userID: user, context: context, organicCount: 30)
                let b = try await scanned.decide(userID: user, context: context, organicCount: 30)
                #expect(a.placements.map(\.ad.id) == b.placements.map(\.ad.id), "user \(user) device \(device ?? "-")")
                #expect(a.placements.map(\.expectedValueMicros) == b.placements.map(\.expectedValueMicros))
                compared += a.placements.count
            }
        }
        // The comparison covered real pages, not empty ones.
        #expect(compared > users.count * 3 * 4)
    }
}
