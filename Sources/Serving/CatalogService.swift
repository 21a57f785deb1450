import Domain
import Signing
import Storage

/// Writes to the catalog: validated, stored durably, then put in the in-memory catalog, which
/// publishes it to the decision path within `ServingRefresher`'s interval.
public struct CatalogService: Sendable {
    public let store: any AdStore
    public let catalog: CatalogPublisher
    public let clock: any WallClock

    public init(store: any AdStore, catalog: CatalogPublisher, clock: any WallClock) {
        self.store = store
        self.catalog = catalog
        self.clock = clock
    }

    /// Creates an advertiser and returns it with its API key (shown once; stored hashed).
    public func createAdvertiser(name: String) async throws -> (Advertiser, apiKey: String) {
        let name = name.trimmingSpaces
        try Limits.checkText(name, field: "name", characters: Limits.maxNameLength, required: true, multiline: false)
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

    /// Changes a campaign atomically (read, `change`, validate, write); its owner cannot change.
    public func updateCampaign(_ id: CampaignID, _ change: @escaping @Sendable (inout Campaign) throws -> Void) async throws -> Campaign {
        let updated = try await store.updateCampaign(id) { campaign in
            let owner = campaign.advertiserID
            try change(&campaign)
            campaign.advertiserID = owner
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
        guard try await store.campaign(ad.campaignID) != nil else {
            throw AdServeError(.notFound, "campaign \(ad.campaignID) not found", field: "campaign_id")
        }
        let created = try await store.createAd(ad)
        catalog.upsert(created)
        return created
    }

    /// Changes an ad atomically (read, `change`, validate, write); its campaign cannot change.
    public func updateAd(_ id: AdID, _ change: @escaping @Sendable (inout Ad) throws -> Void) async throws -> Ad {
        let updated = try await store.updateAd(id) { ad in
            let campaign = ad.campaignID
            try change(&ad)
            ad.campaignID = campaign
            try ad.validate()
        }
        catalog.upsert(updated)
        return updated
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
