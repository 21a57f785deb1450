import ArgumentParser
import Domain
import Foundation
import ModelServing
import SQLiteStorage
import Serving
import Simulator

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the decision path in-process against a generated world (build with -c release).",
        discussion: """
            Each request is one full decision: profile lookup (store, then cache), eligibility, candidates, ranking, ad load and signed tokens. \
            --ranker ml first trains a click model, a conversion model and the two-tower candidate model on a log of random decisions \
            with clicks drawn from the world's behaviour, and indexes every ad; the timing starts after that. \
            The generated world is dropped and freed memory returned to the system before timing, so the resident memory printed \
            is mostly the serving path's; "heap in use" is the allocator's count of live bytes.
            """
    )

    @Option(help: "The ranker to time: rule (bid × smoothed CTR, the control) or ml (learned, behind the candidate stage).") var ranker = "rule"
    @Option(help: "With --ranker ml: K of the candidate stage (0 scores every eligible ad).") var candidates = ServingConfiguration().candidateCount
    @Option(help: "With --ranker ml: random decisions logged to train the models on.") var trainingDecisions = 20_000
    @Option(help: "With --ranker ml: threads that build the candidate index.") var buildThreads = 2
    @Option(help: "With --ranker ml and a candidate stage: decisions audited after timing (ranked over every eligible ad too; not timed).")
    var auditDecisions = 100
    @Option(help: "With --ranker ml and a candidate stage: ads of the value order (the model's best ads for anyone) added to the retrieved ones.")
    var valuePool = ServingConfiguration().valuePool
    @Option(help: "With --ranker ml and a candidate stage: ads of each objective's value order added after the value pool (the best of each billing type for anyone, not among the candidates yet).")
    var objectivePool = ServingConfiguration().objectivePool
    @Option(help: "With --ranker ml and a candidate stage: ads of each of the user's interests' value order added after the objective pools (the best for a user of that interest, not among the candidates yet).")
    var interestPool = ServingConfiguration().interestPool
    @Option(help: "With --ranker ml and a candidate stage: the index search's effort (ef; the search uses the larger of it and --candidates).")
    var searchEffort = TwoTowerRetriever.Settings().ef
    @Option(help: "With --ranker ml and a candidate stage: how many candidates the learned ranker scores, chosen by their value with no user scaled to the user per objective (0 scores every candidate).")
    var preRank = ServingConfiguration().preRankCount
    @Flag(help: "With --ranker ml and a candidate stage: pre-ranking also weighs each candidate by the user's two-tower affinity with it (more of the full ranking's value kept, at a cost in time; off by default).")
    var preRankAffinity = false

    @Option(help: "Ads in the generated world (10 per campaign, 10 campaigns per advertiser).") var ads = 100_000
    @Option(help: "Users in the generated world.") var users = 100_000
    @Option(help: "Decisions to time.") var requests = 20_000
    @Option(help: "Times the same requests are timed in this process (round 1 also fills the user and ad-part caches); the figures are the median round's, and each round is printed.")
    var rounds = 1
    @Option(help: "Organic posts per page (the default 20 opens 5 ad slots).") var organicCount = 20
    @Option(help: "Seed of the world and the request stream.") var seed: UInt64 = 1
    @Option(help: "Share of slots that explore young ads (0: off; serve explores 0.05 by default).") var exploreShare = 0.0
    @Option(help: "Share of decisions on which every campaign's loss reason is tallied (as serve's option; 1 times the tally itself).")
    var lossSampleRate = ServingConfiguration().lossSampleRate
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        guard ads > 0, users > 0, requests > 0, rounds > 0 else { throw ValidationError("--ads, --users, --requests and --rounds must be positive") }
        guard DecisionBenchmark.RankerChoice(rawValue: ranker) != nil else { throw ValidationError("--ranker must be rule or ml, not '\(ranker)'") }
        guard (0...0.5).contains(exploreShare) else { throw ValidationError("--explore-share must be between 0 and 0.5") }
        guard (0...1).contains(lossSampleRate) else { throw ValidationError("--loss-sample-rate must be between 0 and 1") }
        guard valuePool >= 0, objectivePool >= 0, interestPool >= 0, preRank >= 0 else {
            throw ValidationError("--value-pool, --objective-pool, --interest-pool and --pre-rank must not be negative")
        }
        guard candidates >= 0, trainingDecisions > 0, buildThreads > 0 else {
            throw ValidationError("--candidates must not be negative; --training-decisions and --build-threads must be positive")
        }
        guard TwoTowerRetriever.Settings.efforts.contains(searchEffort) else { throw ValidationError(TwoTowerRetriever.Settings.effortProblem) }
    }

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("bench.db").path)
        var benchmark = DecisionBenchmark(
            size: World.Size(users: users, ads: ads), requests: requests, organicCount: organicCount, seed: seed,
            ranker: DecisionBenchmark.RankerChoice(rawValue: ranker) ?? .rule, candidates: candidates, trainingDecisions: trainingDecisions,
            buildThreads: buildThreads, auditDecisions: auditDecisions, valuePool: valuePool)
        benchmark.exploreShare = exploreShare
        benchmark.lossSampleRate = lossSampleRate
        benchmark.objectivePool = objectivePool
        benchmark.interestPool = interestPool
        benchmark.searchEffort = searchEffort
        benchmark.preRank = preRank
        benchmark.preRankAffinity = preRankAffinity
        benchmark.rounds = rounds
        let progress = Progress()
        benchmark.progress = { progress.step($0) }
        let result = try await benchmark.run(store: store)
        if json {
            print(try JSONFormat.string(result))
        } else {
            let path = result.ranker == "ml" ? (result.candidates > 0 ? "ml, candidate stage K \(result.candidates) + value pool \(result.value_pool) + \(result.objective_pool) per objective, \(result.pre_rank > 0 ? "\(result.pre_rank) ranked\(result.pre_rank_affinity ? " by value and affinity" : "")" : "all ranked")" : "ml, every eligible ad scored") : "rule"
            print("decision path (\(path)), in-process, one task: \(ads) ads (\(result.active_campaigns) campaigns), \(users) users, \(requests) requests")
            print("p50 \(TextTable.fixed(result.p50_ms, 3)) ms   p99 \(TextTable.fixed(result.p99_ms, 3)) ms   mean \(TextTable.fixed(result.mean_ms, 3)) ms   max \(TextTable.fixed(result.max_ms, 3)) ms")
            print("\(TextTable.fixed(result.decisions_per_s, 0)) decisions/s   \(TextTable.fixed(result.ads_per_decision, 2)) ads per decision")
            if let rounds = result.rounds {
                print("rounds (median shown above): " + rounds.map {
                    "p50 \(TextTable.fixed($0.p50_ms, 3)) / p99 \(TextTable.fixed($0.p99_ms, 3)) ms, \(TextTable.fixed($0.decisions_per_s, 0))/s"
                }.joined(separator: "; "))
            }
            print(
                "resident memory \(TextTable.fixed(result.rss_mb, 0)) MB (peak \(TextTable.fixed(result.peak_rss_mb, 0)) MB), "
                    + "heap in use \(TextTable.fixed(result.heap_mb, 0)) MB")
            if let training = result.training_s {
                print("trained in \(TextTable.fixed(training, 1)) s on \(result.training_clicks ?? 0) clicks"
                    + (result.index_build_s.map { "; candidate index built in \(TextTable.fixed($0, 1)) s, \(TextTable.fixed(result.index_mb ?? 0, 0)) MB" } ?? ""))
            }
            if let recall = result.candidate_recall {
                print("candidate stage found \(TextTable.fixed(recall, 3)) of the full ranker's choices and kept \(TextTable.fixed(result.candidate_value_share ?? 0, 3)) of its expected value and \(TextTable.fixed(result.candidate_revenue_share ?? 0, 3)) of its expected revenue over \(result.audited_decisions ?? 0) audited decisions")
            }
        }
    }
}
