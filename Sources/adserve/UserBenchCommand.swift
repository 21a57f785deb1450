import ArgumentParser
import Domain
import Foundation
import PostgresStorage
import SQLiteStorage
import Simulator
import Storage

struct UserBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user-bench",
        abstract: "What a serving node costs at many users: start time, resident memory, and decision latency with a cold and a warm user cache (build with -c release).",
        discussion: """
            Fills a store once with a generated catalog and --users users, each with --history past impressions and one in 50 with a hide; \
            a store already filled with as many users is reused (give --db or --store to keep it). Then opens a node over it and times \
            decisions of users never seen (cold: each loads the user from the store) and of users just cached (warm).
            """
    )

    @Option(help: "Users in the store.") var users = 10_000_000
    @Option(help: "Ads in the generated catalog (10 per campaign).") var ads = 10_000
    @Option(help: "Past impressions per user.") var history = 2
    @Option(help: "Users the node's cache holds (serve --user-cache).") var userCache = 1_000_000
    @Option(help: "Decisions of users never seen before.") var cold = 200_000
    @Option(help: "Decisions of users in the cache.") var warm = 100_000
    @Option(help: "SQLite file to fill or reuse (default: a temporary file, removed afterwards).") var db: String?
    @Option(help: "A postgres:// URL instead of SQLite.") var store: String?
    @Option(help: "Seed of the catalog, the users and the request stream.") var seed: UInt64 = 1
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        guard users > 0, ads > 0, history >= 0, userCache >= 0, cold > 0, warm >= 0 else {
            throw ValidationError("--users, --ads and --cold must be positive; --history, --user-cache and --warm not negative")
        }
    }

    func run() async throws {
        var temporary: URL?
        let adStore: any AdStore
        if let store {
            adStore = try await PostgresStore.open(url: store, maximumConnections: 4)
        } else if let db {
            adStore = try SQLiteStore(path: db)
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-user-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            temporary = directory
            adStore = try SQLiteStore(path: directory.appendingPathComponent("users.db").path)
        }
        defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }
        var benchmark = UserScaleBenchmark(users: users, ads: ads, history: history, userCache: userCache, coldDecisions: cold, warmDecisions: warm, seed: seed)
        let progress = Progress()
        benchmark.progress = { progress.step($0) }
        let result = try await benchmark.run(store: adStore)
        if let postgres = adStore as? PostgresStore { postgres.close() }
        if json {
            print(try JSONFormat.string(result))
            return
        }
        print("\(users) users (\(history) past impressions each), \(ads) ads; user cache \(userCache); in-process, one task")
        if let fill = result.fill_s { print("store filled in \(TextTable.fixed(fill, 0)) s") }
        print("node started in \(TextTable.fixed(result.start_s, 2)) s, resident memory \(TextTable.fixed(result.rss_mb_after_start, 0)) MB")
        for (name, pass, rss) in [("cold", result.cold, result.rss_mb_after_cold), ("warm", result.warm, result.rss_mb_after_warm)] {
            print(
                "\(name): \(pass.requests) decisions  p50 \(TextTable.fixed(pass.p50_ms, 3)) ms  p99 \(TextTable.fixed(pass.p99_ms, 3)) ms  "
                    + "\(TextTable.fixed(pass.decisions_per_s, 0)) decisions/s  \(TextTable.fixed(pass.ads_per_decision, 2)) ads each; then \(TextTable.fixed(rss, 0)) MB resident")
        }
        print("users cached \(result.cached_users), evicted \(result.evictions)")
    }
}
