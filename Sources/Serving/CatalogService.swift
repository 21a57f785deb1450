import Domain
import Signing
import Storage

/// How much of the catalog one advertiser may hold (any status). They bound what one key can
/// cost everyone else: memory, snapshot rebuilds, and the campaigns and ads every decision's
/// matching walks past.
public struct CatalogQuotas: Sendable {
    public var campaignsPerAdvertiser = 1_000
    public var adsPerAdvertiser = 10_000
    public init() {}
}

/// Writes to the catalog: validated, stored durably, then put in the in-memory catalog, which
/// publishes it to the decision path within `ServingRefresher`'s interval.
public struct CatalogService: Sendable {
    public let store: any AdStore
    public let catalog: CatalogPublisher
    public let clock: any WallClock
    public let quotas: CatalogQuotas

    public init(store: any AdStore, catalog: CatalogPublisher, clock: any WallClock, quotas: CatalogQuotas = CatalogQuotas()) {
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.quotas = quotas
    }

    /// Creates an advertiser and returns it with its API key (shown once; stored hashed).
    // Reads, for the API's handlers.

    public func advertiser(_ id: AdvertiserID) async throws -> Advertiser? { try await store.advertiser(id) }
    public func keys(of advertiser: AdvertiserID) async throws -> [AdvertiserKey] { try await store.keys(of: advertiser) }
    public func campaigns(of advertiser: AdvertiserID) async throws -> [Campaign] { try await store.campaigns(of: advertiser) }
    public func campaign(_ id: CampaignID) async throws -> Campaign? { try await store.campaign(id) }
    public func ad(_ id: AdID) async throws -> Ad? { try await store.ad(id) }
    public func ads(of campaign: CampaignID) async throws -> [Ad] { try await store.ads(of: campaign) }

    public func createAdvertiser(name: String) async throws -> (Advertiser, apiKey: String) {
        let name = name.trimmingSpaces
        try Limits.checkText(name, field: "name", characters: Limits.maxNameLength, required: true, multiline: false)
        let key = Secrets.newAPIKey(prefix: "adv")
        let advertiser = try await store.createAdvertiser(name: name, keyHash: Secrets.keyHash(key), at: clock.now())
        return (advertiser, key)
    }

    /// A new API key for an advertiser (shown once), beside its others: rotation is a new key,
    /// then revoking the old one once every client has moved.
    public func createKey(for advertiser: AdvertiserID) async throws -> (AdvertiserKey, apiKey: String) {
        let key = Secrets.newAPIKey(prefix: "adv")
        return (try await store.addKey(to: advertiser, keyHash: Secrets.keyHash(key), at: clock.now()), key)
    }

    /// Revokes one key at once: the next request with it is refused.
    public func revokeKey(_ id: Int64, of advertiser: AdvertiserID) async throws -> AdvertiserKey {
        guard let revoked = try await store.revokeKey(id, of: advertiser, at: clock.now()) else {
            throw AdServeError.notFound("key \(id) of advertiser \(advertiser)")
        }
        return revoked
    }

    public func createCampaign(_ draft: Campaign) async throws -> Campaign {
        var campaign = draft
        campaign.targeting = campaign.targeting.normalized()
        campaign.createdAt = clock.now()
        try campaign.validate()
        guard try await store.advertiser(campaign.advertiserID) != nil else {
            throw AdServeError(.notFound, "advertiser \(campaign.advertiserID) not found", field: "advertiser_id")
        }
        if campaign.status == .paused { campaign.pausedAt = campaign.createdAt }
        let held = try await store.catalogSize(of: campaign.advertiserID)
        if held.campaigns >= quotas.campaignsPerAdvertiser {
            throw AdServeError(
                .quotaExceeded, "advertiser \(campaign.advertiserID) has \(held.campaigns) campaigns, the most one advertiser may have",
                field: "advertiser_id")
        }
        let created = try await store.createCampaign(campaign)
        catalog.upsert(created)
        return created
    }

    /// Changes a campaign atomically (read, `change`, validate, write); its owner cannot change.
    /// A pause is timed (`pausedAt`), for the grace after which its tokens stop being charged.
    public func updateCampaign(_ id: CampaignID, _ change: @escaping @Sendable (inout Campaign) throws -> Void) async throws -> Campaign {
        let now = clock.now()
        let updated = try await store.updateCampaign(id) { campaign in
            let owner = campaign.advertiserID
            let wasPaused = campaign.status == .paused
            try change(&campaign)
            campaign.advertiserID = owner
            if campaign.status == .active {
                campaign.pausedAt = nil
            } else if !wasPaused || campaign.pausedAt == nil {
                campaign.pausedAt = now
            }
            campaign.targeting = campaign.targeting.normalized()
            try campaign.validate()
        }
        catalog.upsert(updated)
        return updated
    }

    public func createAd(_ draft: Ad) async throws -> Ad {
        var ad = draft
        ad.createdAt = clock.now()
        try ad.validate()
        guard let campaign = try await store.campaign(ad.campaignID) else {
            throw AdServeError(.notFound, "campaign \(ad.campaignID) not found", field: "campaign_id")
        }
        let held = try await store.catalogSize(of: campaign.advertiserID)
        if held.ads >= quotas.adsPerAdvertiser {
            throw AdServeError(
                .quotaExceeded, "advertiser \(campaign.advertiserID) has \(held.ads) ads, the most one advertiser may have", field: "campaign_id")
        }
        let created = try await store.createAd(ad)
        catalog.upsert(created)
        return created
    }

    /// Changes an ad atomically (read, `change`, validate, write); its campaign cannot change.
    /// A supplied vector is used as given (`ready`); changed text without one makes the vector
    /// `pending` again (the old one serves until the new one is computed).
    public func updateAd(_ id: AdID, _ change: @escaping @Sendable (inout Ad) throws -> Void) async throws -> Ad {
        let updated = try await store.updateAd(id) { ad in
            let campaign = ad.campaignID
            let text = ad.contentSource
            let embedding = ad.embedding
            try change(&ad)
            ad.campaignID = campaign
            if ad.embedding != embedding {
                ad.embeddingStatus = ad.embedding == nil ? .pending : .ready
                ad.embeddingError = nil
            } else if ad.contentSource != text {
                ad.embeddingStatus = .pending
                ad.embeddingError = nil
            }
            try ad.validate()
        }
        catalog.upsert(updated)
        return updated
    }

    /// Stores computed vectors, unless the ad's text or media changed since `source` was read
    /// (then it stays pending and is computed again). With a `failure`, the ad is `failed` with
    /// that reason and keeps `vector` (its text's). Returns whether it was stored.
    @discardableResult
    public func storeEmbedding(
        _ vector: [Float], image: [Float]? = nil, failure: String? = nil, for id: AdID, computedFrom source: String
    ) async throws -> Bool {
        try await finishEmbedding(id, computedFrom: source) { ad in
            ad.embedding = vector
            ad.imageEmbedding = image
            ad.embeddingStatus = failure == nil ? .ready : .failed
            ad.embeddingError = failure.map { String($0.prefix(500)) }
        }
    }

    private struct Superseded: Error {}

    private func finishEmbedding(_ id: AdID, computedFrom text: String, _ finish: @escaping @Sendable (inout Ad) -> Void) async throws -> Bool {
        do {
            let updated = try await store.updateAd(id) { ad in
                guard ad.embeddingStatus == .pending, ad.contentSource == text else { throw Superseded() }
                finish(&ad)
                try ad.validate()
            }
            catalog.upsert(updated)
            return true
        } catch is Superseded {
            return false
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
