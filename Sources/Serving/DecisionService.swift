import Domain
import Foundation
import Signing
import Storage
import Synchronization

/// Configuration of the decision path, with a default for every field.
public struct ServingConfiguration: Sendable {
    public var adLoad = AdLoadPolicy()
    public var tokenLifetimeMilliseconds: Int64 = 7 * Timestamp.millisecondsPerDay
    /// Users whose profile and delivery state are cached (`UserCache`), and how old an entry
    /// may grow before it is loaded again (nil: never, right for one node alone on its store;
    /// a fleet sets it so caps and hides recorded by other nodes arrive).
    public var userCacheCapacity = 1_000_000
    public var userStateMaxAgeMilliseconds: Int64?
    public var maxOrganicCount = 500
    public var policy = SelectionPolicy.ranked
    /// K of the candidate stage, when the service has a retriever, and the best eligible ads
    /// of the value order added to the retrieved ones (the value pool), then each objective's
    /// best eligible ads not among them (`CandidateGeneration.retrieved`). K was 500 until
    /// 2026-12-05: with the value, objective and interest pools beside it, K 100 keeps nearly
    /// as much of the full ranking's value (0.89–0.90 against 0.92–0.94 at 100k ads; 0.82
    /// against 0.84 at 1M) and the search (its effort `TwoTowerRetriever.Settings.ef`, 100
    /// too) costs a fifth: three times the decisions per second at 1M.
    public var candidateCount = 100
    public var valuePool = 100
    public var objectivePool = 20
    /// How old the value order may grow before a refresh rebuilds it: it ranks every ad with
    /// the serving ranker (seconds of work at a million ads), so not on every catalog change.
    public var valueOrderMilliseconds: Int64 = 30_000
    /// How many of the best eligible ads for each of the user's interests join the candidates
    /// (`RankingIndex.interestOrders`), and how old those orders may grow: each costs a ranking
    /// of every ad, so they are rebuilt less often than the value order and carried over between.
    public var interestPool = 20
    public var interestOrderMilliseconds: Int64 = 300_000
    /// How many of the candidates the learned ranker scores for the user (`PreRanking`): the
    /// others are left out by their value with no user, scaled per objective to this user. 0
    /// scores every candidate.
    public var preRankCount = 100
    /// Whether pre-ranking also weighs the user's two-tower affinity with each candidate
    /// (`PreRanking`): more of the full ranking's value kept (0.783 against 0.720 at 1M ads in one
    /// run; 0.871 against 0.849 and 0.866 against 0.729 at 100k, seeds 1 and 2), at a cost in
    /// time (at 1M, runs one after the other: 1,267–1,694 decisions/s with it against
    /// 1,674–1,942 without), so off by default: the 2,000 target at 1M comes first.
    public var preRankAffinity = false
    /// Share of decisions on which the candidate stage is audited against the exhaustive
    /// ranking (`CandidateAudit`); 0 audits none.
    public var candidateAuditRate = 0.0
    /// Pricing (second price by default) and reserves.
    public var auction = AuctionRules()
    /// The share of ranked slots that explore young ads; off by default (`serve` turns it on).
    public var exploration = ExplorationPolicy.off
    /// The user's side of total value: micros one expected hide costs (0: off, the control).
    public var engagement = EngagementCost()
    /// Creative fatigue: the share of P(click) an ad keeps per time the user saw its campaign in
    /// the cap memory (`Fatigue`; 1: off, the control; the learned ranker learns its own from
    /// that count).
    public var fatigue = 1.0
    /// Traces kept for `explain` and `why` (the latest decisions), and the candidates each keeps.
    public var traceCapacity = 10_000
    public var traceCandidates = 10
    /// Share of decisions on which every campaign's loss reason is tallied (`LossTally`).
    public var lossSampleRate = 0.001
    /// The name decisions carry (`Decision.arm`): an experiment arm's, or "default".
    public var arm = "default"
    /// In a budget-split experiment, the campaigns this arm serves (`CampaignSlice`); nil: all.
    public var campaignSlice: CampaignSlice?
    /// In a budget-split experiment whose arms pool their ads' history, the copies of each ad
    /// (one per arm): every event counts for all of them (`DeliveryState.historyCopies`). 1: none.
    public var historyCopies = 1
    /// Budget pacing over the day (`BudgetPacer`); off by default (`serve` turns it on): the
    /// simulator and tests run without it unless they ask.
    public var pacing: BudgetPacer.Settings?
    public init() {}
}

/// Answers "which ads go where in this page?" for one user: loads the profile (cached), takes
/// the current catalog snapshot once, and runs the decision engine with the configured ranker.
public final class DecisionService: Sendable {
    public let store: any AdStore
    public let catalog: CatalogPublisher
    public let delivery: DeliveryState
    public let engine: DecisionEngine
    public let ranker: any Ranker
    /// The candidate stage's retrieval model: nil scores every eligible ad.
    public let retriever: (any CandidateRetriever)?
    /// The candidate stage's recall of the exhaustive ranking's choices, on sampled decisions.
    public let candidateAudit: CandidateAudit?
    public let clock: any WallClock
    public let configuration: ServingConfiguration
    /// Who hears about decisions and recorded events (shared with variants).
    public let observers: ServingObservers
    /// The latest decisions' traces and the campaigns' loss reasons (shared with variants).
    public let traces: DecisionTraces
    public let losses: LossTally
    /// Budget pacing, when configured (shared with variants, like the budgets it paces).
    public let pacer: BudgetPacer?
    /// Until when decisions do not ask the store for profiles (it just failed to answer).
    private let storeAwayUntil = Mutex<ContinuousClock.Instant?>(nil)
    /// When an unverifiable token last made this node read the token secret again.
    let secretRecheck = Mutex<ContinuousClock.Instant?>(nil)
    /// Users' profiles and delivery state (shared with variants).
    public let users: UserCache
    private let decisionIDs: Mutex<DecisionIDGenerator>
    /// Best-first order of the current snapshot, when the ranker is user-independent.
    private let ranking = Mutex<RankingIndex?>(nil)
    /// The value pool's order and when it was built, when a user-dependent ranker has a
    /// candidate stage.
    private let valueOrder = Mutex(ValueOrder())
    private struct ValueOrder {
        var index: RankingIndex?
        var builtAt: Int64 = 0
        /// When its interest orders were ranked anew (carried over in between).
        var interestsBuiltAt: Int64 = 0
        var building = false
        /// How long the last build took (wall time).
        var buildSeconds: Double?
    }

    /// How long the value order's last build took, in seconds (nil before the first).
    public var valueOrderBuildSeconds: Double? { valueOrder.withLock { $0.buildSeconds } }

    public init(
        store: any AdStore, catalog: CatalogPublisher, delivery: DeliveryState, signer: TokenSigner, ranker: any Ranker = RuleBasedRanker(),
        clock: any WallClock, configuration: ServingConfiguration = ServingConfiguration(), decisionIDs: DecisionIDGenerator = DecisionIDGenerator(),
        retriever: (any CandidateRetriever)? = nil
    ) {
        self.store = store
        self.catalog = catalog
        self.delivery = delivery
        self.engine = Self.engine(configuration, signer: signer)
        self.ranker = ranker
        self.retriever = retriever
        self.candidateAudit = retriever != nil && configuration.candidateAuditRate > 0 ? CandidateAudit(sampleRate: configuration.candidateAuditRate) : nil
        self.clock = clock
        self.configuration = configuration
        self.observers = ServingObservers()
        self.traces = DecisionTraces(capacity: configuration.traceCapacity)
        self.losses = LossTally()
        self.pacer = configuration.pacing.map { BudgetPacer(settings: $0) }
        self.users = UserCache(capacity: configuration.userCacheCapacity, maxAge: configuration.userStateMaxAgeMilliseconds)
        self.decisionIDs = Mutex(decisionIDs)
    }

    /// The decision engine a configuration describes.
    private static func engine(_ configuration: ServingConfiguration, signer: TokenSigner) -> DecisionEngine {
        DecisionEngine(
            adLoad: configuration.adLoad, signer: signer, policy: configuration.policy, candidateCount: configuration.candidateCount,
            valuePool: configuration.valuePool, objectivePool: configuration.objectivePool, interestPool: configuration.interestPool,
            preRankCount: configuration.preRankCount, preRankAffinity: configuration.preRankAffinity,
            auction: configuration.auction, exploration: configuration.exploration,
            traceCandidates: configuration.traceCapacity > 0 ? configuration.traceCandidates : 0, lossSampleRate: configuration.lossSampleRate,
            engagement: configuration.engagement, campaignSlice: configuration.campaignSlice, fatigue: configuration.fatigue)
    }

    private init(
        variantOf base: DecisionService, ranker: any Ranker, configuration: ServingConfiguration, decisionIDs: DecisionIDGenerator,
        retriever: (any CandidateRetriever)?
    ) {
        self.store = base.store
        self.catalog = base.catalog
        self.delivery = base.delivery
        self.engine = Self.engine(configuration, signer: base.signer)
        self.ranker = ranker
        self.retriever = retriever
        self.candidateAudit = retriever != nil && configuration.candidateAuditRate > 0 ? CandidateAudit(sampleRate: configuration.candidateAuditRate) : nil
        self.clock = base.clock
        self.configuration = configuration
        self.observers = base.observers
        self.traces = base.traces
        self.losses = base.losses
        self.pacer = base.pacer
        self.users = base.users
        self.decisionIDs = Mutex(decisionIDs)
    }

    /// Another serving path over the same store, catalog, delivery state, signer and user
    /// cache — an experiment arm: its own ranker, policy and ad load, shared budgets and caps.
    public func variant(
        ranker: any Ranker, configuration: ServingConfiguration, decisionIDs: DecisionIDGenerator, retriever: (any CandidateRetriever)? = nil
    ) -> DecisionService {
        let variant = DecisionService(variantOf: self, ranker: ranker, configuration: configuration, decisionIDs: decisionIDs, retriever: retriever)
        variant.refresh()
        return variant
    }

    /// Opens the serving state over a store: loads the catalog and rebuilds campaigns' spend
    /// and ads' counters (users are loaded as decisions need them).
    public static func open(
        store: any AdStore, clock: any WallClock, configuration: ServingConfiguration = ServingConfiguration(),
        ranker: any Ranker = RuleBasedRanker(), decisionIDs: DecisionIDGenerator = DecisionIDGenerator(),
        retriever: (any CandidateRetriever)? = nil
    ) async throws -> DecisionService {
        let key = try await store.secret(named: Self.tokenSecretName) { Secrets.randomBytes(32) }
        let previous = try await store.previousSecret(named: Self.tokenSecretName)
        let delivery = DeliveryState(youngBelow: configuration.exploration.maxImpressions, historyCopies: configuration.historyCopies)
        let catalog = CatalogPublisher(delivery: delivery)
        try await catalog.load(from: store)
        try await delivery.restore(from: store, catalog: catalog, now: clock.now())
        let service = DecisionService(
            store: store, catalog: catalog, delivery: delivery,
            signer: TokenSigner(key: key, lifetimeMilliseconds: configuration.tokenLifetimeMilliseconds, previous: previous),
            ranker: ranker, clock: clock, configuration: configuration, decisionIDs: decisionIDs, retriever: retriever)
        service.refresh()
        return service
    }

    /// Publishes catalog changes, brings the retriever's index up to the snapshot and, for a
    /// user-independent ranker, rebuilds the best-first order: always when the catalog changed,
    /// otherwise only if `rebuildRanking` (to pick up the latest delivery counters). Behind a
    /// candidate stage, rebuilds the value order once it is `valueOrderMilliseconds` old — with
    /// `valueOrderInBackground` on a thread of its own (seconds at a million ads, which would
    /// hold up publishing), else before returning (tests and the simulator, reproducibly).
    /// `ServingRefresher` calls it on a timer; tests and the simulator call it directly. Returns
    /// whether the catalog changed.
    @discardableResult
    public func refresh(rebuildRanking: Bool = true, valueOrderInBackground: Bool = false) -> Bool {
        let published = catalog.publishIfChanged()
        let now = clock.now()
        retriever?.sync(catalog.snapshot, at: now)
        guard engine.policy == .ranked else { return published }
        if ranker.isUserIndependent {
            guard published || rebuildRanking else { return published }
            let index = RankingIndex(snapshot: catalog.snapshot, delivery: delivery, ranker: ranker, now: now, engagement: engine.engagement)
            ranking.withLock { current in
                // Two refreshes racing: keep the order of the newer snapshot.
                if let current, current.snapshot.version > index.snapshot.version { return }
                current = index
            }
        } else if retriever != nil, configuration.valuePool > 0 || configuration.objectivePool > 0 || configuration.interestPool > 0 {
            let snapshot = catalog.snapshot
            let due = valueOrder.withLock { order in
                // Due when missing, old, or empty while the catalog is not (a new server's first ads).
                let stale = order.index.map { index in
                    now.milliseconds - order.builtAt >= configuration.valueOrderMilliseconds || now.milliseconds < order.builtAt
                        || (index.snapshot.activeAdCount == 0 && snapshot.activeAdCount > 0)
                } ?? true
                let due = !order.building && stale
                if due { order.building = true }
                // The interest orders to carry over while young (an interest targeted since gets
                // its order at once); all ranked anew when old.
                let young = now.milliseconds >= order.interestsBuiltAt && now.milliseconds - order.interestsBuiltAt < configuration.interestOrderMilliseconds
                return (due: due, interests: young ? order.index?.interestOrders ?? [:] : nil)
            }
            guard due.due else { return published }
            let carried = due.interests
            let build: @Sendable () -> Void = { [self] in
                // Ranked by the serving ranker itself, with no user: the ads worth most to anyone.
                let started = ContinuousClock.now
                let index = RankingIndex(
                    snapshot: snapshot, delivery: delivery, ranker: ranker, now: now, forValue: true, engagement: engine.engagement,
                    buildInterests: configuration.interestPool > 0, interests: carried ?? [:])
                let elapsed = ContinuousClock.now - started
                valueOrder.withLock { order in
                    order.building = false
                    order.buildSeconds = elapsed.inSeconds
                    if let current = order.index, current.snapshot.version > index.snapshot.version { return }
                    order.index = index
                    order.builtAt = now.milliseconds
                    if carried == nil { order.interestsBuiltAt = now.milliseconds }
                }
            }
            if valueOrderInBackground { Thread.detachNewThread(build) } else { build() }
        }
        return published
    }

    public var signer: TokenSigner { engine.signer }

    /// The store's name of the impression-token signing secret.
    static let tokenSecretName = "impression-token-hmac"

    /// Rotates the token-signing secret: a new random key is stored and signs from now on;
    /// tokens signed with the old key keep verifying for `grace` (by default the token lifetime,
    /// so no token issued before the rotation is lost). Returns when the old key stops verifying.
    @discardableResult
    public func rotateTokenSecret(graceMilliseconds: Int64? = nil) async throws -> Timestamp {
        let key = Secrets.randomBytes(32)
        let until = Timestamp(milliseconds: clock.now().milliseconds + (graceMilliseconds ?? signer.lifetimeMilliseconds))
        try await store.rotateSecret(named: Self.tokenSecretName, to: key, previousValidUntil: until)
        signer.rotate(to: key, previousValidUntil: until)
        return until
    }

    public func decide(userID: UserID, context: FeedContext, organicCount: Int) async throws -> Decision {
        guard (0...configuration.maxOrganicCount).contains(organicCount) else {
            throw AdServeError.invalid("organic_count", "must be between 0 and \(configuration.maxOrganicCount)")
        }
        if let hour = context.hour, !(0...23).contains(hour) { throw AdServeError.invalid("context.hour", "must be between 0 and 23") }
        if let position = context.sessionPosition, position < 0 { throw AdServeError.invalid("context.session_position", "must not be negative") }
        let user = try await userIfReachable(userID)
        // A user who opted out is decided for (and logged) with the context and coarse demographics only.
        let profile = user?.profile.map { $0.personalization ? $0 : $0.depersonalized() }
        let decisionID = decisionIDs.withLock { $0.next() }
        let view: CatalogView
        if ranker.isUserIndependent, let order = ranking.withLock({ $0 }) {
            view = CatalogView(ranking: order)
        } else {
            view = CatalogView(snapshot: catalog.snapshot, valueOrder: valueOrder.withLock { $0.index })
        }
        let now = clock.now()
        pacer?.countDecision(at: now)
        var context = context
        context.at = now
        let request = DecisionRequest(
            decisionID: decisionID, userID: userID, profile: profile, user: user?.state, context: context, organicCount: organicCount, now: now)
        let decision = engine.decide(request, arm: configuration.arm, view: view, delivery: delivery, ranker: ranker, retriever: retriever, audit: candidateAudit)
        if let trace = decision.trace { traces.record(trace) }
        losses.record(decision.losses)
        for observer in observers.all { observer.decided(decision, profile: profile, context: context, at: request.now) }
        return decision
    }

    public func profile(of userID: UserID) async throws -> UserProfile? {
        try await user(userID).profile
    }

    /// A user's cached entry, else the store's record of them, cached unless an event for
    /// the user was applied while it was read (then read again, at most three times).
    func user(_ id: UserID) async throws -> UserCache.Entry {
        let now = clock.now().milliseconds
        if let entry = users.lookup(id, now: now) { return entry }
        return try await loadUser(id, now: now)
    }

    /// Reads a user from the store into the cache (see `user(_:)`).
    private func loadUser(_ id: UserID, now: Int64) async throws -> UserCache.Entry {
        var attempt = 0
        while true {
            let ticket = users.ticket(for: id)
            let record = try await store.userRecord(id, impressionsSince: Timestamp(milliseconds: now - UserState.capMemoryMilliseconds))
            let state = UserState(record, snapshot: catalog.snapshot)
            attempt += 1
            if users.insert(profile: record.profile, state: state, loadedAt: now, for: id, ticket: ticket) || attempt == 3 {
                return UserCache.Entry(profile: record.profile, state: state, loadedAt: now)
            }
        }
    }

    /// The user for a decision: from the cache, else from the store — and while the store is
    /// unreachable, nothing (the decision then uses the context, serves untargeted ads and
    /// knows no caps or hides of an uncached user), so decisions go on through a database
    /// outage. After the store failed to answer, decisions skip it for `storeRetryAfter`
    /// rather than each wait for it.
    func userIfReachable(_ id: UserID) async throws -> UserCache.Entry? {
        let now = clock.now().milliseconds
        if let entry = users.lookup(id, now: now) { return entry }
        if let until = storeAwayUntil.withLock({ $0 }), ContinuousClock.now < until { return nil }
        do {
            return try await loadUser(id, now: now)
        } catch let error as AdServeError where error.code == .unavailable {
            storeAwayUntil.withLock { $0 = ContinuousClock.now + Self.storeRetryAfter }
            return nil
        }
    }

    static let storeRetryAfter = Duration.seconds(2)

    /// What a campaign has spent today and in all, as this node's delivery state has it.
    public func spend(of campaign: CampaignID) -> (today: Micros, total: Micros) {
        delivery.spend(of: campaign, snapshot: catalog.snapshot, day: clock.now().day)
    }

    /// Records what a user did in the feed (validated first); the activity updater reads it.
    public func recordActivity(_ activity: Activity) async throws {
        try activity.validate()
        try await store.appendActivity(activity)
    }

    public func putUser(_ profile: UserProfile) async throws {
        let profile = profile.normalized()
        try profile.validate()
        try await store.upsertUser(profile)
        // What the store now holds: the new profile with the activity vector the server keeps.
        users.updateProfile(try await store.user(profile.id) ?? profile, for: profile.id)
    }

    /// Reloads a user's profile into the cache (after the server changed what it keeps of
    /// them, such as the activity vector), if the cache holds it.
    public func reloadProfile(_ id: UserID) async throws {
        guard users.lookup(id, now: clock.now().milliseconds) != nil else { return }
        users.updateProfile(try await store.user(id), for: id)
    }

    /// Applies one durably recorded event to live state: its campaign's spend, its ad's
    /// counters and, if cached, its user's caps and hides.
    public func applyRecorded(_ event: EventRecord, charged: Micros) {
        let snapshot = catalog.snapshot
        delivery.apply(event, charged: charged, snapshot: snapshot)
        users.apply(event, snapshot: snapshot)
    }
}

/// Decision ids: 64 random bits fixed at start, then a counter — unique across restarts and
/// nodes without coordination, and deterministic when seeded (simulator).
public struct DecisionIDGenerator: Sendable {
    private let prefix: String
    private var counter: UInt64 = 0

    public init(prefix: UInt64 = UInt64.random(in: .min ... .max)) {
        let hex = String(prefix, radix: 16)
        self.prefix = String(repeating: "0", count: 16 - hex.count) + hex
    }

    public mutating func next() -> String {
        counter &+= 1
        return prefix + String(counter, radix: 16)
    }
}

