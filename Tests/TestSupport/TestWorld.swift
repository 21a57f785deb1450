import Domain
import Foundation
import SQLiteStorage
import Serving
import Storage

/// A temporary SQLite file, removed when the value is released.
public final class TemporaryDatabase: Sendable {
    public let directory: URL
    public var path: String { directory.appendingPathComponent("adserve.db").path }

    public init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    public func open() throws -> SQLiteStore { try SQLiteStore(path: path) }
}

/// A store, a manual clock and the serving stack over them, plus quick ways to add things.
public struct TestWorld: Sendable {
    public let database: TemporaryDatabase
    public let store: SQLiteStore
    public let clock: ManualClock
    public let serving: DecisionService
    public let catalog: CatalogService

    /// Noon UTC on 2026-06-01: far from a day boundary unless a test moves there.
    public static let start = Timestamp(milliseconds: 1_780_315_200_000)

    public static func make(
        database: TemporaryDatabase = TemporaryDatabase(), clock: ManualClock = ManualClock(TestWorld.start),
        configuration: ServingConfiguration = ServingConfiguration(), ranker: any Ranker = RuleBasedRanker(),
        retriever: (any CandidateRetriever)? = nil, decisionPrefix: UInt64 = 7
    ) async throws -> TestWorld {
        let store = try database.open()
        let serving = try await DecisionService.open(
            store: store, clock: clock, configuration: configuration, ranker: ranker, decisionIDs: DecisionIDGenerator(prefix: decisionPrefix),
            retriever: retriever)
        return TestWorld(
            database: database, store: store, clock: clock, serving: serving,
            catalog: CatalogService(store: store, catalog: serving.catalog, clock: clock))
    }

    /// The same database reopened, as after a restart: a new process, so new decision ids.
    public func reopened() async throws -> TestWorld {
        try await TestWorld.make(database: database, clock: clock, configuration: serving.configuration, decisionPrefix: .random(in: 8 ... .max))
    }

    @discardableResult
    public func advertiser(_ name: String = "Acme") async throws -> Advertiser {
        try await catalog.createAdvertiser(name: name).0
    }

    public func campaign(
        _ advertiser: Advertiser, objective: Objective = .traffic, bid: Micros = 1_000_000, daily: Micros = 100_000_000,
        total: Micros = 1_000_000_000, targeting: Targeting = Targeting(), cap: FrequencyCap? = nil,
        startAt: Timestamp? = nil, endAt: Timestamp? = nil
    ) async throws -> Campaign {
        try await catalog.createCampaign(
            Campaign(
                id: CampaignID(0), advertiserID: advertiser.id, name: "campaign", objective: objective, bidMicros: bid,
                dailyBudgetMicros: daily, totalBudgetMicros: total, startAt: startAt, endAt: endAt, targeting: targeting,
                frequencyCap: cap, createdAt: clock.now()))
    }

    @discardableResult
    public func ad(_ campaign: Campaign, caption: String = "caption") async throws -> Ad {
        try await catalog.createAd(
            Ad(
                id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: caption,
                company: "Acme", product: "thing", description: "a thing", createdAt: clock.now()))
    }

    public func user(_ id: String, age: Int? = 30, gender: String? = "female", country: String? = "us", language: String? = "en", interests: [String] = []) async throws -> UserID {
        let userID = try UserID(validating: id)
        try await serving.putUser(UserProfile(id: userID, age: age, gender: gender, country: country, language: language, interests: interests))
        return userID
    }

    /// Publishes catalog changes and rebuilds the ranking order now (the server does it on a timer).
    public func publish() { serving.refresh() }

    public func decide(_ user: String, organicCount: Int = 20, device: String? = nil) async throws -> Decision {
        try await serving.decide(userID: try UserID(validating: user), context: FeedContext(device: device), organicCount: organicCount)
    }
}

extension ServingConfiguration {
    /// Winners pay their bids (first price): for tests of billing, budgets and invalid traffic,
    /// whose one ad would otherwise win alone and pay the reserve (`Auction`).
    public static var payingBids: ServingConfiguration {
        var configuration = ServingConfiguration()
        configuration.auction.pricing = .firstPrice
        return configuration
    }
}
