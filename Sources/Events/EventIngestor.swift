import Domain
import Serving
import Storage

/// What the feed backend reports about a served ad.
public struct IncomingEvent: Sendable {
    public var type: EventType
    public var impressionToken: String
    public var valueMicros: Micros?
    public init(type: EventType, impressionToken: String, valueMicros: Micros? = nil) {
        self.type = type
        self.impressionToken = impressionToken
        self.valueMicros = valueMicros
    }
}

/// Event ingestion and billing. Verifies the signed token, records the event exactly once in the
/// store — with its charge, cut to the remaining budget, in the same durable transaction — and
/// only then updates live delivery state. Nothing is acknowledged before it is durable; a
/// repeated event is acknowledged as a duplicate and changes nothing.
public struct EventIngestor: Sendable {
    public let store: any AdStore
    public let serving: DecisionService

    public init(serving: DecisionService) {
        self.store = serving.store
        self.serving = serving
    }

    public func ingest(_ event: IncomingEvent) async throws -> EventOutcome {
        let now = serving.clock.now()
        let token = try serving.signer.verify(event.impressionToken, now: now)
        if let value = event.valueMicros, value < 0 || value > Limits.maxMoney {
            throw AdServeError.invalid("value_micros", "must be between 0 and \(Limits.maxMoney)")
        }
        switch event.type {
        case .click:
            // A click proves the impression: record it first if the feed has not reported it yet,
            // so the impression is never missing from counts or CPM billing.
            _ = try await record(.impression, token, value: nil, at: now)
        case .conversion:
            guard try await store.hasEvent(placementKey: token.placementKey, type: .click) else {
                throw AdServeError(.conflict, "a conversion needs a recorded click on the same impression token", field: "impression_token")
            }
        case .impression, .hide:
            break
        }
        return try await record(event.type, token, value: event.valueMicros, at: now)
    }

    private func record(_ type: EventType, _ token: ImpressionToken, value: Micros?, at now: Timestamp) async throws -> EventOutcome {
        let billed = token.objective.billedEvent == type
        let record = EventRecord(
            placementKey: token.placementKey, type: type, userID: token.userID, adID: token.adID, campaignID: token.campaignID,
            decisionID: token.decisionID, priceMicros: billed ? token.priceMicros : 0, valueMicros: value, at: now)
        let outcome = try await store.record(record)
        if !outcome.duplicate {
            serving.delivery.apply(record, charged: outcome.chargedMicros, snapshot: serving.catalog.snapshot)
            for observer in serving.observers.all { observer.recorded(type, placementKey: record.placementKey, at: now) }
        }
        return outcome
    }
}
