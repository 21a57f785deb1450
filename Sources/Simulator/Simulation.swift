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
public struct Simulation: Sendable {
    public struct Configuration: Sendable {
        public var size = World.Size.simulation
        public var days = 7
        public var seed: UInt64 = 1
        public var arms: [String] = ["baseline", "random"]
        /// Organic posts per page; the default ad load opens 2 ad slots in 10 posts.
        public var organicPerPage = 10
        public var maxPagesPerSession = 12
        /// Share of impressions the feed sends twice (deduplication is exercised, never billed twice).
        public var duplicateRate = 0.01
        public var behaviour = Behaviour()
        public init() {}
    }

    public let configuration: Configuration
    public init(configuration: Configuration) { self.configuration = configuration }

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
        let arms = try config.arms.map { try Arms.named($0) }
        guard !arms.isEmpty else { throw AdServeError.invalid("arms", "name at least one arm") }
        guard config.days > 0 else { throw AdServeError.invalid("days", "must be positive") }

        let start = Timestamp(milliseconds: 1_780_272_000_000)  // 2026-06-01 00:00 UTC
        let world = World(size: config.size, seed: config.seed, start: start)
        guard try await store.isEmpty() else { throw AdServeError.invalid("store", "the simulation needs an empty store") }
        try await store.importBatch(world.batch)

        let clock = ManualClock(start)
        var serving = ServingConfiguration()
        serving.profileCacheCapacity = config.size.users
        let base = try await DecisionService.open(store: store, clock: clock, configuration: serving, decisionIDs: DecisionIDGenerator(prefix: config.seed))
        let paths = arms.enumerated().map { index, arm in arm.servingPath(base: base, seed: config.seed &+ UInt64(index + 1) &* 0x9E37_79B9) }
        if let log { base.observers.add(ServeLogger(write: log)) }
        for arm in arms { if let observer = arm.observer { base.observers.add(observer) } }
        let ingestor = EventIngestor(serving: base)
        var state = RunState(world: world, arms: arms.count, days: config.days, seed: config.seed)
        let userArm = world.userIDs.map { Arms.assign($0, arms: arms.count, salt: config.seed) }
        var budgetDays: [SimulationReport.BudgetDay] = []

        for day in 0..<config.days {
            let dayStart = start.adding(milliseconds: Int64(day) * Timestamp.millisecondsPerDay)
            let dayEnd = dayStart.adding(milliseconds: Timestamp.millisecondsPerDay)
            state.scheduleSessions(day: day, dayStart: dayStart, behaviour: config.behaviour)
            var lastRefresh = dayStart
            while let next = state.queue.min, next.time < dayEnd {
                _ = state.queue.removeMin()
                clock.set(next.time)
                if next.time.milliseconds - lastRefresh.milliseconds >= 10 * 60_000 {
                    for arm in arms { arm.advance(to: next.time) }
                    for path in paths { path.refresh(rebuildRanking: true) }
                    lastRefresh = next.time
                }
                switch next.action {
                case .session(let user):
                    try await store.appendActivity(state.organicActivity(user: user, at: next.time))
                    state.startSession(user: user, arm: userArm[user], day: day, at: next.time)
                case .page(let session):
                    let arm = userArm[session.user]
                    let context = FeedContext(
                        device: world.userDevice[session.user], hour: next.time.hourOfDay, sessionPosition: session.page * config.organicPerPage)
                    let decision = try await paths[arm].decide(userID: world.userIDs[session.user], context: context, organicCount: config.organicPerPage)
                    state.servePage(session, decision: decision, arm: arm, at: next.time, config: config)
                case .event(let event):
                    // Every event the simulated feed sends must be accepted: an error here is a bug.
                    let result = try await ingestor.ingest(IncomingEvent(type: event.type, impressionToken: event.token))
                    state.charged(result.outcome.chargedMicros, user: event.user, arm: userArm[event.user], day: event.day)
                }
            }
            state.endDay(day, behaviour: config.behaviour)
            let spend = try await store.campaignSpend(day: dayStart.day)
            budgetDays.append(SimulationReport.BudgetDay(day: day + 1, campaigns: world.batch.campaigns, spend: spend))
            for arm in arms { try await arm.endOfDay(day) }
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
        let budgets = Dictionary(uniqueKeysWithValues: world.batch.campaigns.map { ($0.id, $0) })
        for row in try await store.campaignSpend(day: start.day) {
            if let campaign = budgets[row.campaignID] { overspend = max(overspend, row.totalMicros - campaign.totalBudgetMicros) }
        }
        for day in budgetDays { overspend = max(overspend, day.maxOverspendMicros) }
        let report = SimulationReport(
            seed: config.seed, days: config.days, users: config.size.users, ads: world.batch.ads.count,
            campaigns: world.batch.campaigns.count, arms: arms.map(\.name), state: state, userArm: userArm, budgetDays: budgetDays)
        return Outcome(
            report: report, chargedMicros: state.totalCharged, storeSpendMicros: storeSpend, maxOverspendMicros: overspend,
            notes: Dictionary(arms.map { ($0.name, $0.notes) }, uniquingKeysWith: +))
    }
}
