import ArgumentParser
import ContentEncoding
import Domain
import Foundation
import ModelServing
import Models
import SQLiteStorage
import Serving
import Simulator
import Training

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Play simulated days of users and advertisers through the real serving path and report per-arm metrics.",
        discussion: "Arms: \(Arms.known.joined(separator: ", ")); baseline and the ml arms explore young ads when named with \(Arms.exploreSuffix) (\(Int(Arms.exploring.share * 100))% of slots, ads under \(Arms.exploring.maxImpressions) impressions); full is ml with exploration and a hide cost in total value. The first arm is the control the others are compared with. Users are split between arms by a stable hash of their id, or with --assignment paired every person is served by every arm, with the same luck, and the arms are compared person by person. Same seed, same report."
    )

    @Option(help: "Simulated users.") var users = World.Size.simulation.users
    @Option(help: "Ads (10 per campaign, 10 campaigns per advertiser).") var ads = World.Size.simulation.ads
    @Option(help: "Simulated days.") var days = 7
    @Option(help: "Seed of the world and of every random choice.") var seed: UInt64 = 1
    @Option(help: "Comma-separated arms; an arm named twice runs twice (an A/A test), the second labelled \"<arm>-2\".") var arms = "baseline,random"
    @Option(help: "The world: topics (users state interests; captions carry topic words) or products (users' taste is for products; no interests; only their reported views tell).")
    var world = "topics"
    @Flag(help: "Give the ads generated pictures and videos and encode every ad and every user's activity with the content encoders (all-MiniLM-L6-v2, EfficientNet-Lite0; fetched into the encoder cache on first use).")
    var content = false
    @Option(help: "Learning arms: until a retrain is adopted, retrain after every N labelled clicks as well as each day's end (0: at days' ends only).")
    var warmUpClicks = MLArm.defaultWarmUpClicks
    @Option(help: "Learning arms: the features their models read — full, compact, or choose (each retrain searches both; compact only if it beats full by one standard error on later examples).")
    var featureSet = "full"
    @Option(help: "Which users each arm serves: hashed (each user in one arm, by a stable hash of the id) or paired (users/arms people, each in every arm as a twin with the same traits and the same random draws; intervals from the paired differences).")
    var assignment = Simulation.Configuration().assignment.rawValue
    @Option(help: "How arms share campaign budgets: split (each campaign copied per arm with the arm's share of its budgets; arms never compete) or shared (every arm draws on the same budgets).")
    var budgets = Simulation.Configuration().budgets.rawValue
    @Option(help: "With split budgets, whose events an ad's counters hold: per-arm (each arm's copies count only that arm's events) or pooled (every arm's, one history per ad as in production; a control then learns from a treatment's traffic).")
    var adHistory = Simulation.Configuration().history.rawValue
    @Flag(help: "Pace every campaign's daily budget over the day, as `serve` does by default.") var pacing = false
    @Option(help: "Pricing of every arm: second (generalized second price) or first (winners pay their bids).")
    var pricing = AuctionRules.Pricing.secondPrice.rawValue
    @Option(help: "Campaigns created on day 4, whose ads' learning is measured (default: 5% of the campaigns).") var newCampaigns: Int?
    @Option(help: "ml+candidates: K of the candidate stage, the ads its index search hands the ranker beside the value, objective and interest pools (serve's --candidates).")
    var candidates = MLArm.CandidateStage().count
    @Option(help: "ml+candidates: the index search's effort (ef); it uses the larger of this and --candidates (serve's --search-effort).")
    var searchEffort = MLArm.CandidateStage().searchEffort
    @Option(help: "ml+candidates: how many candidates its learned ranker scores for the user, chosen by their value with no user scaled per objective (serve's --pre-rank; 0 scores every candidate).")
    var preRank = MLArm.CandidateStage().preRank
    @Flag(help: "ml+candidates: pre-ranking also weighs each candidate by the user's two-tower affinity with it (serve's --pre-rank-affinity).")
    var preRankAffinity = false
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Write the serve log (serve-log.jsonl, the format `adserve train --logs` reads), report.json and SVG charts into this folder.") var out: String?

    func validate() throws {
        guard users > 0, ads > 0 else { throw ValidationError("--users and --ads must be positive") }
        guard (1...365).contains(days) else { throw ValidationError("--days must be between 1 and 365") }
        guard World.Kind(rawValue: world) != nil else { throw ValidationError("--world must be topics or products") }
        guard (newCampaigns ?? 0) >= 0 else { throw ValidationError("--new-campaigns must not be negative") }
        guard warmUpClicks >= 0 else { throw ValidationError("--warm-up-clicks must not be negative") }
        guard featureSet == "choose" || ClickFeatures.FeatureSet(rawValue: featureSet) != nil else {
            throw ValidationError("--feature-set must be choose, full or compact")
        }
        guard Simulation.Assignment(rawValue: assignment) != nil else { throw ValidationError("--assignment must be hashed or paired") }
        guard Simulation.BudgetMode(rawValue: budgets) != nil else { throw ValidationError("--budgets must be split or shared") }
        guard Simulation.HistoryMode(rawValue: adHistory) != nil else { throw ValidationError("--ad-history must be pooled or per-arm") }
        guard AuctionRules.Pricing(rawValue: pricing) != nil else { throw ValidationError("--pricing must be second or first") }
        guard (1...100_000).contains(candidates) else { throw ValidationError("--candidates must be between 1 and 100000") }
        guard TwoTowerRetriever.Settings.efforts.contains(searchEffort) else { throw ValidationError(TwoTowerRetriever.Settings.effortProblem) }
        guard (0...100_000).contains(preRank) else { throw ValidationError("--pre-rank must be between 0 and 100000") }
        for name in arms.split(separator: ",") {
            if let problem = Arms.problem(String(name)) { throw ValidationError(problem.message) }
        }
    }

    func run() async throws {
        var configuration = Simulation.Configuration()
        configuration.size = World.Size(users: users, ads: ads)
        configuration.size.newCampaigns = newCampaigns ?? configuration.size.usualNewCampaigns
        configuration.warmUpClicks = warmUpClicks == 0 ? .max : warmUpClicks
        configuration.candidateStage.count = candidates
        configuration.candidateStage.searchEffort = searchEffort
        configuration.candidateStage.preRank = preRank
        configuration.candidateStage.preRankAffinity = preRankAffinity
        configuration.training.featureSet = ClickFeatures.FeatureSet(rawValue: featureSet) ?? .full
        configuration.training.chooseFeatureSet = featureSet == "choose"
        configuration.pricing = AuctionRules.Pricing(rawValue: pricing) ?? .secondPrice
        configuration.world = World.Kind(rawValue: world) ?? .topics
        configuration.assignment = Simulation.Assignment(rawValue: assignment) ?? configuration.assignment
        configuration.budgets = Simulation.BudgetMode(rawValue: budgets) ?? configuration.budgets
        configuration.history = Simulation.HistoryMode(rawValue: adHistory) ?? configuration.history
        configuration.pacing = pacing ? BudgetPacer.Settings() : nil
        configuration.days = days
        configuration.seed = seed
        configuration.arms = arms.split(separator: ",").map(String.init)

        var writer: ServeLogWriter?
        if let out {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            writer = try ServeLogWriter(path: (out as NSString).appendingPathComponent("serve-log.jsonl"))
        }
        // The simulation's store: a scratch SQLite file (no fsync), removed afterwards.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-sim-\(seed)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("sim.db").path, durability: .scratch)
        if content {
            configuration.content = true
            configuration.encoder = try PretrainedContentEncoder.load()
            configuration.mediaDirectory = directory.path
        }
        let interactive = isatty(STDERR_FILENO) == 1
        let started = ContinuousClock.now
        let progress: @Sendable (Int, Int) -> Void = { day, total in
            let filled = day * 30 / total
            let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled)
            let line = "[\(bar)] day \(day)/\(total)  \(ContinuousClock.now - started)"
            FileHandle.standardError.write(Data((interactive ? "\r" + line : line + "\n").utf8))
        }
        var log: (@Sendable (ServeLogLine) -> Void)?
        if let writer { log = { writer.write($0) } }
        let outcome = try await Simulation(configuration: configuration).run(store: store, progress: progress, log: log)
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        writer?.close()

        let reportJSON = try JSONFormat.encoder(pretty: true).encode(outcome.report)
        if let out {
            try reportJSON.write(to: URL(fileURLWithPath: out).appendingPathComponent("report.json"))
            for metric in Charts.metrics {
                try Charts.svg(metric, report: outcome.report).write(toFile: (out as NSString).appendingPathComponent(metric.file), atomically: true, encoding: .utf8)
            }
        }
        print(json ? String(decoding: reportJSON, as: UTF8.self) : ReportTable.render(outcome.report))
        // What learning arms noted (their daily retrains), on stderr so `--json` stays one document.
        for (arm, notes) in outcome.notes.sorted(by: { $0.key < $1.key }) where !notes.isEmpty {
            FileHandle.standardError.write(Data(("\n\(arm) arm:\n" + notes.map { "  " + $0 + "\n" }.joined()).utf8))
        }
    }
}
