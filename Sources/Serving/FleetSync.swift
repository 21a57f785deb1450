import Domain
import Storage

/// What one pull of the fleet's state found.
public struct FleetSyncReport: Sendable, Equatable {
    /// Campaigns and ads written since the last pull (by any node).
    public var catalogRows: Int
    /// Campaigns whose spend rose because other nodes charged them.
    public var campaignsRaised: Int
}

extension DecisionService {
    /// Takes in what other serving nodes over the same store wrote: catalog changes (published
    /// at once) and every campaign's spend, so that a budget another node exhausted stops
    /// serving here too; with `counters`, the all-time ad counters as well (rule-based rates,
    /// exploration). Run on a short interval by the server (`serve --fleet-sync`); a node alone
    /// on its store finds nothing new. Throws if the store cannot be read: serving goes on from
    /// what this node knows.
    @discardableResult
    public func syncWithFleet(counters: Bool) async throws -> FleetSyncReport {
        let rows = try await catalog.pullChanges(from: store)
        if rows > 0 { refresh(rebuildRanking: false) }
        let now = clock.now()
        let day = now.day
        let spend = try await store.campaignSpend(day: day)
        let snapshot = catalog.snapshot
        let raised = delivery.mergeFleetSpend(spend, snapshot: snapshot, day: day)
        if counters { delivery.mergeFleetCounters(try await store.adCounters(), snapshot: snapshot) }
        // Pacing steps on the spend just read: every node on the same numbers.
        pacer?.tick(now: now, snapshot: snapshot, delivery: delivery)
        return FleetSyncReport(catalogRows: rows, campaignsRaised: raised)
    }
}
