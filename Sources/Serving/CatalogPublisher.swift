import Domain
import Storage
import Synchronization

/// The in-memory catalog: a mutable master copy that writes update, and the immutable
/// `CatalogSnapshot` that decisions read. Writes mark it dirty; `publishIfChanged()` (run by
/// `ServingRefresher` every 100 ms, or directly by tests and tools) rebuilds and swaps the
/// snapshot, so a rebuild costs once per burst of writes, never per request.
public final class CatalogPublisher: Sendable {
    private struct Master {
        var campaigns: [CampaignID: Campaign] = [:]
        var ads: [AdID: Ad] = [:]
        var campaignSlots: [CampaignID: Int32] = [:]
        var adSlots: [AdID: Int32] = [:]
        var version: UInt64 = 0
        var publishedVersion: UInt64 = 0

        mutating func assignSlots(campaign: CampaignID) {
            if campaignSlots[campaign] == nil { campaignSlots[campaign] = Int32(campaignSlots.count) }
        }

        mutating func assignSlots(ad: AdID) {
            if adSlots[ad] == nil { adSlots[ad] = Int32(adSlots.count) }
        }
    }

    private let master = Mutex(Master())
    /// The store's catalog revision this node has read up to (`catalogChanges(after:)`).
    private let storeRevision = Mutex<Int64>(-1)
    private let published: Mutex<CatalogSnapshot>
    private let delivery: DeliveryState

    public init(delivery: DeliveryState) {
        self.delivery = delivery
        self.published = Mutex(CatalogSnapshot(campaigns: [:], ads: [:], campaignSlots: [:], adSlots: [:]))
    }

    /// Loads every campaign and ad from the store and publishes them: the first pull, from
    /// revision -1 (rows imported with revision 0 too, all from one snapshot).
    public func load(from store: some AdStore) async throws {
        try await pullChanges(from: store)
        publishIfChanged()
    }

    /// Reads the campaigns and ads written to the store since the last load or pull (by any node
    /// over the same store) into the catalog; returns how many rows changed. The next
    /// `publishIfChanged()` serves them.
    @discardableResult
    public func pullChanges(from store: some AdStore) async throws -> Int {
        let changes = try await store.catalogChanges(after: storeRevision.withLock { $0 })
        take(changes)
        storeRevision.withLock { $0 = max($0, changes.revision) }
        return changes.campaigns.count + changes.ads.count
    }

    /// Puts changed campaigns and ads in the catalog (each unless a newer revision of it is
    /// already there); the next `publishIfChanged()` serves them.
    private func take(_ changes: CatalogChanges) {
        guard !changes.campaigns.isEmpty || !changes.ads.isEmpty else { return }
        master.withLock { m in
            for campaign in changes.campaigns where (m.campaigns[campaign.id]?.revision ?? .min) <= campaign.revision {
                m.campaigns[campaign.id] = campaign
                m.assignSlots(campaign: campaign.id)
            }
            for ad in changes.ads where (m.ads[ad.id]?.revision ?? .min) <= ad.revision {
                m.ads[ad.id] = ad.compacted()
                m.assignSlots(ad: ad.id)
            }
            m.version &+= 1
        }
    }

    /// The snapshot a request reads from start to end.
    public var snapshot: CatalogSnapshot { published.withLock { $0 } }

    /// Puts a stored campaign in the catalog, unless a newer revision of it is already there.
    public func upsert(_ campaign: Campaign) {
        master.withLock { m in
            if let current = m.campaigns[campaign.id], current.revision > campaign.revision { return }
            m.campaigns[campaign.id] = campaign
            m.assignSlots(campaign: campaign.id)
            m.version &+= 1
        }
    }

    /// Puts a stored ad in the catalog, unless a newer revision of it is already there.
    public func upsert(_ ad: Ad) {
        let ad = ad.compacted()
        master.withLock { m in
            if let current = m.ads[ad.id], current.revision > ad.revision { return }
            m.ads[ad.id] = ad
            m.assignSlots(ad: ad.id)
            m.version &+= 1
        }
    }

    public func campaign(_ id: CampaignID) -> Campaign? { master.withLock { $0.campaigns[id] } }

    public func ad(_ id: AdID) -> Ad? { master.withLock { $0.ads[id] } }

    /// Rebuilds and publishes the snapshot if anything changed since the last one.
    /// Returns whether it published.
    @discardableResult
    public func publishIfChanged() -> Bool {
        let copy: (campaigns: [CampaignID: Campaign], ads: [AdID: Ad], campaignSlots: [CampaignID: Int32], adSlots: [AdID: Int32], version: UInt64)? =
            master.withLock { m in
                guard m.version != m.publishedVersion else { return nil }
                return (m.campaigns, m.ads, m.campaignSlots, m.adSlots, m.version)
            }
        guard let copy else { return false }
        // Built outside the lock: writes go on while the index is rebuilt.
        let snapshot = CatalogSnapshot(campaigns: copy.campaigns, ads: copy.ads, campaignSlots: copy.campaignSlots, adSlots: copy.adSlots, version: copy.version)
        delivery.ensureCapacity(campaigns: copy.campaignSlots.count, ads: copy.adSlots.count)
        let newer = published.withLock { current in
            // Two publishers racing: keep the newer snapshot.
            guard current.version < snapshot.version else { return false }
            current = snapshot
            return true
        }
        if newer { delivery.retainYoung(activeIn: snapshot) }
        master.withLock { m in m.publishedVersion = max(m.publishedVersion, copy.version) }
        return true
    }
}
