import Domain
import Foundation
import Models
import Testing
import Training

@Suite struct FTRLSearchTests {
    /// A planted logistic world: a few strong dense features and many one-off ids (noise).
    static func world(count: Int, seed: UInt64, hasher: FeatureHasher) -> LabeledExamples {
        var rng = SplitMix64(seed: seed)
        var examples = LabeledExamples()
        for _ in 0..<count {
            var x = SparseFeatures()
            x.append(hasher.biasIndex)
            var margin = -2.0
            for f in 0..<4 {
                let on = Double.random(in: 0..<1, using: &rng) < 0.3
                if on {
                    x.append(hasher.index(namespace: "signal", value: String(f)))
                    margin += f.isMultiple(of: 2) ? 1.5 : -1.5
                }
            }
            x.append(hasher.index(namespace: "id", value: String(rng.next() % 100_000)))
            let p = 1 / (1 + exp(-margin))
            examples.features.append(x)
            examples.labels.append(Double.random(in: 0..<1, using: &rng) < p)
        }
        return examples
    }

    static func logloss(_ model: FTRLProximal, _ data: LabeledExamples) -> Double {
        OfflineMetrics(predictions: data.features.map { model.predict($0) }, labels: data.labels).logloss
    }

    /// Little data and a strong signal: the defaults (α = 0.05) learn too slowly. The setting
    /// chosen on the training data's tail also predicts fresh data from the same world better,
    /// and the log loss the search reports is what that setting reaches on the tail.
    @Test func theChosenSettingBeatsTheDefaultsOnDataItHasNotSeen() throws {
        let hasher = FeatureHasher(bits: 18)
        let train = Self.world(count: 3_000, seed: 1, hasher: hasher)
        let fresh = Self.world(count: 20_000, seed: 2, hasher: hasher)
        let choice = FTRLSearch().choose(features: train.features, labels: train.labels, hasher: hasher)
        #expect(choice.settingsTried == 40)
        #expect(choice.validationExamples == 600)
        #expect(choice.parameters != FTRLProximal.Parameters())

        var chosen = FTRLProximal(hasher: hasher, parameters: choice.parameters)
        var defaults = FTRLProximal(hasher: hasher)
        for _ in 0..<choice.epochs {
            for (x, y) in zip(train.features, train.labels) { chosen.update(x, label: y) }
        }
        for (x, y) in zip(train.features, train.labels) { defaults.update(x, label: y) }
        #expect(Self.logloss(chosen, fresh) < Self.logloss(defaults, fresh) - 0.005)

        // Re-run the chosen setting on the head alone and score the tail.
        var head = FTRLProximal(hasher: hasher, parameters: choice.parameters)
        for _ in 0..<choice.epochs {
            for i in 0..<2_400 { head.update(train.features[i], label: train.labels[i]) }
        }
        let tail = LabeledExamples(features: Array(train.features[2_400...]), labels: Array(train.labels[2_400...]))
        #expect(abs(Self.logloss(head, tail) - (try #require(choice.bestLogloss))) < 1e-6)
        #expect(choice.chosen == choice.best)

        // Asked for more evidence than the tail holds, the search keeps the given setting.
        var strict = FTRLSearch()
        strict.standardErrors = 1_000
        let kept = strict.choose(features: train.features, labels: train.labels, hasher: hasher)
        #expect(kept.best == choice.best && kept.chosen == kept.given && kept.parameters == FTRLProximal.Parameters())
    }

    @Test func tooFewLabelsKeepTheBaseSetting() {
        let hasher = FeatureHasher(bits: 12)
        let train = Self.world(count: 60, seed: 3, hasher: hasher)
        var base = FTRLProximal.Parameters()
        base.alpha = 0.3
        let choice = FTRLSearch().choose(features: train.features, labels: train.labels, hasher: hasher, base: base, baseEpochs: 3)
        #expect(choice.settingsTried == 0)
        #expect(choice.parameters == base && choice.epochs == 3)
        #expect(choice.best == nil && choice.bestLogloss == nil)
    }

    /// The trainer searches unless told not to, and says what it chose.
    @Test func theTrainerSearchesByDefaultAndTakesTheGivenSettingWhenToldNotTo() throws {
        let examples = TrainingTests.examples(count: 4_000, seed: 11)
        var configuration = TrainingConfiguration()
        configuration.calibration = .none
        let tuned = try Trainer(configuration: configuration).train(examples, target: .click, heldOut: [], heldOutName: "none", now: TrainingTests.t0)
        let search = try #require(tuned.search)
        #expect(search.settingsTried > 0)
        #expect((tuned.model as? FTRLProximal)?.parameters == search.parameters)

        // With a calibration layer, settings are judged on its window: the latest third of
        // this hour-long log (1,333 of the 4,000 examples, one a second), after those learned.
        configuration.calibration = .platt
        let calibrated = try Trainer(configuration: configuration).train(examples, target: .click, heldOut: [], heldOutName: "none", now: TrainingTests.t0)
        #expect(calibrated.search?.validationExamples == 1_333)
        #expect(calibrated.meta.trainingExamples == 4_000 - 1_333)

        configuration.tune = false
        configuration.ftrl.alpha = 0.3
        let given = try Trainer(configuration: configuration).train(examples, target: .click, heldOut: [], heldOutName: "none", now: TrainingTests.t0)
        #expect(given.search == nil)
        #expect((given.model as? FTRLProximal)?.parameters.alpha == 0.3)
    }

    /// NE divides by the evaluated examples' own base rate: predicting that rate everywhere is
    /// NE 1, whatever rate the model was trained on.
    @Test func neIsOneForTheEvaluatedSetsOwnRate() {
        let labels = (0..<100).map { $0 < 7 }
        let m = OfflineMetrics(predictions: Array(repeating: 0.07, count: 100), labels: labels)
        #expect(abs(m.ne - 1) < 1e-12)
    }
}
