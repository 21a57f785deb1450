import Domain
import Foundation
import Models
import Testing

@Suite struct ModelMathTests {
    // MARK: Factorization machine

    static func smallFM(bits: Int = 8, factors: Int = 4, initScale: Double = 0.3) -> FactorizationMachine {
        var parameters = FactorizationMachine.Parameters()
        parameters.factors = factors
        parameters.initScale = initScale
        return FactorizationMachine(hasher: FeatureHasher(bits: bits), parameters: parameters)
    }

    /// Four distinct features with values other than 1, so xᵢ appears in every term.
    static var gradientExample: SparseFeatures {
        var x = SparseFeatures()
        x.append(3, 1)
        x.append(17, 0.5)
        x.append(200, -1.5)
        x.append(91, 2)
        return x
    }

    @Test(arguments: [true, false])
    func fmGradientMatchesFiniteDifferencesOfTheLogLoss(label: Bool) {
        let model = Self.smallFM()
        let x = Self.gradientExample
        let k = model.factors
        func loss(_ m: FactorizationMachine) -> Double {
            let p = m.predict(x)
            return label ? -log(p) : -log(1 - p)
        }
        func numeric(_ array: WritableKeyPath<FactorizationMachine, [Float]>, _ j: Int) -> Double {
            var plus = model
            var minus = model
            plus[keyPath: array][j] += 1e-2
            minus[keyPath: array][j] -= 1e-2
            let step = Double(plus[keyPath: array][j]) - Double(minus[keyPath: array][j])
            return (loss(plus) - loss(minus)) / step
        }
        let (linear, factors) = model.lossGradient(x, label: label)
        #expect(factors.contains { abs($0) > 1e-3 }, "the factors' gradient is not trivially zero")
        for e in x.indices.indices {
            let i = Int(x.indices[e])
            let expected = numeric(\.w, i)
            #expect(abs(linear[e] - expected) < 1e-4 + 1e-3 * abs(expected), "w[\(i)]")
            for f in 0..<k {
                let expected = numeric(\.v, i * k + f)
                #expect(abs(factors[e * k + f] - expected) < 1e-4 + 1e-3 * abs(expected), "v[\(i), \(f)]")
            }
        }
    }

    /// The first AdaGrad step from zero accumulators moves each coordinate by −α·g / (β + |g|),
    /// with g the gradient above: the update steps along exactly that gradient.
    @Test func fmUpdateStepsAlongItsGradient() {
        var parameters = FactorizationMachine.Parameters()
        parameters.factors = 4
        parameters.initScale = 0.3
        parameters.linearL2 = 0
        parameters.factorL2 = 0
        let before = FactorizationMachine(hasher: FeatureHasher(bits: 8), parameters: parameters)
        let x = Self.gradientExample
        let (linear, factors) = before.lossGradient(x, label: true)
        var after = before
        after.update(x, label: true, weight: 1)
        func step(_ g: Double, _ rate: Double) -> Double { -rate * g / (parameters.beta + abs(g)) }
        for e in x.indices.indices {
            let i = Int(x.indices[e])
            #expect(abs(Double(after.w[i] - before.w[i]) - step(linear[e], parameters.linearRate)) < 1e-6)
            for f in 0..<4 {
                let j = i * 4 + f
                #expect(abs(Double(after.v[j] - before.v[j]) - step(factors[e * 4 + f], parameters.factorRate)) < 1e-6)
            }
        }
    }

    /// y depends only on a XOR b: each of a and b alone says nothing, so logistic regression on
    /// one-hot a and b ranks at chance, while the FM's factor interaction learns the rule.
    @Test func fmLearnsAnInteractionThatLogisticRegressionCannot() {
        let hasher = FeatureHasher(bits: 10)
        func example(_ a: Int, _ b: Int) -> SparseFeatures {
            var x = SparseFeatures()
            x.append(hasher.biasIndex)
            x.append(hasher.index(namespace: "a", value: String(a)))
            x.append(hasher.index(namespace: "b", value: String(b)))
            return x
        }
        var rng = SplitMix64(seed: 11)
        func draw() -> (SparseFeatures, Bool) {
            let a = Int.random(in: 0...1, using: &rng)
            let b = Int.random(in: 0...1, using: &rng)
            return (example(a, b), Double.random(in: 0..<1, using: &rng) < (a != b ? 0.9 : 0.1))
        }
        var fm = Self.smallFM(bits: 10, factors: 4, initScale: 0.02)
        var lr = FTRLProximal(hasher: hasher)
        for _ in 0..<6_000 {
            let (x, y) = draw()
            fm.update(x, label: y, weight: 1)
            lr.update(x, label: y, weight: 1)
        }
        let test = (0..<2_000).map { _ in draw() }
        let labels = test.map(\.1)
        let fmAUC = OfflineMetrics.auc(test.map { fm.predict($0.0) }, labels)
        let lrAUC = OfflineMetrics.auc(test.map { lr.predict($0.0) }, labels)
        // 0.9 is the best any model can do on this world.
        #expect(fmAUC > 0.85)
        #expect(lrAUC < 0.6)
        #expect(fm.predict(example(0, 1)) > 0.8)
        #expect(fm.predict(example(1, 1)) < 0.2)
    }

    @Test func fmSavedModelLoadsWithIdenticalPredictionsAndBadFilesAreRefused() throws {
        let hasher = FeatureHasher(bits: 10)
        var model = Self.smallFM(bits: 10, factors: 3, initScale: 0.05)
        let data = CriteoReader(hasher: hasher).parse(ModelTests.criteoLines(200).joined(separator: "\n"))
        for (x, y) in zip(data.features, data.labels) { model.update(x, label: y, weight: 1) }
        let bytes = model.serialized()
        let loaded = try FactorizationMachine(serialized: bytes)
        #expect(loaded == model)
        #expect(data.features.map(loaded.predict) == data.features.map(model.predict))

        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: Array(bytes.dropLast(5))) }
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: bytes + [0]) }
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: Array(bytes.prefix(20))) }
        var wrongVersion = bytes
        wrongVersion[7] = 99  // the format version follows the 7-byte magic
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: wrongVersion) }
        var wrongFactors = bytes
        wrongFactors[7 + 4 + 4 + 4 + 8] = 4  // k: 3 → 4, so the arrays no longer fit the header
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: wrongFactors) }
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: FTRLProximal(hasher: hasher).serialized()) }
        #expect(throws: AdServeError.self) { try FactorizationMachine(serialized: []) }
    }

    // MARK: Downsampling and recalibration

    @Test func recalibrationFormula() {
        #expect(abs(DownsamplingRecalibration.recalibrate(0.5, keepRate: 0.1) - 1.0 / 11) < 1e-15)
        #expect(DownsamplingRecalibration(keepRate: 1).calibrate(0.3) == 0.3)
        #expect(DownsamplingRecalibration.recalibrate(0, keepRate: 0.1) == 0)
        #expect(DownsamplingRecalibration.recalibrate(1, keepRate: 0.1) == 1)
        // It inverts downsampling's effect on the odds: p = q / (q + (1 − q) · w).
        for q in [0.001, 0.02, 0.3, 0.9] {
            let w = 0.05
            let p = q / (q + (1 - q) * w)
            #expect(abs(DownsamplingRecalibration.recalibrate(p, keepRate: w) - q) < 1e-12)
        }
    }

    @Test func samplerKeepsEveryPositiveAndTheKeepRateOfNegatives() {
        var sampler = NegativeDownsampler(keepRate: 0.2, correction: .importanceWeight, seed: 1)
        #expect((0..<1_000).allSatisfy { _ in sampler.sample(label: true) == 1 })
        let weights = (0..<20_000).compactMap { _ in sampler.sample(label: false) }
        #expect(abs(Double(weights.count) / 20_000 - 0.2) < 0.015)
        #expect(weights.allSatisfy { abs($0 - 5) < 1e-12 })
        #expect(sampler.calibrator == .identity)
        #expect(NegativeDownsampler(keepRate: 0.2).calibrator == .downsampling(DownsamplingRecalibration(keepRate: 0.2)))
    }

    static let colorRates = [0.01, 0.04]

    static func colorExample(_ hasher: FeatureHasher, _ color: Int) -> SparseFeatures {
        var x = SparseFeatures()
        x.append(hasher.biasIndex)
        x.append(hasher.index(namespace: "color", value: String(color)))
        return x
    }

    /// Trains a factorization machine on a stream with rates `colorRates`, downsampling negatives
    /// at 10%; returns the raw and the corrected prediction per color.
    static func trainDownsampled(_ correction: NegativeDownsampler.Correction) -> (raw: [Double], corrected: [Double]) {
        let hasher = FeatureHasher(bits: 10)
        var model = FactorizationMachine(hasher: hasher)
        var sampler = NegativeDownsampler(keepRate: 0.1, correction: correction, seed: 5)
        var rng = SplitMix64(seed: 21)
        for _ in 0..<100_000 {
            let color = Int.random(in: 0...1, using: &rng)
            let y = Double.random(in: 0..<1, using: &rng) < colorRates[color]
            guard let weight = sampler.sample(label: y) else { continue }
            model.update(colorExample(hasher, color), label: y, weight: weight)
        }
        let raw = colorRates.indices.map { model.predict(colorExample(hasher, $0)) }
        return (raw, raw.map(sampler.calibrator.calibrate))
    }

    @Test func trainingOnDownsampledDataThenRecalibratingRecoversTheRate() {
        let (raw, corrected) = Self.trainDownsampled(.recalibrate)
        for (color, rate) in Self.colorRates.enumerated() {
            #expect(raw[color] > 2 * rate, "without the correction the model overstates the rate")
            #expect(abs(corrected[color] - rate) < 0.3 * rate, "color \(color): \(corrected[color]) vs \(rate)")
        }
    }

    @Test func importanceWeightingIsCalibratedWithoutRecalibration() {
        let (raw, corrected) = Self.trainDownsampled(.importanceWeight)
        #expect(raw == corrected)
        for (color, rate) in Self.colorRates.enumerated() {
            #expect(abs(raw[color] - rate) < 0.3 * rate, "color \(color): \(raw[color]) vs \(rate)")
        }
    }

    // MARK: Platt and isotonic calibration

    /// True rates σ(N(−2, 1)); the predictor reports σ(1.5 · logit + 1.5): overconfident and high.
    static func miscalibrated(_ count: Int, seed: UInt64) -> (predictions: [Double], labels: [Bool]) {
        var rng = SplitMix64(seed: seed)
        var predictions: [Double] = []
        var labels: [Bool] = []
        for _ in 0..<count {
            // Box–Muller: a standard normal from two uniforms.
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            let z = (-2 * log(u)).squareRoot() * cos(2 * Double.pi * Double.random(in: 0..<1, using: &rng))
            let logit = -2 + z
            labels.append(Double.random(in: 0..<1, using: &rng) < 1 / (1 + exp(-logit)))
            predictions.append(1 / (1 + exp(-(1.5 * logit + 1.5))))
        }
        return (predictions, labels)
    }

    static func calibrationRatio(_ predictions: [Double], _ labels: [Bool]) -> Double {
        OfflineMetrics(predictions: predictions, labels: labels).calibration
    }

    @Test func plattAndIsotonicFixAMiscalibratedPredictor() throws {
        let held = Self.miscalibrated(10_000, seed: 1)
        let test = Self.miscalibrated(10_000, seed: 2)
        let before = Self.calibrationRatio(test.predictions, test.labels)
        let eceBefore = OfflineMetrics.ece(test.predictions, test.labels)
        #expect(before > 1.3)

        let platt = PlattCalibrator.fit(predictions: held.predictions, labels: held.labels)
        // The distortion was 1.5 · logit + 1.5; the fit should undo it: a = 1/1.5, b = −1.
        #expect(abs(platt.a - 1 / 1.5) < 0.08)
        #expect(abs(platt.b + 1) < 0.1)
        let isotonic = IsotonicCalibrator.fit(predictions: held.predictions, labels: held.labels)
        #expect(zip(isotonic.values, isotonic.values.dropFirst()).allSatisfy { $0 <= $1 })

        for calibrator in [Calibrator.platt(platt), .isotonic(isotonic)] {
            let fixed = test.predictions.map(calibrator.calibrate)
            let ratio = Self.calibrationRatio(fixed, test.labels)
            #expect(abs(ratio - 1) < 0.05, "\(calibrator.kind): calibration \(ratio)")
            #expect(OfflineMetrics.ece(fixed, test.labels) < eceBefore / 3, "\(calibrator.kind)")
            // A monotone map keeps the ranking.
            #expect(abs(OfflineMetrics.auc(fixed, test.labels) - OfflineMetrics.auc(test.predictions, test.labels)) < 0.01)
        }
    }

    @Test func isotonicPoolsViolatorsByHand() {
        // Sorted: 0.1 → 0, 0.2 → 1, 0.3 → 0, 0.4 → 1: the middle pair pools to ½ at 0.25.
        let c = IsotonicCalibrator.fit(predictions: [0.4, 0.2, 0.1, 0.3], labels: [true, true, false, false])
        #expect(c.thresholds.count == 3)
        #expect(abs(c.thresholds[1] - 0.25) < 1e-12)
        #expect(c.values == [0, 0.5, 1])
        #expect(c.calibrate(0.05) == 0)
        #expect(abs(c.calibrate(0.175) - 0.25) < 1e-12)
        #expect(c.calibrate(0.9) == 1)
        #expect(IsotonicCalibrator().calibrate(0.37) == 0.37)
    }

    @Test func calibratorsRoundTripThroughJSON() throws {
        let calibrators: [Calibrator] = [
            .identity,
            .downsampling(DownsamplingRecalibration(keepRate: 0.25)),
            .platt(PlattCalibrator(a: 0.7, b: -0.3)),
            .isotonic(IsotonicCalibrator(thresholds: [0.1, 0.5], values: [0.05, 0.6])),
        ]
        for calibrator in calibrators {
            let json = try JSONEncoder().encode(calibrator)
            #expect(String(decoding: json, as: UTF8.self).contains("\"kind\":\"\(calibrator.kind)\""))
            let decoded = try JSONDecoder().decode(Calibrator.self, from: json)
            #expect(decoded == calibrator)
            #expect(decoded.calibrate(0.3) == calibrator.calibrate(0.3))
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Calibrator.self, from: Data(#"{"kind":"magic"}"#.utf8)) }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Calibrator.self, from: Data(#"{"kind":"isotonic","thresholds":[0.5,0.1],"values":[0,1]}"#.utf8))
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Calibrator.self, from: Data(#"{"kind":"downsampling","keepRate":0}"#.utf8)) }
    }

    // MARK: Offline metrics

    @Test func expectedCalibrationErrorByHand() {
        // Two equal-count bins: {0.1, 0.2} → |0.15 − 0.5|, {0.3, 0.4} → |0.35 − 0.5|, half each.
        #expect(abs(OfflineMetrics.ece([0.4, 0.1, 0.3, 0.2], [true, false, false, true], bins: 2) - 0.25) < 1e-12)
        // Ten examples, ten bins of one: the mean of |p − y|.
        let p = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
        let y = [false, false, true, false, false, true, true, false, true, true]
        let expected = zip(p, y).map { abs($0 - ($1 ? 1 : 0)) }.reduce(0, +) / 10
        let m = OfflineMetrics(predictions: p, labels: y)
        #expect(abs(m.ece - expected) < 1e-12)
        // Perfect bins have no error.
        #expect(OfflineMetrics.ece([0.5, 0.5, 0.5, 0.5], [true, false, true, false], bins: 2) == 0)
    }

    @Test func thresholdMetricsByHand() {
        let p = [0.9, 0.8, 0.6, 0.4, 0.3, 0.2]
        let y = [true, false, true, true, false, false]
        // At 0.5: TP 2 (0.9, 0.6), FP 1 (0.8), FN 1 (0.4), TN 2.
        let m = OfflineMetrics(predictions: p, labels: y)
        #expect(m.threshold == 0.5)
        #expect(abs(m.precision - 2.0 / 3) < 1e-12)
        #expect(abs(m.recall - 2.0 / 3) < 1e-12)
        #expect(abs(m.f1 - 2.0 / 3) < 1e-12)
        #expect(abs(m.accuracy - 4.0 / 6) < 1e-12)
        // At 0.35: TP 3, FP 1, FN 0, TN 2.
        let low = OfflineMetrics(predictions: p, labels: y, threshold: 0.35)
        #expect(low.threshold == 0.35)
        #expect(abs(low.precision - 0.75) < 1e-12)
        #expect(low.recall == 1)
        #expect(abs(low.f1 - 6.0 / 7) < 1e-12)
        #expect(abs(low.accuracy - 5.0 / 6) < 1e-12)
        // No positive call: precision and F1 are 0, not NaN.
        let none = OfflineMetrics(predictions: p, labels: y, threshold: 0.95)
        #expect(none.precision == 0 && none.recall == 0 && none.f1 == 0)
        #expect(abs(none.accuracy - 0.5) < 1e-12)
    }

    @Test func rankingMetricsByHand() {
        // Ranked 0, 2, 1: the click is third.
        let first = RankingMetrics.Group(scores: [0.9, 0.5, 0.7], clicked: [false, true, false])
        // Ranked 1, 2, 0, 3: clicks second and third.
        let second = RankingMetrics.Group(scores: [0.2, 0.8, 0.6, 0.1], clicked: [true, false, true, false])
        let noClick = RankingMetrics.Group(scores: [0.3, 0.1], clicked: [false, false])

        #expect(RankingMetrics.reciprocalRank(first) == 1.0 / 3)
        #expect(RankingMetrics.reciprocalRank(second) == 0.5)
        #expect(abs(RankingMetrics.ndcg(first, k: 10) - 0.5) < 1e-12)  // (1/log2 4) / 1
        let secondNDCG = (1 / log2(3.0) + 1 / log2(4.0)) / (1 + 1 / log2(3.0))
        #expect(abs(RankingMetrics.ndcg(second, k: 10) - secondNDCG) < 1e-12)
        #expect(RankingMetrics.ndcg(first, k: 2) == 0)
        #expect(abs(RankingMetrics.ndcg(second, k: 2) - (1 / log2(3.0)) / (1 + 1 / log2(3.0))) < 1e-12)

        let metrics = RankingMetrics(groups: [first, second, noClick], k: 10)
        #expect(metrics.groups == 3)
        #expect(metrics.countedGroups == 2)
        #expect(abs(metrics.mrr - 5.0 / 12) < 1e-12)
        #expect(abs(metrics.ndcg - (0.5 + secondNDCG) / 2) < 1e-12)

        let perfect = RankingMetrics(groups: [RankingMetrics.Group(scores: [0.9, 0.8, 0.1], clicked: [true, true, false])])
        #expect(perfect.mrr == 1 && abs(perfect.ndcg - 1) < 1e-12)
        #expect(RankingMetrics(groups: [noClick]).countedGroups == 0)
    }

    // MARK: CSV reader

    @Test func csvFieldsUndoQuoting() {
        #expect(CSVReader.fields(#"a,"b,c","d""e","#) == ["a", "b,c", #"d"e"#, ""])
        #expect(CSVReader.fields(#""""#) == [""])
        #expect(CSVReader.fields(#"x,"open"#) == nil)
        #expect(CSVReader.fields(#""closed"junk,1"#) == nil)
    }

    @Test func csvRowsParseWithNumericColumnsAndMalformedRowsAreCounted() throws {
        let hasher = FeatureHasher(bits: 16)
        let text = #"""
            id,label,"site, name",price,clicks
            1,1,"Acme, Inc.",2.5,3
            2,0,"He said ""hi""",,0\#r
            3,true,plain,-4.2,
            4,maybe,x,1,1
            5,0,x,abc,1
            6,0,x
            7,0,"unclosed,1,1
            8,FALSE,x,7.0,-2

            """#
        let reader = CSVReader(hasher: hasher, labelColumn: "label", numericColumns: ["price", "clicks"])
        let parsed = try reader.parse(text)
        #expect(parsed.labels == [true, false, true, false])
        #expect(parsed.malformed == 4)

        func f(_ namespace: String, _ value: String) -> UInt32 { hasher.index(namespace: namespace, value: value) }
        let bias = hasher.biasIndex
        // 2.5 → f+⌊log2 3.5⌋ = f+1; 3 → integer bucket b⌊ln(3)²⌋ = b1.
        #expect(parsed.features[0].indices == [bias, f("id", "1"), f("site, name", "Acme, Inc."), f("price", "f+1"), f("clicks", "b1")])
        // Doubled quotes, a missing price, 0 → bucket 0, and no stray carriage return.
        #expect(parsed.features[1].indices == [bias, f("id", "2"), f("site, name", #"He said "hi""#), f("clicks", "0")])
        // −4.2 → f−⌊log2 5.2⌋ = f-2; clicks missing.
        #expect(parsed.features[2].indices == [bias, f("id", "3"), f("site, name", "plain"), f("price", "f-2")])
        // 7.0 is an integer (b⌊ln(7)²⌋ = b3); integers up to 2, negatives included, are their own bucket.
        #expect(parsed.features[3].indices == [bias, f("id", "8"), f("site, name", "x"), f("price", "b3"), f("clicks", "-2")])
        #expect(parsed.features.allSatisfy { $0.values.allSatisfy { $0 == 1 } })
    }

    @Test func csvWithoutTheLabelColumnIsRefused() throws {
        let reader = CSVReader(hasher: FeatureHasher(bits: 12), labelColumn: "clicked")
        let error = #expect(throws: AdServeError.self) { try reader.parse("a,b\n1,2\n") }
        #expect(error?.field == "label")
        let numeric = CSVReader(hasher: FeatureHasher(bits: 12), numericColumns: ["price"])
        #expect(throws: AdServeError.self) { try numeric.parse("label,b\n1,2\n") }
        // No header at all: nothing to read, not an error here (the caller reports the empty file).
        #expect(try numeric.parse("").isEmpty)
    }
}
