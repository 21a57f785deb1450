import ContentEncoding
import Domain
import Foundation
import Events
import ModelServing
import Models
import Serving
import ContentUpdates
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

        // The test world's media are made-up https URLs: not fetched, the ad is encoded from its text.
        let worker = PendingAdEncoder(catalog: world.catalog, encoder: try encoder(), fetchesRemoteMedia: false)
        #expect(try await worker.encodePending() == 1)
        #expect(try await worker.encodePending() == 0)
        let stored = try #require(try await world.store.ad(ad.id))
        #expect(stored.embeddingStatus == .ready)
        let expected = try encoder().encode(text: ad.contentText).vector
        #expect(stored.embedding == expected)
        world.publish()
        // The catalog serves it kept as bytes: each component within half a step of the stored one.
        let served = try #require(world.serving.catalog.snapshot.adsByID[ad.id])
        #expect(served.isCompacted)
        let vector = try #require(stored.embedding)
        let step = vector.map(abs).max()! / 127
        #expect(zip(try #require(served.embedding), vector).allSatisfy { abs($0 - $1) <= step / 2 * 1.0001 })
    }

    @Test func aSuppliedVectorIsUsedAsGivenAndChangedTextMakesItPendingAgain() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let given = (0..<Limits.embeddingDimensions).map { Float($0 % 7) / 7 }
        let ad = try await world.catalog.createAd(Ad(
            id: AdID(0), campaignID: campaign.id, format: .image, mediaURLs: ["https://cdn.example/a.jpg"], caption: "Tea",
            company: "Leaf", product: "", description: "", embedding: given, createdAt: world.clock.now()))
        #expect(ad.embeddingStatus == .ready && ad.embedding == given)
        let worker = PendingAdEncoder(catalog: world.catalog, encoder: try encoder(), fetchesRemoteMedia: false)
        #expect(try await worker.encodePending() == 0)

        // New text without a vector: pending again; the old vector serves until the new one.
        let edited = try await world.catalog.updateAd(ad.id) { $0.caption = "Green tea from Kyoto" }
        #expect(edited.embeddingStatus == .pending && edited.embedding == given)
        #expect(try await worker.encodePending() == 1)
        let encoded = try #require(try await world.store.ad(ad.id))
        let expected = try encoder().encode(text: edited.contentText).vector
        #expect(encoded.embeddingStatus == .ready && encoded.embedding == expected)
        // A vector computed from text that has changed since is not stored.
        let before = encoded.contentSource
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

/// Users' activity vectors: what they do moves them, once, and the next decision sees it.
@Suite struct ActivityVectorTests {
    func encoder() throws -> PretrainedContentEncoder { try ContentEncoderTests.encoder.get() }

    @Test func decayHalvesTheOldAndAddsTheNew() {
        let t0 = Timestamp(milliseconds: 0)
        let first = ActivityVector.adding([1, 0], weight: 2, to: nil, asOf: nil, now: t0)
        #expect(first == [2, 0])
        let later = ActivityVector.adding([0, 1], weight: 1, to: first, asOf: t0, now: Timestamp(milliseconds: ActivityVector.halfLifeMilliseconds))
        #expect(abs(later[0] - 1) < 1e-6 && later[1] == 1)
        #expect(ActivityVector.weight(.view, seconds: 30) > ActivityVector.weight(.view, seconds: 1))
        #expect(ActivityVector.weight(.session, seconds: nil) == 0)
    }

    @Test func activityIsAddedOnceAndTheNextDecisionSeesIt() async throws {
        let world = try await TestWorld.make()
        let user = try await world.user("reader")
        let updater = ActivityVectorUpdater(serving: world.serving, encoder: try encoder())
        #expect(try await world.serving.profile(of: user)?.activityVector == nil)

        try await world.store.appendActivity(Activity(userID: user, type: .like, topics: ["espresso", "coffee"], at: world.clock.now()))
        try await world.store.appendActivity(Activity(userID: user, type: .session, at: world.clock.now()))
        #expect(try await updater.catchUp() == 2)
        let coffee = try encoder().encode(text: "espresso. coffee").vector
        let profile = try #require(try await world.serving.profile(of: user))
        let vector = try #require(profile.activityVector)
        #expect(VectorMath.cosine(vector, coffee) > 0.9999)
        // Read once: a second pass, or a new updater after a restart, adds nothing.
        #expect(try await updater.catchUp() == 0)
        #expect(try await ActivityVectorUpdater(serving: world.serving, encoder: try encoder()).catchUp() == 0)
        #expect(try await world.store.user(user)?.activityVector == vector)
        // The feed updating the profile keeps the vector.
        try await world.serving.putUser(UserProfile(id: user, age: 41, country: "us"))
        #expect(try await world.serving.profile(of: user)?.activityVector == vector)
    }

    @Test func viewedAndClickedAdsPullTheUserTowardThemAndHiddenOnesAway() async throws {
        let world = try await TestWorld.make()
        let user = try await world.user("viewer")
        let campaign = try await world.campaign(try await world.advertiser())
        let tea = try await world.ad(campaign, caption: "Green tea from Kyoto")
        let worker = PendingAdEncoder(catalog: world.catalog, encoder: try encoder(), fetchesRemoteMedia: false)
        try await worker.encodePending()
        world.publish()
        let teaVector = try #require(world.serving.catalog.ad(tea.id)?.embedding)
        let updater = ActivityVectorUpdater(serving: world.serving, encoder: try encoder())
        world.serving.observers.add(updater)

        try await world.store.appendActivity(Activity(userID: user, type: .view, topics: ["football"], seconds: 20, at: world.clock.now()))
        try await updater.catchUp()
        let before = VectorMath.cosine(try await world.store.user(user)?.activityVector, teaVector)
        try await world.store.appendActivity(Activity(userID: user, type: .view, adID: tea.id, seconds: 20, at: world.clock.now()))
        try await updater.catchUp()
        let viewed = VectorMath.cosine(try await world.store.user(user)?.activityVector, teaVector)
        #expect(viewed > before + 0.2)
        // What the ranker sees (and the serve log keeps) for this user and that ad.
        let shown = try #require(try await world.decide("viewer").placements.first { $0.ad.id == tea.id })
        let input = ClickFeatureInput(candidate: shown.candidate, user: try await world.serving.profile(of: user), context: FeedContext())
        // (The catalog keeps the ad's vector as bytes, `teaVector` is what they stand for; the
        // ranker multiplies the bytes and scales the sum once, so the two differ by rounding.)
        #expect(abs((input.userAdSimilarity ?? -2) - viewed) < 1e-6)
        // By name too: the view of the tea ad counts for its company and product (weight
        // 0.25 + 20/20 each), and the ranker reads both.
        let topics = try #require(try await world.store.user(user)?.recentTopics)
        #expect(topics == ["football": 1.25, "acme": 1.25, "thing": 1.25])
        #expect(input.recentTopicWeight == 2.5)

        let placement = try #require(try await world.decide("viewer").placements.first)
        world.clock.advance(milliseconds: 3_000)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .click, impressionToken: placement.impressionToken))
        // Clicks and hides wait for the updater's next pass, applied in the order heard.
        #expect(VectorMath.cosine(try await world.store.user(user)?.activityVector, teaVector) == viewed)
        try await updater.catchUp()
        let clicked = VectorMath.cosine(try await world.store.user(user)?.activityVector, teaVector)
        #expect(clicked > viewed)
        let hidden = try #require(try await world.decide("viewer").placements.first)
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .hide, impressionToken: hidden.impressionToken))
        try await updater.catchUp()
        #expect(VectorMath.cosine(try await world.store.user(user)?.activityVector, teaVector) < clicked)
        // The next decision reads the profile as updated.
        #expect(try await world.serving.profile(of: user)?.activityVector == world.store.user(user)?.activityVector)
    }

    /// A model trained on the features before the similarity existed is refused, not misread.
    @Test func modelsOfTheEarlierFeatureVersionAreRefused() throws {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 12))
        var meta = ModelMeta.untrained(kind: FTRLProximal.kind, target: .click, features: features, at: Timestamp(milliseconds: 0))
        #expect(throws: Never.self) { try ClickPredictor(meta: meta, model: FTRLProximal(hasher: features.hasher)) }
        meta.featureVersion = 3
        let error = #expect(throws: AdServeError.self) { try ClickPredictor(meta: meta, model: FTRLProximal(hasher: features.hasher)) }
        #expect(error?.message.contains("feature encoding 3") == true)
    }

}

/// Ads' pictures: read from `file://` and `data:` URLs while encoding; bad ones refused at upload
/// or recorded as `failed`, the ad serving on its text vector.
@Suite struct AdMediaTests {
    func encoder() throws -> PretrainedContentEncoder { try ContentEncoderTests.encoder.get() }
    static let picture = ImageEncoderTests.fixtures.appendingPathComponent("images/flat-shapes.png")

    func ad(_ world: TestWorld, _ campaign: Campaign, media: String, format: AdFormat = .image) async throws -> Ad {
        try await world.catalog.createAd(Ad(
            id: AdID(0), campaignID: campaign.id, format: format, mediaURLs: [media], caption: "Shapes", company: "Acme", product: "",
            description: "", createdAt: world.clock.now()))
    }

    @Test func pictureInADataOrFileURLGivesTheAdBothVectors() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let bytes = try Data(contentsOf: Self.picture)
        let inline = try await ad(world, campaign, media: "data:image/png;base64," + bytes.base64EncodedString())
        let file = try await ad(world, campaign, media: Self.picture.absoluteString)
        #expect(try await PendingAdEncoder(catalog: world.catalog, encoder: try encoder()).encodePending() == 2)
        let picture = try encoder().encode(imageAt: Self.picture.path)
        let text = try encoder().encode(text: inline.contentText).vector
        for id in [inline.id, file.id] {
            let stored = try #require(try await world.store.ad(id))
            #expect(stored.embeddingStatus == .ready && stored.embeddingError == nil)
            #expect(stored.imageEmbedding == picture.imageVector)
            let combined = VectorMath.unitLength(zip(text, picture.vector).map { $0 + $1 })
            #expect(ContentEncoderTests.cosine(try #require(stored.embedding), combined) > 0.99999)
        }
    }

    @Test func unreadableMediaFailWithTheReasonAndTheAdKeepsItsTextVector() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        let missing = try await ad(world, campaign, media: "file:///nonexistent/picture.png")
        let notAPicture = try await ad(world, campaign, media: ImageEncoderTests.fixtures.appendingPathComponent("text-encoder-reference.json").absoluteString)
        // An https medium is fetched; nothing listens on this port.
        let unreachable = try await ad(world, campaign, media: "https://127.0.0.1:9/picture.png")
        try await PendingAdEncoder(catalog: world.catalog, encoder: try encoder()).encodePending()
        for (id, reason) in [(missing.id, "no readable file"), (notAPicture.id, "could not read"), (unreachable.id, "cannot fetch https://127.0.0.1:9/picture.png")] {
            let stored = try #require(try await world.store.ad(id))
            #expect(stored.embeddingStatus == .failed)
            #expect(stored.embeddingError?.contains(reason) == true, "\(stored.embeddingError ?? "")")
            let text = try encoder().encode(text: stored.contentText).vector
            #expect(stored.embedding == text)
            #expect(stored.imageEmbedding == nil)
        }
        world.publish()
        #expect(!(try await world.decide("u").placements.isEmpty))
    }

    @Test func aDataURLThatIsNotMediaIsRefusedAtUpload() async throws {
        let world = try await TestWorld.make()
        let campaign = try await world.campaign(try await world.advertiser())
        for bad in ["data:text/plain;base64,aGVsbG8=", "data:image/png,notbase64", "data:image/png;base64,@@@"] {
            let error = await #expect(throws: AdServeError.self) { try await ad(world, campaign, media: bad) }
            #expect(error?.field == "media_urls[0]", "\(bad)")
        }
    }
}
