import ArgumentParser
import Domain
import Foundation
import Histogram
import SQLiteStorage
import Serving
import Simulator

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the decision path in-process against a generated world (build with -c release).",
        discussion: "Each request is one full decision: profile lookup (store, then cache), eligibility, ranking, ad load and signed tokens."
    )

    @Option(help: "Ads in the generated world (10 per campaign, 10 campaigns per advertiser).") var ads = 100_000
    @Option(help: "Users in the generated world.") var users = 100_000
    @Option(help: "Decisions to time.") var requests = 20_000
    @Option(help: "Organic posts per page (the default 20 opens 5 ad slots).") var organicCount = 20
    @Option(help: "Seed of the world and the request stream.") var seed: UInt64 = 1
    @Flag(help: "Print JSON instead of a table.") var json = false

    struct Result: Codable {
        var ads: Int
        var users: Int
        var requests: Int
        var p50_ms: Double
        var p99_ms: Double
        var mean_ms: Double
        var max_ms: Double
        var decisions_per_s: Double
        var ads_per_decision: Double
        var active_campaigns: Int
    }

    func run() async throws {
        guard ads > 0, users > 0, requests > 0 else { throw ValidationError("--ads, --users and --requests must be positive") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let clock = ManualClock()
        let store = try SQLiteStore(path: directory.appendingPathComponent("bench.db").path)
        let world = World(size: World.Size(users: users, ads: ads), seed: seed, start: clock.now())
        try await store.importBatch(world.batch)
        let serving = try await DecisionService.open(store: store, clock: clock, decisionIDs: DecisionIDGenerator(prefix: seed))

        var rng = SplitMix64(seed: seed ^ 0x5EED)
        // Latencies in nanoseconds, 3 significant digits (HdrHistogram).
        var latencies = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        var served = 0
        let begin = ContinuousClock.now
        for _ in 0..<requests {
            let user = try UserID(validating: "u\(Int.random(in: 1...users, using: &rng))")
            let context = FeedContext(device: World.devices.randomElement(using: &rng), hour: Int.random(in: 0...23, using: &rng))
            let started = ContinuousClock.now
            let decision = try await serving.decide(userID: user, context: context, organicCount: organicCount)
            let elapsed = ContinuousClock.now - started
            _ = latencies.record(UInt64(max(0, elapsed.inSeconds * 1e9)))
            served += decision.placements.count
        }
        let total = ContinuousClock.now - begin
        let totalSeconds = total.inSeconds
        func milliseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e6 }
        let result = Result(
            ads: ads, users: users, requests: requests, p50_ms: milliseconds(latencies.valueAtPercentile(50)),
            p99_ms: milliseconds(latencies.valueAtPercentile(99)), mean_ms: latencies.mean / 1e6, max_ms: milliseconds(latencies.max),
            decisions_per_s: Double(requests) / totalSeconds, ads_per_decision: Double(served) / Double(requests),
            active_campaigns: serving.catalog.snapshot.activeCampaignCount)
        if json {
            print(try JSONFormat.string(result))
        } else {
            print("decision path, in-process, one task: \(ads) ads (\(result.active_campaigns) campaigns), \(users) users, \(requests) requests")
            print(String(format: "p50 %.3f ms   p99 %.3f ms   mean %.3f ms   max %.3f ms", result.p50_ms, result.p99_ms, result.mean_ms, result.max_ms))
            print(String(format: "%.0f decisions/s   %.2f ads per decision", result.decisions_per_s, result.ads_per_decision))
        }
    }
}
