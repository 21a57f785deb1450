import Domain
import Events
import Foundation
import Learning
import ModelServing
import Models
import Serving
import Simulator
import Synchronization
import Testing
import TestSupport
import Training

@Suite struct TrainingTests {
    static let t0 = Timestamp(milliseconds: 1_780_315_200_000)
    static func at(minutes: Int64) -> Timestamp { t0.adding(milliseconds: minutes * 60_000) }

    static func input(ad: Int64 = 1, interests: [String] = ["travel"], caption: String = "Sunny beach trips", clicks: Int64 = 0, impressions: Int64 = 0) -> ClickFeatureInput {
        ClickFeatureInput(
            age: 31, gender: "female", country: "us", language: "en", interests: interests, adId: ad, campaignId: 10 + ad, advertiserId: 100 + ad % 3,
            format: "image", objective: "traffic", caption: caption, adImpressions: impressions, adClicks: clicks, adAgeHours: 30, userCampaignImpressions: 1,
            device: "ios", hour: 12, sessionPosition: 20)
    }

    // MARK: Join

    @Test func clicksAreJoinedInsideTheirWindowAndNegativesWaitForItToClose() {
        var join = AttributionJoin(windows: AttributionWindows(clickMilliseconds: 60 * 60_000, conversionMilliseconds: 24 * 60 * 60_000))
        join.impression(id: "a", features: Self.input(), at: Self.at(minutes: 0))
        join.impression(id: "a", features: Self.input(), at: Self.at(minutes: 1))  // reported twice: one impression
        join.impression(id: "b", features: Self.input(), at: Self.at(minutes: 0))
        join.impression(id: "c", features: Self.input(), at: Self.at(minutes: 0))
        join.click(id: "a", at: Self.at(minutes: 5))
        join.click(id: "c", at: Self.at(minutes: 61))  // too late for its 1 h window

        // At 59 minutes only the click is final; b's window is still open, so b is no negative yet.
        let early = join.drain(now: Self.at(minutes: 59))
        #expect(early.map(\.label) == [true])
        #expect(early[0].target == .click)
        #expect(join.unattributed == 1)

        let closed = join.drain(now: Self.at(minutes: 61))
        #expect(closed.count == 2)
        #expect(closed.allSatisfy { !$0.label && $0.target == .click })
        #expect(closed.allSatisfy { $0.labelledAt == Self.at(minutes: 60) })
        #expect(join.drain(now: Self.at(minutes: 120)).isEmpty)
        // The clicked impression waits for a conversion until its conversion window closes.
        #expect(join.pendingCount == 1)
        join.conversion(id: "a", at: Self.at(minutes: 5 + 24 * 60 + 1))
        #expect(join.unattributed == 2)
        let conversion = join.drain(now: Self.at(minutes: 5 + 24 * 60 + 2))
        #expect(conversion.map(\.target) == [.conversion])
        #expect(conversion.map(\.label) == [false])
    }

    @Test func conversionsInsideTheirWindowArePositives() {
        var join = AttributionJoin()
        join.impression(id: "a", features: Self.input(), at: Self.at(minutes: 0))
        join.click(id: "a", at: Self.at(minutes: 1))
        join.conversion(id: "a", at: Self.at(minutes: 3 * 24 * 60))
        let examples = join.drain(now: Self.at(minutes: 3 * 24 * 60))
        #expect(examples.map(\.target) == [.click, .conversion])
        #expect(examples.map(\.label) == [true, true])
        #expect(join.pendingCount == 0)
    }

    // MARK: Features

    /// Serving's path (request part once, ad part cached, then encode) and training's path
    /// (encode from the logged input) give the same example.
    @Test func servingAndTrainingEncodeTheSameFeatures() {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 18))
        var a = Self.input(ad: 1, interests: ["travel", "food"], clicks: 30, impressions: 1_000)
        a.userContentCode = 17
        a.hoursSinceActivity = 5
        var b = Self.input(ad: 2, interests: ["travel", "food"], caption: "Fresh pasta tonight", clicks: 0, impressions: 10)
        b.userContentCode = 17
        b.hoursSinceActivity = 5
        b.adContentCode = 40
        b.userAdSimilarity = 0.37
        b.recentTopicWeight = 3.2
        b.recentTopicShare = 0.4
        b.recentTopicRank = 2
        let request = features.requestPart(a)
        var x = SparseFeatures()
        features.encode(request, features.adPart(b), ClickFeatures.CandidateSignals(b), into: &x)
        #expect(x == features.encode(b))
        // A linear model's margin in the ranker's three sums is the example's, in either set.
        var rng = SplitMix64(seed: 7)
        let weights = (0..<features.hasher.dimension).map { _ in Double.random(in: -1...1, using: &rng) }
        for set in ClickFeatures.FeatureSet.allCases {
            let encoder = ClickFeatures(hasher: features.hasher, set: set)
            let example = encoder.encode(b)
            let summed = encoder.requestMargin(request, weights: weights) + encoder.adMargin(encoder.adPart(b), weights: weights)
                + encoder.candidateMargin(request, encoder.adPart(b), ClickFeatures.CandidateSignals(b), weights: weights)
            let margin = example.indices.reduce(0.0) { $0 + weights[Int($1)] }
            #expect(abs(summed - margin) < 1e-9, "\(set): \(summed) against \(margin)")
            #expect(example.indices.count > (set == .full ? 30 : 10))
        }
        // The user·ad similarity is a feature (version 3): buckets of a tenth, and one for none.
        var unknown = b
        unknown.userAdSimilarity = nil
        var close = b
        close.userAdSimilarity = 0.31
        #expect(features.encode(unknown) != features.encode(b))
        #expect(features.encode(close) == features.encode(b))
        // Recent activity about the ad's product or company (version 4): octaves, and none.
        var none = b
        none.recentTopicWeight = nil
        var sameOctave = b
        sameOctave.recentTopicWeight = 3.9
        #expect(features.encode(none) != features.encode(b))
        #expect(features.encode(sameOctave) == features.encode(b))
        #expect(features.encode(a) != features.encode(b))
        // Crosses: interest × word is a feature, so two users differing only in interest differ in more than one slot.
        let other = features.encode(Self.input(ad: 2, interests: ["sports", "food"], caption: "Fresh pasta tonight", clicks: 0, impressions: 10))
        #expect(Set(other.indices).symmetricDifference(Set(x.indices)).count >= 4)
    }

    // MARK: Training, repository, gate

    /// A stream where the click rate depends on whether the user's interest matches the ad's caption.
    static func examples(count: Int, seed: UInt64, start: Timestamp = t0) -> [JoinedExample] {
        var rng = SplitMix64(seed: seed)
        let topics = [("travel", "Sunny beach trips"), ("food", "Fresh pasta tonight"), ("sports", "Running shoes sale")]
        return (0..<count).map { i in
            let user = Int.random(in: 0..<3, using: &rng)
            let ad = Int.random(in: 0..<3, using: &rng)
            let p = user == ad ? 0.12 : 0.01
            let time = start.adding(milliseconds: Int64(i) * 1_000)
            return JoinedExample(
                target: .click, id: "d\(i)/3", features: input(ad: Int64(ad + 1), interests: [topics[user].0], caption: topics[ad].1),
                label: Double.random(in: 0..<1, using: &rng) < p, servedAt: time, labelledAt: time)
        }
    }

    /// A log shorter than its attribution window has positives only (negatives wait for the
    /// window to close): the error names the flags that shorten it.
    @Test func allPositiveExamplesPointToTheAttributionWindows() {
        let positives = Self.examples(count: 50, seed: 3).map { example in
            var e = example
            e.label = true
            return e
        }
        let error = #expect(throws: AdServeError.self) {
            try Trainer(configuration: TrainingConfiguration()).train(positives, target: .conversion, heldOut: [], heldOutName: "none", now: Self.t0)
        }
        #expect(error?.message.contains("all positive") == true)
        #expect(error?.message.contains("--conversion-window") == true)
    }

    @Test func trainedModelRoundTripsThroughTheRepositoryAndPromotionIsGated() throws {
        let directory = TemporaryDatabase()
        let repository = try ModelRepository(directory: directory.directory.path)
        var configuration = TrainingConfiguration()
        configuration.bits = 16
        let trainer = Trainer(configuration: configuration)
        let train = Self.examples(count: 20_000, seed: 1)
        let heldOut = Self.examples(count: 5_000, seed: 2, start: Self.t0.adding(milliseconds: Timestamp.millisecondsPerDay))

        let good = try trainer.train(train, target: .click, heldOut: heldOut, heldOutName: "day 2", now: Self.t0)
        #expect(good.meta.metrics.auc > 0.7)
        #expect(abs(good.meta.metrics.calibration - 1) < 0.15)
        let saved = try repository.save(good.model, meta: good.meta)
        #expect(saved.version == 1)
        let loaded = try repository.load(1)
        let inputs = heldOut.prefix(200).map { loaded.features.encode($0.features) }
        #expect(inputs.map(loaded.predict) == inputs.map(good.predictor.predict))

        // No serving model yet: judged against the rule-based estimate on the same examples.
        let gate = PromotionGate()
        let first = try Retraining(configuration: configuration).retrain(
            train: train, heldOut: heldOut, heldOutName: "day 2", target: .click, serving: nil, now: Self.t0)
        #expect(first.comparedWith == "rule-based estimate")
        #expect(first.adopt, "\(first.summary)")
        try repository.promote(1)
        #expect(repository.promoted(.click) == 1)

        // A model trained on shuffled labels is worse and is refused against the serving one.
        var rng = SplitMix64(seed: 9)
        var labels = train.map(\.label)
        labels.shuffle(using: &rng)
        let noise = zip(train, labels).map { example, label in
            var e = example
            e.label = label
            return e
        }
        let bad = try trainer.train(noise, target: .click, heldOut: heldOut, heldOutName: "day 2", now: Self.t0)
        let serving = Trainer.evaluate(loaded, on: heldOut)
        let verdict = gate.judge(candidate: bad.meta.metrics, serving: serving, servingName: "serving model")
        #expect(!verdict.promote)
        #expect(verdict.reasons.contains { $0.contains("NE") })

        // Promote another version, then roll back to the first.
        let second = try repository.save(good.model, meta: good.meta)
        try repository.promote(second.version)
        #expect(repository.promoted(.click) == 2)
        #expect(try repository.rollback(.click) == 1)
        #expect(repository.promoted(.click) == 1)
        #expect(throws: AdServeError.self) { try repository.rollback(.click) }
        #expect(try repository.list().map(\.version) == [1, 2])
    }

    /// The compact set reads no identifier, word, interest or cross: inputs differing only in
    /// those encode alike, and its slots are among the full set's.
    @Test func theCompactSetReadsOnlyTheDenseSignals() {
        let hasher = FeatureHasher(bits: 18)
        let full = ClickFeatures(hasher: hasher)
        let compact = ClickFeatures(hasher: hasher, set: .compact)
        var a = Self.input(ad: 1, interests: ["travel"], clicks: 30, impressions: 1_000)
        a.recentTopicShare = 0.5
        a.userContentCode = 3
        a.adContentCode = 9
        var b = Self.input(ad: 2, interests: ["food", "sports"], caption: "Fresh pasta tonight", clicks: 30, impressions: 1_000)
        b.recentTopicShare = 0.5
        b.userContentCode = 4
        b.adContentCode = 8
        #expect(compact.encode(a) == compact.encode(b))
        #expect(full.encode(a) != full.encode(b))
        #expect(Set(compact.encode(a).indices).isSubset(of: Set(full.encode(a).indices)))
        #expect(compact.encode(a).indices.count < full.encode(a).indices.count / 2)
        // What the compact set does read moves it.
        var c = a
        c.recentTopicShare = 0.9
        #expect(compact.encode(c) != compact.encode(a))
    }

    /// With `chooseFeatureSet` the trainer switches to the compact set only where it predicts
    /// the later examples clearly better (by one standard error of the paired difference). Compact where clicks follow one dense signal (the share of the user's recent activity
    /// about the ad's product) but each ad always comes with the same share, so the ads' ids
    /// absorb part of the signal — and the later examples are new ads; full where clicks follow
    /// the interest × caption match, which only the full set sees. The choice is recorded in the
    /// model and survives the repository.
    @Test func theSearchChoosesTheFeatureSetTheDataSupports() throws {
        var configuration = TrainingConfiguration()
        configuration.bits = 16
        configuration.calibrationWindowMilliseconds = 20 * 60_000
        configuration.chooseFeatureSet = true
        let trainer = Trainer(configuration: configuration)

        var rng = SplitMix64(seed: 5)
        // Ads 1–30 for the first 40 minutes, 31–60 for the next 20 (the validation tail), 61–90 held out.
        func examples(ads: ClosedRange<Int64>, count: Int, from first: Int) -> [JoinedExample] {
            (0..<count).map { n in
                let i = first + n
                let ad = Int64.random(in: ads, using: &rng)
                var input = Self.input(ad: ad, caption: "product \(ad)")
                let share = Double(ad % 11) / 10
                input.recentTopicShare = share > 0 ? share : nil
                let time = Self.t0.adding(milliseconds: Int64(i) * 1_000)
                return JoinedExample(
                    target: .click, id: "d\(i)/1", features: input, label: Double.random(in: 0..<1, using: &rng) < 0.01 + 0.15 * share,
                    servedAt: time, labelledAt: time)
            }
        }
        let train = examples(ads: 1...30, count: 2_400, from: 0) + examples(ads: 31...60, count: 1_200, from: 2_400)
        let heldOut = examples(ads: 61...90, count: 1_200, from: 3_600)
        let sparse = try trainer.train(train, target: .click, heldOut: heldOut, heldOutName: "new ads", now: Self.t0)
        #expect(sparse.meta.featureSet == .compact, "\(sparse.featureSetSummary ?? "")")
        #expect(sparse.predictor.features.set == .compact)
        #expect(sparse.featureSets.map(\.set) == [.full, .compact])

        // Kept because it scored lower by more than a standard error; and it predicts the new ads.
        let compact = sparse.featureSets[1]
        #expect(try #require(compact.gain) > #require(compact.standardError))
        #expect(sparse.meta.metrics.auc > 0.6)  // the true rates: about 0.67

        // Without the choice (the default), the trainer keeps the set it is given and compares nothing.
        #expect(!TrainingConfiguration().chooseFeatureSet)
        var fixed = configuration
        fixed.chooseFeatureSet = false
        let given = try Trainer(configuration: fixed).train(train, target: .click, heldOut: heldOut, heldOutName: "new ads", now: Self.t0)
        #expect(given.meta.featureSet == .full)
        #expect(given.featureSets.isEmpty)
        fixed.featureSet = .compact
        let asked = try Trainer(configuration: fixed).train(train, target: .click, heldOut: heldOut, heldOutName: "new ads", now: Self.t0)
        #expect(asked.meta.featureSet == .compact && asked.predictor.features.set == .compact)

        let crossed = try trainer.train(
            Self.examples(count: 20_000, seed: 1), target: .click, heldOut: Self.examples(count: 3_000, seed: 2), heldOutName: "later", now: Self.t0)
        #expect(crossed.meta.featureSet == .full, "\(crossed.featureSetSummary ?? "")")

        // Saved and loaded, the compact model predicts as trained.
        let directory = TemporaryDatabase()
        let repository = try ModelRepository(directory: directory.directory.path)
        let saved = try repository.save(sparse.model, meta: sparse.meta)
        let loaded = try repository.load(saved.version)
        #expect(loaded.features.set == .compact)
        let inputs = heldOut.prefix(100).map { loaded.features.encode($0.features) }
        #expect(inputs.map(loaded.predict) == inputs.map(sparse.predictor.predict))

        // Metadata written before the set was recorded reads as full.
        let json = try JSONFormat.encoder().encode(given.meta)
        var object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object.removeValue(forKey: "feature_set") as? String == "full")
        let old = try JSONFormat.decoder().decode(ModelMeta.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.featureSet == nil)
        #expect(try ClickPredictor(meta: old, model: given.model).features.set == .full)
    }

    @Test func aCorruptPromotedModelIsRefusedAndTheServingOneStays() throws {
        let directory = TemporaryDatabase()
        let repository = try ModelRepository(directory: directory.directory.path)
        var configuration = TrainingConfiguration()
        configuration.bits = 12
        let result = try Trainer(configuration: configuration).train(
            Self.examples(count: 2_000, seed: 1), target: .click, heldOut: [], heldOutName: "none", now: Self.t0)
        let first = try repository.save(result.model, meta: result.meta)
        let second = try repository.save(result.model, meta: result.meta)
        try repository.promote(first.version)
        let click = ModelSlot()
        let reloader = ModelReloader(repository: repository, click: click, conversion: ModelSlot())
        #expect(reloader.reload() == [.loaded(target: .click, version: 1)])
        #expect(reloader.reload().isEmpty)

        try repository.promote(second.version)
        let weights = directory.directory.appendingPathComponent("v000002/model.bin")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count / 2).write(to: weights)
        let changes = reloader.reload()
        #expect(changes.count == 1)
        guard case .refused(.click, 2, _) = changes.first else { Issue.record("expected a refusal, got \(changes)"); return }
        #expect(click.predictor?.meta.version == 1)
    }

    /// Two-tower models go through the same repository flow as the ranker's: saved with a
    /// checksum, promoted, loaded by a serving node's reloader into its retriever (index built),
    /// a corrupt promoted one refused while the serving one stays, and a rollback brings the
    /// earlier one back on the next reload.
    @Test func twoTowerModelsArePromotedLoadedRefusedAndRolledBack() throws {
        let directory = TemporaryDatabase()
        let repository = try ModelRepository(directory: directory.directory.path)
        let train = Self.examples(count: 2_000, seed: 1)
        let heldOut = Self.examples(count: 500, seed: 2, start: Self.t0.adding(milliseconds: Timestamp.millisecondsPerDay))
        var made: [TwoTowerModel] = []
        for seed in [UInt64(1), 2] {
            var parameters = TwoTowerModel.Parameters()
            parameters.seed = seed
            parameters.epochs = 2
            let outcome = CandidateRetraining(parameters: parameters, k: 10).retrain(
                train: train, heldOut: heldOut, heldOutName: "day 2", serving: nil, now: Self.t0)
            let meta = try repository.saveCandidateModel(outcome.model, meta: outcome.meta)
            #expect(meta.version == made.count + 1 && meta.checksum != nil)
            made.append(outcome.model)
        }
        #expect(repository.candidateModels().map(\.version) == [1, 2])
        #expect(try repository.loadCandidateModel(2).serialized() == made[1].serialized())
        // `eval` measures stored versions beside the one it trains: a stored copy of a model
        // measures as that model does.
        let recall = CandidateRecall(
            model: made[0], train: train, heldOut: heldOut, stored: [("c1", try repository.loadCandidateModel(1)), ("c2", try repository.loadCandidateModel(2))])
        #expect(recall.rows.map(\.stage) == ["two-tower", "popularity", "content similarity", "c1", "c2"])
        #expect(recall.rows[3].recall == recall.rows[0].recall && recall.heldOutClicks > 0)
        #expect(throws: AdServeError.self) { try repository.rollbackCandidateModel() }

        let retriever = TwoTowerRetriever()
        let reloader = ModelReloader(repository: repository, click: ModelSlot(), conversion: ModelSlot(), retriever: retriever)
        #expect(reloader.reload().isEmpty)
        try repository.promoteCandidateModel(1)
        #expect(reloader.reload() == [.loadedCandidates(version: 1)])
        #expect(retriever.model?.serialized() == made[0].serialized())
        #expect(reloader.reload().isEmpty)
        #expect(repository.candidateTable(repository.candidateModels()).contains("yes"))

        try repository.promoteCandidateModel(2)
        let weights = directory.directory.appendingPathComponent("candidates/v000002.bin")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count / 2).write(to: weights)
        let changes = reloader.reload()
        guard case .refusedCandidates(2, _) = changes.first, changes.count == 1 else { Issue.record("expected a refusal, got \(changes)"); return }
        #expect(retriever.model?.serialized() == made[0].serialized())

        try bytes.write(to: weights)
        #expect(reloader.reload() == [.loadedCandidates(version: 2)])
        #expect(retriever.model?.serialized() == made[1].serialized())
        #expect(try repository.rollbackCandidateModel() == 1)
        #expect(repository.candidateHistory == [1])
        #expect(reloader.reload() == [.loadedCandidates(version: 1)])
        #expect(retriever.model?.serialized() == made[0].serialized())
    }

    // MARK: Serving

    /// A model whose calibrator maps everything to `p`: which model ranked a decision is visible
    /// in its predictions.
    static func constantModel(_ p: Double, version: Int) throws -> ClickPredictor {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 10))
        var meta = ModelMeta(
            kind: FTRLProximal.kind, target: .click, createdAt: t0, trainedFrom: t0, trainedTo: t0, trainingExamples: 0, trainingBaseRate: p,
            features: features, negativeKeepRate: 1, calibrator: .platt(PlattCalibrator(a: 0, b: log(p / (1 - p)))),
            metrics: OfflineMetrics(predictions: [], labels: []), evaluatedOn: "none")
        meta.version = version
        return try ClickPredictor(meta: meta, model: FTRLProximal(hasher: features.hasher))
    }

    @Test func modelsSwapUnderConcurrentDecisionsWithoutFailuresOrMixing() async throws {
        let world = try await TestWorld.make()
        for a in 0..<6 {
            let campaign = try await world.campaign(try await world.advertiser("adv\(a)"))
            for _ in 0..<3 { try await world.ad(campaign, caption: "caption \(a)") }
        }
        _ = try await world.user("u1", interests: ["travel"])
        world.publish()
        let click = ModelSlot(try Self.constantModel(0.01, version: 1))
        var configuration = world.serving.configuration
        configuration.policy = .ranked
        let serving = world.serving.variant(
            ranker: LearnedRanker(click: click, conversion: ModelSlot()), configuration: configuration, decisionIDs: DecisionIDGenerator(prefix: 3))
        let models = [try Self.constantModel(0.01, version: 1), try Self.constantModel(0.02, version: 2)]

        let seen = try await withThrowingTaskGroup(of: Set<Double>.self) { group in
            group.addTask {
                for i in 0..<400 { click.replace(with: models[i % 2]) }
                return []
            }
            for _ in 0..<4 {
                group.addTask {
                    var seen: Set<Double> = []
                    for _ in 0..<100 {
                        let decision = try await serving.decide(userID: try UserID(validating: "u1"), context: FeedContext(), organicCount: 20)
                        #expect(decision.placements.count >= 2)
                        let clicks = Set(decision.placements.map(\.prediction.click))
                        #expect(clicks.count == 1)  // one model per decision
                        seen.formUnion(clicks)
                    }
                    return seen
                }
            }
            return try await group.reduce(into: Set<Double>()) { $0.formUnion($1) }
        }
        #expect(!seen.isEmpty)
        #expect(seen.allSatisfy { abs($0 - 0.01) < 1e-9 || abs($0 - 0.02) < 1e-9 })
    }

    /// In the server, decisions and recorded events reach online learning and the serve log
    /// through the serving observers; replaying the log through the join gives the same labels.
    @Test func serverDecisionsAndEventsReachOnlineLearningAndTheServeLog() async throws {
        let world = try await TestWorld.make()
        for a in 0..<3 {
            let campaign = try await world.campaign(try await world.advertiser("adv\(a)"))
            try await world.ad(campaign, caption: "beach trip \(a)")
        }
        let user = try await world.user("u1", interests: ["travel"])
        world.publish()

        let click = ModelSlot()
        let learner = OnlineLearner(click: click, conversion: ModelSlot(), minimumUpdatesBeforePublishing: 1)
        let features = ClickFeatures(hasher: FeatureHasher(bits: 12))
        let meta = ModelMeta.untrained(kind: FTRLProximal.kind, target: .click, features: features, at: Self.t0)
        var parameters = FTRLProximal.Parameters()
        parameters.l1 = 0  // so that one example moves the ad's own weights
        try learner.adopt(FTRLProximal(hasher: features.hasher, parameters: parameters), meta: meta, trained: false)
        let log = LineCollector()
        world.serving.observers.add(OnlineLearning(learner))
        world.serving.observers.add(ServeLogger { log.add($0) })

        let decision = try await world.decide("u1")
        #expect(decision.placements.count >= 2)
        let clicked = decision.placements[0]
        world.clock.advance(milliseconds: 3_000)  // a person's click, not a bot's
        _ = try await EventIngestor(serving: world.serving).ingest(IncomingEvent(type: .click, impressionToken: clicked.impressionToken))
        world.clock.advance(hours: 2)
        learner.advance(to: world.clock.now())

        // Learned: the clicked ad now predicts above the ads shown beside it and not clicked.
        let profile = try await world.serving.profile(of: user)
        let input = ClickFeatureInput(candidate: clicked.candidate, user: profile, context: FeedContext())
        let other = ClickFeatureInput(candidate: decision.placements[1].candidate, user: profile, context: FeedContext())
        let model = try #require(click.predictor)
        #expect(model.predict(features.encode(input)) > model.predict(features.encode(other)))

        // Logged: every placement with its features, and the click; replayed, the same labels.
        let lines = log.lines
        #expect(lines.filter { $0.kind == .impression }.count == decision.placements.count)
        #expect(lines.first { $0.kind == .impression && $0.impressionId == "\(decision.decisionID)/\(clicked.afterPost)" }?.features == input)
        var join = AttributionJoin()
        for line in lines { line.replay(into: &join) }
        let examples = join.drain(now: world.clock.now())
        #expect(examples.count == decision.placements.count)
        #expect(examples.filter(\.label).map(\.id) == ["\(decision.decisionID)/\(clicked.afterPost)"])
    }

    /// When an ad's true CTR jumps, the online model's prediction for it follows within an hour
    /// of simulated traffic, although negatives are only labelled when their window closes.
    @Test func onlineLearningFollowsAChangeInCTRWithinAnHour() throws {
        let click = ModelSlot()
        // Labels wait for the window to close; with a 10-minute window the last 50 minutes of the
        // hour after the change are learned from.
        let windows = AttributionWindows(clickMilliseconds: 10 * 60_000)
        let learner = OnlineLearner(click: click, conversion: ModelSlot(), windows: windows, minimumUpdatesBeforePublishing: 100)
        var configuration = TrainingConfiguration()
        configuration.bits = 14
        let features = ClickFeatures(hasher: FeatureHasher(bits: configuration.bits))
        let meta = ModelMeta.untrained(kind: FTRLProximal.kind, target: .click, features: features, at: Self.t0)
        try learner.adopt(FTRLProximal(hasher: features.hasher), meta: meta, trained: false)

        var rng = SplitMix64(seed: 5)
        let ad = Self.input(ad: 7)
        var time = Self.t0
        var id = 0
        func traffic(minutes: Int, ctr: Double) {
            for _ in 0..<(minutes * 60) {  // one impression a second
                id += 1
                learner.served(id: "i\(id)", features: ad, at: time)
                learner.reported(id: "i\(id)")
                if Double.random(in: 0..<1, using: &rng) < ctr { learner.clicked(id: "i\(id)", at: time.adding(milliseconds: 5_000)) }
                time = time.adding(milliseconds: 1_000)
                if id % 60 == 0 { learner.advance(to: time) }
            }
        }
        func predicted() -> Double { click.predictor!.predict(features.encode(ad)) }
        traffic(minutes: 6 * 60, ctr: 0.02)
        let before = predicted()
        #expect(abs(before - 0.02) < 0.006)
        traffic(minutes: 60, ctr: 0.08)
        let after = predicted()
        #expect(after > 0.06, "prediction \(after) an hour after the CTR rose from 2% to 8%")
    }

    /// A calibration layer that has drifted (it doubles the odds) is pulled back by the online
    /// learner's recalibration: the published predictions end within ±5% of the observed rate.
    @Test func onlineRecalibrationBringsADriftedLayerBackWithinFivePercent() throws {
        let click = ModelSlot()
        let learner = OnlineLearner(click: click, conversion: ModelSlot(), minimumUpdatesBeforePublishing: 0, recalibrationExamples: 2_000)
        let features = ClickFeatures(hasher: FeatureHasher(bits: 12))
        var model = FTRLProximal(hasher: features.hasher)
        var rng = SplitMix64(seed: 21)
        let ads = (1...20).map { Self.input(ad: Int64($0)) }
        func ctr(_ ad: Int) -> Double { 0.01 + 0.002 * Double(ad) }
        for _ in 0..<40_000 {
            let ad = Int.random(in: 0..<20, using: &rng)
            model.update(features.encode(ads[ad]), label: Double.random(in: 0..<1, using: &rng) < ctr(ad))
        }
        let meta = ModelMeta(
            kind: FTRLProximal.kind, target: .click, createdAt: Self.t0, trainedFrom: Self.t0, trainedTo: Self.t0, trainingExamples: 40_000,
            trainingBaseRate: 0.03, features: features, negativeKeepRate: 1, calibrator: .platt(PlattCalibrator(a: 1, b: log(2.0))),
            metrics: OfflineMetrics(predictions: [], labels: []), evaluatedOn: "none")
        try learner.adopt(model, meta: meta, trained: true)
        func meanPrediction() -> Double { ads.map { click.predictor!.predict(features.encode($0)) }.reduce(0, +) / 20 }
        let observed = (0..<20).map(ctr).reduce(0, +) / 20
        #expect(meanPrediction() / observed > 1.6)  // the drifted layer, before

        var time = Self.t0
        var clicks = 0
        for i in 0..<60_000 {
            let ad = Int.random(in: 0..<20, using: &rng)
            learner.served(id: "i\(i)", features: ads[ad], at: time)
            learner.reported(id: "i\(i)")
            if Double.random(in: 0..<1, using: &rng) < ctr(ad) {
                learner.clicked(id: "i\(i)", at: time)
                clicks += 1
            }
            time = time.adding(milliseconds: 500)
            if i % 500 == 0 { learner.advance(to: time) }
        }
        learner.advance(to: time.adding(milliseconds: 2 * Timestamp.millisecondsPerHour))
        // Against the rate the learner saw: about 1,800 clicks are ±2.4% from the world's rate
        // by chance alone, which is not the recalibration's error.
        let ratio = meanPrediction() / (Double(clicks) / 60_000)
        #expect(abs(ratio - 1) < 0.05, "calibration \(ratio) after online recalibration")
    }

    /// Trained on a small simulated world's logs, the model predicts the next day's clicks
    /// better than the rule-based estimate serving had for the same impressions.
    @Test func trainingOnSimulatorLogsBeatsTheRuleBasedEstimate() async throws {
        var configuration = Simulation.Configuration()
        configuration.size = World.Size(users: 5_000, ads: 300)
        configuration.days = 4
        configuration.arms = ["random"]
        let logs = LineCollector()
        _ = try await Simulation(configuration: configuration).run(log: { logs.add($0) })
        // The serve log as `adserve train` reads it: joined, then the last day held out.
        let log = ServeLog(lines: logs.lines.sorted { $0.timeMs < $1.timeMs }, malformed: 0)
        let (examples, summary) = log.joined(target: .click, windows: AttributionWindows())
        let split = try TimeSplit(examples, holdoutMilliseconds: Timestamp.millisecondsPerDay, summary: summary)
        let (train, test) = (split.train, split.heldOut)
        var training = TrainingConfiguration()
        training.bits = 18
        training.epochs = 2
        let model = try Trainer(configuration: training).train(train, target: .click, heldOut: test, heldOutName: "day 3", now: Self.t0)
        let rulePredictions = RuleBasedEstimate.predictions(.click, for: test)
        let ruleMetrics = OfflineMetrics(predictions: rulePredictions, labels: test.map(\.label))
        #expect(test.count > 1_000)
        #expect(model.meta.metrics.logloss < ruleMetrics.logloss)
        #expect(model.meta.metrics.auc > ruleMetrics.auc + 0.02, "model AUC \(model.meta.metrics.auc), rule-based \(ruleMetrics.auc)")
    }
}

final class LineCollector: Sendable {
    private let stored = Mutex<[ServeLogLine]>([])
    func add(_ line: ServeLogLine) { stored.withLock { $0.append(line) } }
    var lines: [ServeLogLine] { stored.withLock { $0 } }
}
