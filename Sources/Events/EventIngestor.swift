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

/// What a person cannot do, and how long a pause takes to stop charges. Every click is checked
/// before it is charged; one that breaks a rule is recorded as invalid (`invalid_clicks`), not
/// charged, not counted as a click and not learned from.
public struct EventRules: Sendable {
    /// A click sooner than this after its ad was served (the token's time) is not a person's.
    public var minimumClickDelayMilliseconds: Int64 = 1_000
    /// A user's clicks within an hour beyond this many are not a person's.
    public var maxClicksPerUserPerHour = 20
    /// A user's clicks on one campaign within a day beyond this many are repeated clicking.
    public var maxClicksPerUserPerCampaignPerDay = 3
    /// Events on tokens of a paused campaign are still charged for this long after the pause
    /// (ads already on screens when it was paused), then recorded without charge.
    public var pauseGraceMilliseconds: Int64 = 5 * 60_000

    public init() {}
}

/// What ingesting one event did: the store's outcome, and why a click was found invalid.
public struct IngestedEvent: Sendable, Equatable {
    public var outcome: EventOutcome
    public var invalidReason: InvalidClickReason?
    public var duplicate: Bool { outcome.duplicate }
}

/// Event ingestion and billing. Verifies the signed token, filters invalid clicks, records the
/// event exactly once in the store — with its charge, cut to the remaining budget, in the same
/// durable transaction — and only then updates live delivery state. Nothing is acknowledged
/// before it is durable; a repeated event is acknowledged as a duplicate and changes nothing.
public struct EventIngestor: Sendable {
    public let store: any AdStore
    public let serving: DecisionService
    public let rules: EventRules

    public init(serving: DecisionService, rules: EventRules = EventRules()) {
        self.store = serving.store
        self.serving = serving
        self.rules = rules
    }

    public func ingest(_ event: IncomingEvent) async throws -> IngestedEvent {
        let now = serving.clock.now()
        let token = try await verified(event.impressionToken, now: now)
        let campaign = serving.catalog.campaign(token.campaignID)
        if let value = event.valueMicros {
            let max = min(campaign?.maxConversionValueMicros ?? Limits.maxMoney, Limits.maxMoney)
            if value < 0 || value > max {
                throw AdServeError.invalid("value_micros", "must be between 0 and \(max), the campaign's max_conversion_value_micros")
            }
        }
        var invalid: InvalidClickReason?
        switch event.type {
        case .click:
            // A click proves the impression: record it first if the feed has not reported it yet,
            // so the impression is never missing from counts or CPM billing.
            _ = try await record(.impression, token, campaign, value: nil, invalid: nil, at: now)
            // A repeated click is a duplicate, not a new invalid one: judge first-time clicks only.
            if try await !store.hasEvent(placementKey: token.placementKey, type: .click) {
                invalid = try await invalidReason(click: token, at: now)
            }
        case .conversion:
            guard try await store.hasEvent(placementKey: token.placementKey, type: .click) else {
                throw AdServeError(.conflict, "a conversion needs a recorded click on the same impression token", field: "impression_token")
            }
        case .impression, .hide, .hideAdvertiser, .notRelevant:
            break
        }
        let outcome = try await record(event.type, token, campaign, value: event.valueMicros, invalid: invalid, at: now)
        return IngestedEvent(outcome: outcome, invalidReason: outcome.duplicate ? nil : invalid)
    }

    /// The token, verified; one this node cannot verify is tried again after reading the
    /// secret (another node may have rotated it since this one last synced).
    private func verified(_ text: String, now: Timestamp) async throws -> ImpressionToken {
        do {
            return try serving.signer.verify(text, now: now)
        } catch {
            guard await serving.recheckTokenSecret() else { throw error }
            return try serving.signer.verify(text, now: now)
        }
    }

    /// Why this click is not a person's, or nil. Counts include the user's invalid clicks: a bot
    /// stays caught.
    func invalidReason(click token: ImpressionToken, at now: Timestamp) async throws -> InvalidClickReason? {
        if now.milliseconds - token.issuedAt.milliseconds < rules.minimumClickDelayMilliseconds { return .tooFast }
        let hourAgo = Timestamp(milliseconds: now.milliseconds - Timestamp.millisecondsPerHour)
        let lastHour = try await store.clickCount(of: token.userID, campaign: nil, since: hourAgo, upTo: rules.maxClicksPerUserPerHour)
        if lastHour >= rules.maxClicksPerUserPerHour { return .userClickRate }
        let dayAgo = Timestamp(milliseconds: now.milliseconds - Timestamp.millisecondsPerDay)
        let onCampaign = try await store.clickCount(
            of: token.userID, campaign: token.campaignID, since: dayAgo, upTo: rules.maxClicksPerUserPerCampaignPerDay)
        if onCampaign >= rules.maxClicksPerUserPerCampaignPerDay { return .repeatedCampaign }
        return nil
    }

    private func record(
        _ type: EventType, _ token: ImpressionToken, _ campaign: Campaign?, value: Micros?, invalid: InvalidClickReason?, at now: Timestamp
    ) async throws -> EventOutcome {
        let billed = token.objective.billedEvent == type && invalid == nil && !pauseGraceOver(campaign, at: now)
        let record = EventRecord(
            placementKey: token.placementKey, type: type, userID: token.userID, adID: token.adID, campaignID: token.campaignID,
            decisionID: token.decisionID, priceMicros: billed ? token.priceMicros : 0, valueMicros: value, at: now, invalidReason: invalid)
        let outcome = try await store.record(record)
        if !outcome.duplicate {
            serving.applyRecorded(record, charged: outcome.chargedMicros)
            if invalid == nil {
                for observer in serving.observers.all { observer.recorded(record) }
            }
        }
        return outcome
    }

    /// Whether the campaign was paused longer ago than the grace period.
    private func pauseGraceOver(_ campaign: Campaign?, at now: Timestamp) -> Bool {
        guard let campaign, campaign.status == .paused, let pausedAt = campaign.pausedAt else { return false }
        return now.milliseconds - pausedAt.milliseconds > rules.pauseGraceMilliseconds
    }
}
