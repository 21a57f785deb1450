import ContentEncoding
import Domain
import Serving
import Services
import TestSupport
import Testing

/// Ads' content vectors: computed off the request path, supplied ones used as given, stale
/// ones recomputed when the text changes.
@Suite struct ContentVectorTests {
    func encoder() throws -> PretrainedContentEncoder { try ContentEncoderTests.encoder.get() }

    @Test func anAdServesAtOnceAndGetsItsVectorFromItsText() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let ad = try await world.ad(campaign, caption: "Trail running shoes")
        #expect(ad.embeddingStatus == .pending && ad.embedding == nil)
        world.publish()
        #expect(try await world.decide("u").placements.first?.ad.id == ad.id)

        let worker = PendingAdEncoder(catalog: world.catalog, encoder: try encoder())
        #expect(try await worker.encodePending() == 1)
        #expect(try await worker.encodePending() == 0)
        let stored = try #require(try await world.store.ad(ad.id))
        #expect(stored.embeddingStatus == .ready)
        let expected = try encoder().encode(text: ad.contentText).vector
        #expect(stored.embedding == expected)
        world.publish()
        #expect(world.serving.catalog.snapshot.adsByID[ad.id]?.embedding == stored.embedding)
    }

    @Test func aSuppliedVectorIsUsedAsGivenAndChangedTextMakesItPendingAgain() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let given = (0..<Limits.embeddingDimensions).map { Float($0 % 7) / 7 }
        let ad = try await world.catalog.createAd(Ad(
            id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: "Tea",
            company: "Leaf", product: "", description: "", embedding: given, createdAt: world.clock.now()))
        #expect(ad.embeddingStatus == .ready && ad.embedding == given)
        let worker = PendingAdEncoder(catalog: world.catalog, encoder: try encoder())
        #expect(try await worker.encodePending() == 0)

        // New text without a vector: pending again; the old vector serves until the new one.
        let edited = try await world.catalog.updateAd(ad.id) { $0.caption = "Green tea from Kyoto" }
        #expect(edited.embeddingStatus == .pending && edited.embedding == given)
        #expect(try await worker.encodePending() == 1)
        let encoded = try #require(try await world.store.ad(ad.id))
        let expected = try encoder().encode(text: edited.contentText).vector
        #expect(encoded.embeddingStatus == .ready && encoded.embedding == expected)
        // A vector computed from text that has changed since is not stored.
        let before = encoded.contentText
        _ = try await world.catalog.updateAd(ad.id) { $0.caption = "Black tea" }
        #expect(try await !world.catalog.storeEmbedding(given, for: ad.id, computedFrom: before))
        #expect(try await world.store.ad(ad.id)?.embeddingStatus == .pending)
    }

    @Test func vectorsOfTheWrongSizeOrNotFiniteAreRefusedNamingTheField() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        for bad in [[Float](repeating: 0.1, count: 3), [Float](repeating: 0.1, count: 385), [Float.nan] + [Float](repeating: 0, count: 383)] {
            let error = await #expect(throws: AdServeError.self) {
                try await world.catalog.createAd(Ad(
                    id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: "",
                    company: "A", product: "", description: "", embedding: bad, createdAt: world.clock.now()))
            }
            #expect(error?.field == "embedding")
        }
    }
}
