import Domain
import Foundation
import ModelServing
import Models
import Serving
import Testing
import TestSupport

/// The learned ranker's serving shortcuts: each must give what the plain computation gives.
@Suite struct LearnedRankerTests {
    static let t0 = TestWorld.start

    /// An FTRL model trained on a few examples where the caption word decides the click, so
    /// that predictions differ by ad; identity calibration.
    static func trainedModel(_ target: PredictionTarget, clicked: String, seed: UInt64 = 0x5EED_AD5E) throws -> ClickPredictor {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 12, seed: seed))
        var model = FTRLProximal(hasher: features.hasher)
        for round in 0..<200 {
            for word in ["alpha", "beta", "gamma"] {
                let input = ClickFeatureInput(
                    age: 30, gender: "female", country: "us", language: "en", interests: ["travel"], adId: 1, campaignId: 1, advertiserId: 1,
                    format: "image", objective: "traffic", caption: "\(word) offer", adImpressions: 10, adClicks: 1, adConversions: 0,
                    adAgeHours: 3, userCampaignImpressions: 0, device: "ios", hour: 12, sessionPosition: nil)
                model.update(features.encode(input), label: word == clicked && round % 2 == 0)
            }
        }
        let meta = ModelMeta(
            kind: FTRLProximal.kind, target: target, createdAt: t0, trainedFrom: t0, trainedTo: t0, trainingExamples: 600, trainingBaseRate: 0.2,
            features: features, negativeKeepRate: 1, calibrator: .identity,
            metrics: OfflineMetrics(predictions: [], labels: []), evaluatedOn: "none")
        return try ClickPredictor(meta: meta, model: model)
    }

    static func candidate(slot: Int32, objective: Objective, caption: String, revision: Int64 = 0, embedding: [Float]? = nil) -> Candidate {
        let ad = Ad(
            id: AdID(Int64(slot) + 1), campaignID: CampaignID(Int64(slot) + 1), format: .image, mediaURLs: ["https://cdn.example/a.jpg"],
            caption: caption, company: "Acme", product: "thing", description: "a thing", embedding: embedding, createdAt: t0, revision: revision)
        return Candidate(
            adID: ad.id, campaignID: ad.campaignID, advertiserID: AdvertiserID(Int64(slot) + 1), objective: objective, bidMicros: 1_000_000,
            ad: ad, adAgeHours: 2, impressions: 100, clicks: 3, conversions: 1, adSlot: slot)
    }

    static let user = UserProfile(
        id: try! UserID(validating: "u1"), age: 30, gender: "female", country: "us", language: "en", interests: ["travel"],
        activityVector: (0..<384).map { Float(sin(Double($0))) }, activityVectorAt: t0)

    /// The ranker builds the request's features from the request's side alone (no caption
    /// unpacked, no topic matched): they equal those of the full input of any candidate, for a
    /// full profile with activity and topics, for a bare one, and for none.
    @Test func theRequestsSideMakesTheFullInputsRequestFeatures() {
        var candidate = Self.candidate(slot: 3, objective: .conversions, caption: "alpha offer")
        candidate.userHides = 4
        var active = Self.user
        active.recentTopics = ["thing": 2.5, "travel": 1]
        let bare = UserProfile(id: try! UserID(validating: "u2"))
        let contexts = [FeedContext(device: "android", hour: 7, sessionPosition: 9, at: Timestamp(milliseconds: Self.t0.milliseconds + 50 * 3_600_000)), FeedContext()]
        for set in ClickFeatures.FeatureSet.allCases {
            let features = ClickFeatures(hasher: FeatureHasher(bits: 16), set: set)
            for user in [active, bare, nil] as [UserProfile?] {
                for context in contexts {
                    let full = ClickFeatureInput(candidate: candidate, user: user, context: context)
                    let request = ClickFeatureInput(requestOf: candidate, user: user, context: context)
                    #expect(features.requestPart(request) == features.requestPart(full), "\(set), \(user?.id.rawValue ?? "no user"), \(context)")
                    #expect(request.caption.isEmpty && request.recentTopicWeight == nil && request.userAdSimilarity == nil)
                }
            }
        }
    }

    /// For ranking, the conversion model runs only where the objective prices conversions and
    /// the click model only where it prices clicks or conversions (not for awareness ads); every
    /// value, every rate a value uses, and with a hide model P(hide), equal the full predictions.
    @Test(arguments: [false, true])
    func predictionsForRankingSkipOnlyRatesNobodyPrices(withHideModel: Bool) throws {
        let ranker = LearnedRanker(
            click: ModelSlot(try Self.trainedModel(.click, clicked: "alpha")), conversion: ModelSlot(try Self.trainedModel(.conversion, clicked: "beta")),
            hide: withHideModel ? ModelSlot(try Self.trainedModel(.hide, clicked: "gamma")) : nil)
        let objectives: [Objective] = [.traffic, .awareness, .conversions]
        let candidates = (0..<9).map { i in
            Self.candidate(slot: Int32(i), objective: objectives[i % 3], caption: ["alpha", "beta", "gamma"][i / 3] + " offer",
                embedding: (0..<384).map { Float(cos(Double($0 * (i + 1)))) })
        }
        let context = FeedContext(device: "ios", hour: 12, at: Self.t0)
        let full = ranker.predict(candidates, user: Self.user, context: context)
        let forRanking = ranker.predictForRanking(candidates, user: Self.user, context: context)
        #expect(Set(full.map(\.click)).count > 1, "the model must tell ads apart for this test to mean anything")
        for (i, candidate) in candidates.enumerated() {
            #expect(full[i].click > 0)
            #expect(forRanking[i].click == (candidate.objective == .awareness ? 0 : full[i].click))
            #expect(full[i].conversion > 0)
            #expect(forRanking[i].conversion == (candidate.objective == .conversions ? full[i].conversion : 0))
            #expect(forRanking[i].hide == full[i].hide)
            #expect((full[i].hide != nil) == withHideModel)
            #expect(
                forRanking[i].expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros)
                    == full[i].expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros))
        }
        // One candidate at a time gives the same as the batch.
        #expect(candidates.map { ranker.predict($0, user: Self.user, context: context) } == full)
    }

    /// A linear model's margin is calibrated in margin space (one exp); that must be what the
    /// probability chain gives — σ, the downsampling correction, then the calibrator — for every
    /// calibrator and keep rate, saturated margins included.
    @Test func calibratingTheMarginIsCalibratingItsProbability() throws {
        let base = try Self.trainedModel(.click, clicked: "alpha")
        let isotonic = IsotonicCalibrator.fit(predictions: [0.01, 0.2, 0.5, 0.9], labels: [false, false, true, true])
        let calibrators: [Calibrator] = [
            .identity, .downsampling(DownsamplingRecalibration(keepRate: 0.3)), .platt(PlattCalibrator(a: 0.7, b: -0.3)),
            .platt(PlattCalibrator(a: 1.4, b: 2)), .isotonic(isotonic),
        ]
        for calibrator in calibrators {
            for keepRate in [1, 0.25] {
                var meta = base.meta
                meta.calibrator = calibrator
                meta.negativeKeepRate = keepRate
                let predictor = try ClickPredictor(meta: meta, model: base.model)
                var spread: Set<Double> = []
                for step in -160...160 {
                    let margin = Double(step) / 4
                    let chain = meta.calibrated(1 / (1 + exp(-margin)))
                    let direct = predictor.predict(margin: margin)
                    spread.insert((direct * 1e6).rounded())
                    #expect(abs(direct - chain) <= 1e-9 * chain + Double.leastNormalMagnitude, "\(calibrator.kind), w \(keepRate), margin \(margin): \(direct) against \(chain)")
                }
                #expect(calibrator.kind == "isotonic" || spread.count > 10, "\(calibrator.kind): the margins must span the calibrated range")
            }
        }
    }

    /// The ads' cached feature parts follow an edit: a new caption (a new revision) is ranked as
    /// a fresh ranker ranks it, not as the cached old version.
    @Test func cachedAdPartsFollowAnEditedAd() throws {
        let click = ModelSlot(try Self.trainedModel(.click, clicked: "alpha"))
        let ranker = LearnedRanker(click: click, conversion: ModelSlot())
        let context = FeedContext(device: "ios", hour: 12, at: Self.t0)
        let before = Self.candidate(slot: 4, objective: .traffic, caption: "alpha offer")
        let after = Self.candidate(slot: 4, objective: .traffic, caption: "gamma offer", revision: 1)
        let first = ranker.predict([before], user: Self.user, context: context)[0]
        let edited = ranker.predict([after], user: Self.user, context: context)[0]
        let fresh = LearnedRanker(click: click, conversion: ModelSlot()).predict([after], user: Self.user, context: context)[0]
        #expect(edited == fresh)
        #expect(edited.click < first.click)
        // A candidate made outside a catalog (no slot) is predicted too, uncached.
        var loose = after
        loose.adSlot = -1
        #expect(ranker.predict([loose], user: Self.user, context: context)[0] == fresh)
        // A model with another hash swapped in (trained alike, so it predicts alike): the old
        // hash's cached keys would read its weights at the wrong slots, and are not reused.
        let rehashed = try Self.trainedModel(.click, clicked: "alpha", seed: 42)
        click.replace(with: rehashed)
        let afterSwap = ranker.predict([after], user: Self.user, context: context)[0]
        #expect(afterSwap == LearnedRanker(click: ModelSlot(rehashed), conversion: ModelSlot()).predict([after], user: Self.user, context: context)[0])
    }

    /// What the ranker keeps per ad belongs to the model that made it: a model with the same
    /// hash but other weights swapped in, as a retrain or the online learner swaps them, is
    /// ranked as a fresh ranker ranks it (the parts, shared by hash, are reused; nothing kept
    /// per model may be); a second request, read from the cache, gives what the first computed.
    @Test func aModelOfTheSameHashSwappedInRanksAsAFreshOne() throws {
        let click = ModelSlot(try Self.trainedModel(.click, clicked: "alpha"))
        let conversion = ModelSlot(try Self.trainedModel(.conversion, clicked: "beta"))
        let hide = ModelSlot(try Self.trainedModel(.hide, clicked: "gamma"))
        let ranker = LearnedRanker(click: click, conversion: conversion, hide: hide)
        let context = FeedContext(device: "ios", hour: 12, at: Self.t0)
        let objectives: [Objective] = [.traffic, .awareness, .conversions]
        let candidates = (0..<6).map { i in Self.candidate(slot: Int32(i), objective: objectives[i % 3], caption: ["alpha", "beta", "gamma"][i % 3] + " offer") }
        func fresh() -> [Prediction] {
            LearnedRanker(click: ModelSlot(click.predictor), conversion: ModelSlot(conversion.predictor), hide: ModelSlot(hide.predictor))
                .predict(candidates, user: Self.user, context: context)
        }
        let first = ranker.predict(candidates, user: Self.user, context: context)
        #expect(ranker.predict(candidates, user: Self.user, context: context) == first)
        #expect(first == fresh())
        // Each model in turn replaced by one of the same hash that likes another word: nothing
        // kept for the one it replaced may be read for it.
        for (slot, target, word) in [(click, PredictionTarget.click, "gamma"), (conversion, .conversion, "alpha"), (hide, .hide, "beta")] {
            let before = ranker.predict(candidates, user: Self.user, context: context)
            slot.replace(with: try Self.trainedModel(target, clicked: word))
            let after = ranker.predict(candidates, user: Self.user, context: context)
            #expect(after == fresh(), "after replacing the \(target) model")
            #expect(after != before, "the \(target) model swapped in must predict otherwise for this test to mean anything")
            #expect(ranker.predict(candidates, user: Self.user, context: context) == after)
        }
    }

    /// The names recent topics are matched by are made once per ad version: lowercased product
    /// and company, the empty ones left out, and they follow an edit.
    @Test func anAdsTopicNamesFollowItsEdits() {
        var ad = Self.candidate(slot: 1, objective: .traffic, caption: "alpha offer").ad
        #expect(Array(ad.topicNames) == ["thing", "acme"])
        #expect(ActivityVector.names(of: ad) == Array(ad.topicNames))
        ad.product = "Trail Shoes"
        ad.company = ""
        #expect(Array(ad.topicNames) == ["trail shoes"])
        var fields = ad.fields
        fields.company = "Northwind Outfitters"
        ad.fields = fields
        #expect(Array(ad.topicNames) == ["trail shoes", "northwind outfitters"])
    }

    /// Placed ads carry their full prediction: with a conversion model, a traffic or awareness
    /// ad's P(conversion) is the model's, and an awareness ad's P(click) too, not the 0s the
    /// ranking skipped.
    @Test func placementsCarryFullPredictions() async throws {
        let world = try await TestWorld.make()
        let objectives: [Objective] = [.traffic, .conversions, .awareness]
        for a in 0..<6 {
            let advertiser = try await world.advertiser("adv\(a)")
            let campaign = try await world.campaign(advertiser, objective: objectives[a % 3])
            try await world.ad(campaign, caption: a % 2 == 0 ? "alpha offer" : "beta offer")
        }
        _ = try await world.user("u1", interests: ["travel"])
        world.publish()
        var configuration = world.serving.configuration
        configuration.policy = .ranked
        let conversion = ModelSlot(try TrainingTests.constantModel(0.05, version: 1))
        let serving = world.serving.variant(
            ranker: LearnedRanker(click: ModelSlot(try Self.trainedModel(.click, clicked: "alpha")), conversion: conversion),
            configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: 5))
        let decision = try await serving.decide(userID: try UserID(validating: "u1"), context: FeedContext(), organicCount: 20)
        #expect(decision.placements.count == 5)
        #expect(decision.placements.contains { $0.objective == .traffic })
        #expect(decision.placements.contains { $0.objective == .awareness })
        for placement in decision.placements {
            #expect(abs(placement.prediction.conversion - 0.05) < 1e-9)
            #expect(placement.prediction.click > 0, "\(placement.objective)")
        }
    }

    /// The cosine with norms known is the plain cosine, bit for bit, and both match a direct
    /// computation in Double; degenerate inputs give 0.
    @Test func cosineWithKnownNormsIsThePlainCosine() {
        var rng = SplitMix64(seed: 11)
        for length in [1, 7, 8, 13, 384] {
            let a = (0..<length).map { _ in Float(rng.gaussian()) }
            let b = (0..<length).map { _ in Float(rng.gaussian()) }
            let plain = VectorMath.cosine(a, b)
            let known = VectorMath.cosine(a, b, squaredNormA: VectorMath.squaredNorm(a), squaredNormB: VectorMath.squaredNorm(b))
            #expect(plain == known)
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }
            let nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(plain - dot / (na * nb).squareRoot()) < 1e-5)
        }
        #expect(VectorMath.cosine([1, 2, 3], [2, 4, 6]) > 0.999_999)
        #expect(VectorMath.cosine([1, 2], [1, 2, 3]) == 0)
        #expect(VectorMath.cosine([], []) == 0)
        #expect(VectorMath.cosine([0, 0, 0], [1, 2, 3]) == 0)
        #expect(VectorMath.cosine(nil, [1]) == 0)
        let ad = Self.candidate(slot: 0, objective: .traffic, caption: "x", embedding: [3, 4]).ad
        #expect(ad.embeddingSquaredNorm == 25)
    }
}
