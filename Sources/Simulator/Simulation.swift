import ContentEncoding
import ContentUpdates
import Domain
import Events
import Foundation
import HeapModule
import Learning
import Serving
import Storage
import Training

/// Plays simulated days of traffic through the real decision and event path — the same
/// `DecisionService` and `EventIngestor` the server runs — on a simulated clock, and measures
/// both sides of the business goal per arm: revenue, and what it costs users.
///
/// Users browse organic posts between ad slots, and the feed backend reports what they viewed
/// (one activity per page); the server's `ActivityVectorUpdater` turns reports, clicks and
/// hides into the profiles' recent topics (and, with `content`, activity vectors) before the
/// user's next page. With `content`, every campaign gets a generated picture or video (one in
/// three is a video campaign), and the server's `PendingAdEncoder` computes every ad's content
/// vector with the given encoder before the first day, as a server does within seconds of upload.
public struct Simulation: Sendable {
    public struct Configuration: Sendable {
        public var size = World.Size.simulation
        public var world = World.Kind.topics
        /// Generated pictures and videos for the ads, encoded by `encoder` into content vectors,
        /// which also encodes users' activity; it needs `encoder` and `mediaDirectory`.
        public var content = false
        public var encoder: (any ContentEncoder)?
        public var mediaDirectory: String?
        public var days = 7
        public var seed: UInt64 = 1
        public var arms: [String] = ["baseline", "random"]
        /// Which users each arm serves (`Assignment`): hashed by default.
        public var assignment = Assignment.hashed
        /// How campaign budgets are shared between arms (`BudgetMode`): split by default.
        public var budgets = BudgetMode.split
        /// Whether split arms pool their ads' history (`HistoryMode`): pooled by default, one
        /// history per ad as in production.
        public var history = HistoryMode.pooled
        /// Budget pacing (`BudgetPacer`), stepped every simulated second as `serve` steps it
        /// at each fleet sync; nil: campaigns spend as fast as they win.
        public var pacing: BudgetPacer.Settings?
        /// How every arm's winners are priced (`Auction`).
        public var pricing = AuctionRules.Pricing.secondPrice
        /// Learning arms: labelled clicks that close a retraining period until a retrain is adopted.
        public var warmUpClicks = MLArm.defaultWarmUpClicks
        /// `ml+candidates`'s K and search effort.
        public var candidateStage = MLArm.CandidateStage()
        /// How the learned arms train (`MLArm.defaultConfiguration`; `simulate --feature-set`).
        public var training = MLArm.defaultConfiguration
        /// Organic posts per page; the default ad load opens 2 ad slots in 10 posts.
        public var organicPerPage = 10
        public var maxPagesPerSession = 12
        /// Share of impressions the feed sends twice (deduplication is exercised, never billed twice).
        public var duplicateRate = 0.01
        public var behaviour = Behaviour()
        public init() {}
    }

    /// Which users an experiment's arms serve.
    ///
    /// `hashed` (the default): each of the world's users belongs to one arm, by a stable hash of
    /// their id and the seed, and every random draw of the run comes from one stream.
    ///
    /// `paired`: the world's first users/arms people each appear once in every arm, as twins
    /// (`World.twins`) with the same traits, and the same luck (`RunState.pairing`: each draw is
    /// keyed by the person and the moment it is for — common random numbers). The arms then
    /// differ only by what they serve, and the report compares them person by person: each
    /// interval comes from the twins' paired differences. The number of users served is the
    /// same as `hashed`'s, and so is each arm's share of every budget.
    public enum Assignment: String, Sendable, CaseIterable {
        case hashed, paired
    }

    /// How an experiment's arms share the advertisers' budgets.
    ///
    /// `split` (the default): each campaign is imported once per arm (with its ads, under a copy
    /// of its advertiser) with each budget divided in proportion to the arm's share of users,
    /// and each arm serves only its copies (`CampaignSlice`). Arms are separate markets: one
    /// arm's spending never takes what the other could have bought, and each learns its ads'
    /// rates only from its own impressions — the budget-split design of marketplace experiments.
    ///
    /// `shared`: every arm serves the same campaigns and draws on the same budgets; whichever
    /// arm's users come first spends them (the interference that makes A/A runs disagree).
    public enum BudgetMode: String, Sendable, CaseIterable {
        case split, shared
    }

    /// Whose impressions, clicks, conversions and hides an ad's counters hold when budgets are
    /// split. `per-arm`: each arm's copies count only that arm's events, so no arm learns from
    /// another's traffic. `pooled` (the default): every arm's, as production keeps one history per
    /// ad whatever experiment its viewers are in; two arms running one policy then stop drifting
    /// apart on which ads their early clicks happened to favour (A/A CTR steadies), but a control
    /// also learns from what a treatment explored, which shrinks the treatment's measured lift.
    /// Learned models train on their own arm's logs either way.
    public enum HistoryMode: String, Sendable, CaseIterable {
        case pooled
        case perArm = "per-arm"
    }

    public let configuration: Configuration
    public init(configuration: Configuration) { self.configuration = configuration }
    /// When every run's first day begins: 2026-06-01 00:00 UTC.
    public static let start = Timestamp(milliseconds: 1_780_272_000_000)

    /// What a run produced: the report and, for checks, a few totals.
    public struct Outcome: Sendable {
        public var report: SimulationReport
        /// Sum of what every accepted event was charged.
        public var chargedMicros: Micros
        /// What the store says was spent, and the largest overspend of any campaign (0 expected).
        public var storeSpendMicros: Micros
        public var maxOverspendMicros: Micros
        /// Per arm, what it noted (retrains of the learning arm).
        public var notes: [String: [String]]
    }

    /// Runs the whole simulation on `store`, which must be empty: the world is imported into it.
    /// `progress(day, days)` is called after each day; `log` receives the serve log — every
    /// impression as it is served and every event as it is recorded — as the server writes it.
    public func run(
        store: some AdStore, progress: @Sendable (Int, Int) -> Void = { _, _ in }, log: (@Sendable (ServeLogLine) -> Void)? = nil
    ) async throws -> Outcome {
        let config = configuration
        let arms = try Arms.list(config.arms, warmUpClicks: config.warmUpClicks, training: config.training, stage: config.candidateStage)
        guard !arms.isEmpty else { throw AdServeError.invalid("arms", "name at least one arm") }
        guard config.days > 0 else { throw AdServeError.invalid("days", "must be positive") }

        let start = Self.start
        var world = World(size: config.size, seed: config.seed, start: start, kind: config.world)
        let people = config.assignment == .paired ? config.size.users / arms.count : nil
        if let people {
            guard people > 0 else { throw AdServeError.invalid("users", "a paired run needs at least one user per arm") }
            world = world.twins(people: people, arms: arms.count)
        }
        guard try await store.isEmpty() else { throw AdServeError.invalid("store", "the simulation needs an empty store") }
        var batch = world.batch
        if config.content {
            guard config.encoder != nil, let directory = config.mediaDirectory else {
                throw AdServeError.invalid("content", "a run with content needs an encoder and a media directory")
            }
            try Self.attachMedia(to: &batch, world: world, directory: directory)
        }
        let userArm = people.map { people in world.userIDs.indices.map { $0 / people } }
            ?? world.userIDs.map { Arms.assign($0, arms: arms.count, salt: config.seed) }
        let copies = config.budgets == .split ? arms.count : 1
        if copies > 1 {
            let shares = (0..<copies).map { arm in Double(userArm.count { $0 == arm }) / Double(max(1, userArm.count)) }
            batch = Self.splitBudgets(batch, shares: shares)
        }
        try await store.importBatch(batch)

        let clock = ManualClock(start)
        var serving = ServingConfiguration()
        serving.userCacheCapacity = 2 * config.size.users
        serving.auction.pricing = config.pricing
        serving.historyCopies = config.history == .pooled ? copies : 1
        serving.pacing = config.pacing
        let base = try await DecisionService.open(store: store, clock: clock, configuration: serving, decisionIDs: DecisionIDGenerator(prefix: config.seed))
        // With split budgets each arm's path is built on a base that serves only its slice.
        let paths = arms.enumerated().map { index, arm in
            var sliced = base.configuration
            sliced.campaignSlice = copies > 1 ? CampaignSlice(index: index, count: copies) : nil
            let armBase = copies > 1 ? base.variant(ranker: base.ranker, configuration: sliced, decisionIDs: DecisionIDGenerator(prefix: config.seed)) : base
            return arm.servingPath(base: armBase, seed: config.seed &+ UInt64(index + 1) &* 0x9E37_79B9)
        }
        if let log { base.observers.add(ServeLogger(write: log)) }
        for arm in arms { if let observer = arm.observer { base.observers.add(observer) } }
        let ingestor = EventIngestor(serving: base)
        // The server's content workers: ads' vectors before the first day; users' recent topics
        // (and vectors) from the history imported with the world, then before each page.
        let activity = ActivityVectorUpdater(serving: base, encoder: config.content ? config.encoder : nil)
        base.observers.add(activity)
        if config.content, let encoder = config.encoder {
            let ads = PendingAdEncoder(catalog: CatalogService(store: store, catalog: base.catalog, clock: clock), encoder: encoder, fetchesRemoteMedia: false)
            while try await ads.encodePending(batch: 64) > 0 {}
            for path in paths { path.refresh(rebuildRanking: true) }
        }
        while try await activity.catchUp() == ActivityVectorUpdater.batch {}
        var state = RunState(world: world, arms: arms.count, days: config.days, seed: config.seed, copies: copies, people: people)
        var budgetDays: [SimulationReport.BudgetDay] = []

        for day in 0..<config.days {
            let dayStart = start.adding(milliseconds: Int64(day) * Timestamp.millisecondsPerDay)
            let dayEnd = dayStart.adding(milliseconds: Timestamp.millisecondsPerDay)
            state.scheduleSessions(day: day, dayStart: dayStart, behaviour: config.behaviour)
            var lastRefresh = dayStart
            var lastPace = dayStart.milliseconds - 1_000
            while let next = state.queue.min, next.time < dayEnd {
                _ = state.queue.removeMin()
                clock.set(next.time)
                if let pacer = base.pacer, next.time.milliseconds - lastPace >= 1_000 {
                    pacer.tick(now: next.time, snapshot: base.catalog.snapshot, delivery: base.delivery)
                    lastPace = next.time.milliseconds
                }
                if next.time.milliseconds - lastRefresh.milliseconds >= 10 * 60_000 {
                    for arm in arms { try arm.advance(to: next.time) }
                    for path in paths { path.refresh(rebuildRanking: true) }
                    lastRefresh = next.time
                }
                switch next.action {
                case .session(let user, let index):
                    state.startSession(user: user, index: index, arm: userArm[user], day: day, at: next.time)
                case .page(let session):
                    let arm = userArm[session.user]
                    while try await activity.catchUp() == ActivityVectorUpdater.batch {}
                    let context = FeedContext(
                        device: world.userDevice[session.user], hour: next.time.hourOfDay, sessionPosition: session.page * config.organicPerPage)
                    let decision = try await paths[arm].decide(userID: world.userIDs[session.user], context: context, organicCount: config.organicPerPage)
                    state.servePage(session, decision: decision, arm: arm, at: next.time, config: config)
                    // What the user lingered on among the page's posts, as the feed reports it.
                    try await store.appendActivity(state.organicActivity(session, at: next.time))
                case .event(let event):
                    // Every event the simulated feed sends must be accepted: an error here is a bug.
                    let result = try await ingestor.ingest(IncomingEvent(type: event.type, impressionToken: event.token))
                    state.charged(result.outcome.chargedMicros, user: event.user, arm: userArm[event.user], day: event.day)
                }
            }
            state.endDay(day, behaviour: config.behaviour)
            let spend = try await store.campaignSpend(day: dayStart.day)
            budgetDays.append(SimulationReport.BudgetDay(day: day + 1, campaigns: batch.campaigns, spend: spend))
            for arm in arms { try await arm.endOfDay(day, at: dayEnd) }
            progress(day + 1, config.days)
        }
        // Late events (conversions days after their click) still count for the day they belong to.
        while let next = state.queue.popMin() {
            clock.set(next.time)
            if case .event(let event) = next.action {
                let result = try await ingestor.ingest(IncomingEvent(type: event.type, impressionToken: event.token))
                state.charged(result.outcome.chargedMicros, user: event.user, arm: userArm[event.user], day: event.day)
            }
        }

        let storeSpend = try await store.campaignSpend(day: start.day).reduce(0) { $0 + $1.totalMicros }
        var overspend: Micros = 0
        let budgets = Dictionary(uniqueKeysWithValues: batch.campaigns.map { ($0.id, $0) })
        for row in try await store.campaignSpend(day: start.day) {
            if let campaign = budgets[row.campaignID] { overspend = max(overspend, row.totalMicros - campaign.totalBudgetMicros) }
        }
        for day in budgetDays { overspend = max(overspend, day.maxOverspendMicros) }
        let report = SimulationReport(
            seed: config.seed, days: config.days, users: world.userIDs.count, ads: world.batch.ads.count,
            campaigns: world.batch.campaigns.count, world: world, content: config.content, arms: arms.map(\.name), state: state, userArm: userArm,
            budgetDays: budgetDays, budgetMode: config.budgets.rawValue, historyMode: copies > 1 ? config.history.rawValue : nil,
            assignment: config.assignment)
        return Outcome(
            report: report, chargedMicros: state.totalCharged, storeSpendMicros: storeSpend, maxOverspendMicros: overspend,
            notes: Dictionary(arms.map { ($0.name, $0.notes) }, uniquingKeysWith: +))
    }

    /// The world imported once per arm for budget-split arms: arm `a` of `shares.count` gets a
    /// copy of every advertiser, campaign and ad (ids `CampaignSlice.copy(of:)`), with each
    /// campaign's daily and total budgets multiplied by `shares[a]` (rounded down; the last arm
    /// takes what rounding left, so the copies' budgets add up to the original's). Users and
    /// their history are shared.
    static func splitBudgets(_ batch: ImportBatch, shares: [Double]) -> ImportBatch {
        var split = ImportBatch(users: batch.users, activities: batch.activities)
        let slices = shares.indices.map { CampaignSlice(index: $0, count: shares.count) }
        for (advertiser, keyHash) in batch.advertisers {
            for slice in slices {
                var copy = advertiser
                copy.id = AdvertiserID(slice.copy(of: advertiser.id.rawValue))
                split.advertisers.append((copy, keyHash: "\(keyHash)-arm\(slice.index + 1)"))
            }
        }
        for campaign in batch.campaigns {
            var dailyLeft = campaign.dailyBudgetMicros
            var totalLeft = campaign.totalBudgetMicros
            for (slice, share) in zip(slices, shares) {
                var copy = campaign
                copy.id = CampaignID(slice.copy(of: campaign.id.rawValue))
                copy.advertiserID = AdvertiserID(slice.copy(of: campaign.advertiserID.rawValue))
                let last = slice.index + 1 == slice.count
                copy.dailyBudgetMicros = last ? dailyLeft : Micros((Double(campaign.dailyBudgetMicros) * share).rounded(.down))
                copy.totalBudgetMicros = last ? totalLeft : Micros((Double(campaign.totalBudgetMicros) * share).rounded(.down))
                dailyLeft -= copy.dailyBudgetMicros
                totalLeft -= copy.totalBudgetMicros
                split.campaigns.append(copy)
            }
        }
        for ad in batch.ads {
            for slice in slices {
                var copy = ad
                copy.id = AdID(slice.copy(of: ad.id.rawValue))
                copy.campaignID = CampaignID(slice.copy(of: ad.campaignID.rawValue))
                split.ads.append(copy)
            }
        }
        return split
    }

    /// Gives every campaign a generated medium (`GeneratedMedia`) drawn from its topic: one
    /// campaign in three is a video campaign, whose ads are all videos; the others' ads are
    /// pictures.
    static func attachMedia(to batch: inout ImportBatch, world: World, directory: String) throws(AdServeError) {
        let media = GeneratedMedia(directory: directory)
        var rng = SplitMix64(seed: world.seed ^ 0x4D45_4449_41)
        var urls: [CampaignID: (url: String, video: Bool)] = [:]
        var first: [CampaignID: Int] = [:]
        for (i, ad) in batch.ads.enumerated() where first[ad.campaignID] == nil { first[ad.campaignID] = i }
        for (index, campaign) in batch.campaigns.enumerated() {
            guard let ad = first[campaign.id] else { continue }
            let video = index % 3 == 0
            let url = try media.write(campaign: index + 1, topic: world.adDimension[ad], topics: world.dimensions, video: video, rng: &rng)
            urls[campaign.id] = (url, video)
        }
        for i in batch.ads.indices {
            guard let medium = urls[batch.ads[i].campaignID] else { continue }
            batch.ads[i].format = medium.video ? .video : .image
            batch.ads[i].mediaURLs = [medium.url]
        }
    }
}
