import Domain
import Signing
import Storage

/// What one pull of the fleet's state found.
public struct FleetSyncReport: Sendable, Equatable {
    /// Campaigns and ads written since the last pull (by any node).
    public var catalogRows: Int
    /// Campaigns whose spend rose because other nodes charged them.
    public var campaignsRaised: Int
    /// Whether another node had rotated the token-signing secret.
    public var secretRotated = false
}

extension DecisionService {
    /// Takes in what other serving nodes over the same store wrote: catalog changes (published
    /// at once), the token-signing secret (if another node rotated it) and every campaign's
    /// spend, so that a budget another node exhausted stops serving here too; with `counters`, the all-time ad counters as well (rule-based rates,
    /// exploration). Run on a short interval by the server (`serve --fleet-sync`); a node alone
    /// on its store finds nothing new. Throws if the store cannot be read: serving goes on from
    /// what this node knows.
    @discardableResult
    public func syncWithFleet(counters: Bool) async throws -> FleetSyncReport {
        let rows = try await catalog.pullChanges(from: store)
        if rows > 0 { refresh(rebuildRanking: false) }
        let rotated = try await syncTokenSecret()
        let now = clock.now()
        let day = now.day
        let spend = try await store.campaignSpend(day: day)
        let snapshot = catalog.snapshot
        let raised = delivery.mergeFleetSpend(spend, snapshot: snapshot, day: day)
        if counters { delivery.mergeFleetCounters(try await store.adCounters(), snapshot: snapshot) }
        // Pacing steps on the spend just read: every node on the same numbers.
        pacer?.tick(now: now, snapshot: snapshot, delivery: delivery)
        return FleetSyncReport(catalogRows: rows, campaignsRaised: raised, secretRotated: rotated)
    }

    /// Takes the token-signing secret as the store holds it: after another node rotated it,
    /// this node signs with the new key and still verifies the old one within its grace.
    /// Returns whether it changed.
    @discardableResult
    public func syncTokenSecret() async throws -> Bool {
        let key = try await store.secret(named: Self.tokenSecretName) { Secrets.randomBytes(32) }
        return signer.adopt(current: key, previous: try await store.previousSecret(named: Self.tokenSecretName))
    }

    /// For a token this node cannot verify: reads the secret again, in case another node
    /// rotated it since the last sync — at most once per `secretRecheckInterval`, so forged
    /// tokens cannot make every request read the store. Returns whether the secret changed.
    public func recheckTokenSecret() async -> Bool {
        let due = secretRecheck.withLock { last in
            let now = ContinuousClock.now
            if let last = last, now - last < Self.secretRecheckInterval { return false }
            last = now
            return true
        }
        guard due else { return false }
        return (try? await syncTokenSecret()) ?? false
    }

    static let secretRecheckInterval = Duration.seconds(1)
}
