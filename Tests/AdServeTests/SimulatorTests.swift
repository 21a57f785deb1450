import Domain
import Foundation
import SQLiteStorage
import Simulator
import Synchronization
import TestSupport
import Testing
import Training

@Suite struct SimulatorTests {
    static func configuration(seed: UInt64 = 3, days: Int = 2) -> Simulation.Configuration {
        var c = Simulation.Configuration()
        c.size = World.Size(users: 1_200, ads: 300)
        c.days = days
        c.seed = seed
        return c
    }

    static func json(_ report: SimulationReport) throws -> Data {
        try JSONFormat.encoder().encode(report)
    }

    @Test func sameSeedSameReportByteForByte() async throws {
        let a = try await Simulation(configuration: Self.configuration()).run()
        let b = try await Simulation(configuration: Self.configuration()).run()
        #expect(try Self.json(a.report) == Self.json(b.report))
        let other = try await Simulation(configuration: Self.configuration(seed: 4)).run()
        #expect(try Self.json(other.report) != Self.json(a.report))
    }

    @Test func spendIsConservedAndNoBudgetIsPassed() async throws {
        let outcome = try await Simulation(configuration: Self.configuration(days: 3)).run()
        let armRevenue = outcome.report.arms.values.reduce(Int64(0)) { $0 + $1.revenueMicros }
        // What the store holds as spend is exactly what accepted events were charged, and the
        // report's revenue adds up to it.
        #expect(outcome.storeSpendMicros == outcome.chargedMicros)
        #expect(armRevenue == outcome.chargedMicros)
        #expect(outcome.chargedMicros > 0)
        #expect(outcome.maxOverspendMicros <= 0)
        #expect(outcome.report.budgets.allSatisfy { $0.maxOverspendMicros <= 0 })
        // Some campaigns did run out of daily budget, so the cap was exercised.
        #expect(outcome.report.budgets.contains { $0.shareSpent90pct > 0 })
    }

    /// The random arm's observed CTR is an unbiased estimate of the world's expected CTR for
    /// random ads: the world's truth must fall inside the arm's 95% interval.
    @Test func randomArmCTRMatchesTheWorldsExpectation() async throws {
        var c = Self.configuration(seed: 9, days: 2)
        c.arms = ["random"]
        let report = try await Simulation(configuration: c).run().report
        let random = try #require(report.arms["random"])
        #expect(random.impressions > 5_000)
        #expect(random.ci95.ctr[0] <= random.expectedCtr && random.expectedCtr <= random.ci95.ctr[1])
        #expect(random.ci95.ctr[0] < random.ctr && random.ctr < random.ci95.ctr[1])
    }

    @Test func positionBiasIsVisibleInTheLogs() async throws {
        var c = Self.configuration(seed: 5, days: 2)
        c.arms = ["random"]
        let logs = LineCollector()
        _ = try await Simulation(configuration: c).run(log: { logs.add($0) })
        let impressions = logs.lines.filter { $0.kind == .impression }
        let clicked = Set(logs.lines.filter { $0.kind == .click }.map(\.impressionId))
        #expect(!impressions.isEmpty)
        #expect(impressions.allSatisfy { ($0.propensity ?? 0) > 0 && ($0.propensity ?? 2) <= 1 && $0.arm == "random" })
        func ctr(_ position: Int) -> Double {
            let here = impressions.filter { $0.impressionId.hasSuffix("/\(position)") }
            return Double(here.filter { clicked.contains($0.impressionId) }.count) / Double(max(1, here.count))
        }
        // Random ads at the first slot (after post 3) are clicked clearly more than at the second (after 7).
        #expect(ctr(3) > ctr(7) * 1.15, "CTR after post 3: \(ctr(3)), after post 7: \(ctr(7))")
    }

    @Test func baselineEarnsMoreThanRandom() async throws {
        let report = try await Simulation(configuration: Self.configuration(seed: 8, days: 2)).run().report
        let baseline = try #require(report.arms["baseline"])
        let random = try #require(report.arms["random"])
        #expect(baseline.revenueMicros > random.revenueMicros)
        #expect(baseline.users + random.users == 1_200)
    }

    /// The learned arm runs end to end beside the control: it serves, learns online, retrains
    /// daily behind the gate (and says what the gate decided), and money still adds up.
    @Test func mlArmRetrainsBehindTheGateAndMoneyAddsUp() async throws {
        var c = Self.configuration(seed: 6, days: 3)
        c.size = World.Size(users: 3_000, ads: 300)
        c.arms = ["baseline", "ml"]
        c.warmUpClicks = .max  // daily retrains only
        let outcome = try await Simulation(configuration: c).run()
        let ml = try #require(outcome.report.arms["ml"])
        #expect(ml.impressions > 5_000)
        #expect(outcome.storeSpendMicros == outcome.chargedMicros)
        let notes = outcome.notes["ml"] ?? []
        #expect(notes.count == 2, "\(notes)")  // days 2 and 3: day 1 has no earlier day to train on
        #expect(notes.allSatisfy { $0.contains("judged on") && ($0.contains("— adopted") || $0.contains("— not adopted")) }, "\(notes)")
    }

    /// Until a retrain is adopted, every `warmUpClicks` labelled clicks close a period: the
    /// first retrain is judged within day 1, each on a later period than the last, and once
    /// one is adopted only days' ends retrain.
    @Test func mlArmRetrainsWithinTheFirstDayUntilAdopted() async throws {
        var c = Self.configuration(seed: 6, days: 2)
        c.size = World.Size(users: 2_000, ads: 300)
        c.arms = ["ml"]
        c.warmUpClicks = 50
        let outcome = try await Simulation(configuration: c).run()
        let notes = outcome.notes["ml"] ?? []
        let warmUp = notes.filter { $0.hasPrefix("until 2026-06-0") }
        #expect(notes.first?.hasPrefix("until 2026-06-01T") == true, "\(notes)")
        #expect(notes.allSatisfy { $0.hasPrefix("until 2026-06-0") || $0.hasPrefix("day ") }, "\(notes)")
        // Each trains on everything before its period, so later ones train on more.
        let trained = try warmUp.map { note in try #require(Int(note.split(separator: "trained on ")[1].prefix { $0.isNumber })) }
        #expect(zip(trained, trained.dropFirst()).allSatisfy { $0 < $1 }, "\(notes)")
        if let adopted = notes.firstIndex(where: { $0.contains("— adopted") }) {
            #expect(notes[(adopted + 1)...].allSatisfy { $0.hasPrefix("day ") }, "\(notes)")
        }
    }

    /// `ml+candidates` retrains a two-tower model beside its ranker, and once one passes its
    /// gate (recall@K of the held-out clicks above the most-clicked ads') the decisions go
    /// through the candidate stage: the audit finds the stage's recall of the full ranker's
    /// choices.
    @Test func candidatesArmServesThroughTheStageOnceATwoTowerPasses() async throws {
        var c = Self.configuration(seed: 6, days: 2)
        c.size = World.Size(users: 1_000, ads: 200)
        c.arms = ["ml+candidates"]
        c.warmUpClicks = 50
        c.candidateStage.count = 10  // K 100 of 200 ads would find every click, as popularity does
        let outcome = try await Simulation(configuration: c).run()
        let notes = outcome.notes["ml+candidates"] ?? []
        #expect(notes.contains { $0.contains(" candidates: two-tower trained on") && $0.hasSuffix("— passes") }, "\(notes)")
        let stage = try #require(notes.first { $0.hasPrefix("candidate stage (K ") }, "\(notes)")
        let recall = try #require(Double(stage.split(separator: "(recall ")[1].prefix { $0.isNumber || $0 == "." }))
        #expect(recall > 0 && recall <= 1, "\(stage)")
    }

    @Test func unknownArmIsRefused() async throws {
        var c = Self.configuration()
        c.arms = ["baseline", "magic"]
        await #expect(throws: AdServeError.self) { try await Simulation(configuration: c).run() }
    }
}

extension Simulation {
    /// On a scratch SQLite store in a temporary folder, as `adserve simulate` runs it.
    func run(log: (@Sendable (ServeLogLine) -> Void)? = nil) async throws -> Outcome {
        let database = TemporaryDatabase()
        let outcome = try await run(store: try SQLiteStore(path: database.path, durability: .scratch), log: log)
        withExtendedLifetime(database) {}
        return outcome
    }
}

/// `adserve bench` on a small world: the same requests timed in several rounds, each reported,
/// the headline figures being the median round's.
@Suite struct DecisionBenchmarkTests {
    /// `bench --ranker ml` on a small world: it trains what it serves (clicks in the log), builds
    /// the candidate index, times staged decisions, and audits some against the full ranking;
    /// `--json` carries the figures the issue names.
    @Test func theLearnedPathIsTrainedIndexedTimedAndAudited() async throws {
        let database = TemporaryDatabase()
        let benchmark = DecisionBenchmark(
            size: World.Size(users: 300, ads: 300), requests: 50, ranker: .ml, candidates: 20, trainingDecisions: 3_000, buildThreads: 1,
            auditDecisions: 20)
        let result = try await benchmark.run(store: try SQLiteStore(path: database.path, durability: .scratch))
        #expect(result.ranker == "ml" && result.candidates == 20)
        #expect((result.training_clicks ?? 0) > 0)
        #expect((result.index_mb ?? 0) > 0 && result.index_build_s != nil)
        #expect(result.p50_ms > 0 && result.p50_ms <= result.p99_ms && result.decisions_per_s > 0 && result.rss_mb > 0)
        let recall = try #require(result.candidate_recall)
        #expect(recall > 0 && recall <= 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(JSONFormat.string(result).utf8)) as? [String: Any])
        for key in ["p50_ms", "p99_ms", "decisions_per_s", "rss_mb"] { #expect(object[key] is Double, "\(key)") }
    }

    @Test func roundsAreReportedAndTheHeadlineIsTheMedianRound() async throws {
        let database = TemporaryDatabase()
        var benchmark = DecisionBenchmark(size: World.Size(users: 200, ads: 200), requests: 40, ranker: .rule)
        benchmark.rounds = 3
        let result = try await benchmark.run(store: try SQLiteStore(path: database.path, durability: .scratch))
        let rounds = try #require(result.rounds)
        #expect(rounds.count == 3)
        let median = rounds.map(\.decisions_per_s).sorted()[1]
        #expect(result.decisions_per_s == median)
        let headline = try #require(rounds.first { $0.decisions_per_s == median })
        #expect(result.p50_ms == headline.p50_ms && result.p99_ms == headline.p99_ms)
        #expect(rounds.allSatisfy { $0.p50_ms > 0 && $0.p50_ms <= $0.p99_ms })
        #expect(result.ads_per_decision > 0)
        // The live heap is read from the allocator: more than nothing, less than the process
        // held at its peak.
        #expect(result.heap_mb > 0 && result.heap_mb < result.peak_rss_mb)
        // One round reports no list.
        benchmark.rounds = 1
        let other = TemporaryDatabase()
        let single = try await benchmark.run(store: try SQLiteStore(path: other.path, durability: .scratch))
        #expect(single.rounds == nil)
    }
}
