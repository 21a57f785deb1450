import Domain
import Signing
import Storage

/// Writes to the catalog: validated, stored durably, then put in the in-memory catalog, which
/// publishes it to the decision path within `CatalogRefresher`'s interval.
public struct CatalogService: Sendable {
    public let store: any AdStore
    public let catalog: Catalog
    public let clock: any WallClock

    public init(store: any AdStore, catalog: Catalog, clock: any WallClock) {
        self.store = store
        self.catalog = catalog
        self.clock = clock
    }

    /// Creates an advertiser and returns it with its API key (shown once; stored hashed).
    public func createAdvertiser(name: String) async throws -> (Advertiser, apiKey: String) {
        let name = name.trimmingSpaces
        guard !name.isEmpty, name.count <= Limits.maxNameLength else {
            throw AdServeError.invalid("name", "must be 1-\(Limits.maxNameLength) characters")
        }
        let key = Secrets.newAPIKey(prefix: "adv")
        let advertiser = try await store.createAdvertiser(name: name, keyHash: Secrets.keyHash(key), at: clock.now())
        return (advertiser, key)
    }

    public func createCampaign(_ draft: Campaign) async throws -> Campaign {
        var campaign = draft
        campaign.targeting = campaign.targeting.normalized()
        campaign.createdAt = clock.now()
        try campaign.validate()
        guard try await store.advertiser(campaign.advertiserID) != nil else {
            throw AdServeError(.notFound, "advertiser \(campaign.advertiserID) not found", field: "advertiser_id")
        }
        let created = try await store.createCampaign(campaign)
        catalog.upsert(created)
        return created
    }

    public func updateCampaign(_ changed: Campaign) async throws -> Campaign {
        var campaign = changed
        campaign.targeting = campaign.targeting.normalized()
        try campaign.validate()
        try await store.updateCampaign(campaign)
        catalog.upsert(campaign)
        return campaign
    }

    public func createAd(_ draft: Ad) async throws -> Ad {
        var ad = draft
        ad.createdAt = clock.now()
        try ad.validate()
        guard try await store.campaign(ad.campaignID) != nil else {
            throw AdServeError(.notFound, "campaign \(ad.campaignID) not found", field: "campaign_id")
        }
        let created = try await store.createAd(ad)
        catalog.upsert(created)
        return created
    }

    public func updateAd(_ changed: Ad) async throws -> Ad {
        try changed.validate()
        try await store.updateAd(changed)
        catalog.upsert(changed)
        return changed
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
