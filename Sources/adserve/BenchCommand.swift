import ArgumentParser
import Domain
import Foundation
import SQLiteStorage
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

    func validate() throws {
        guard ads > 0, users > 0, requests > 0 else { throw ValidationError("--ads, --users and --requests must be positive") }
    }

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("bench.db").path)
        let benchmark = DecisionBenchmark(size: World.Size(users: users, ads: ads), requests: requests, organicCount: organicCount, seed: seed)
        let result = try await benchmark.run(store: store)
        if json {
            print(try JSONFormat.string(result))
        } else {
            print("decision path, in-process, one task: \(ads) ads (\(result.active_campaigns) campaigns), \(users) users, \(requests) requests")
            print("p50 \(TextTable.fixed(result.p50_ms, 3)) ms   p99 \(TextTable.fixed(result.p99_ms, 3)) ms   mean \(TextTable.fixed(result.mean_ms, 3)) ms   max \(TextTable.fixed(result.max_ms, 3)) ms")
            print("\(TextTable.fixed(result.decisions_per_s, 0)) decisions/s   \(TextTable.fixed(result.ads_per_decision, 2)) ads per decision")
        }
    }
}
