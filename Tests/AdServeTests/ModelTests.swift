import Domain
import Foundation
import Models
import Testing

@Suite struct ModelTests {
    @Test func aucCountsOrderedPairsAndAveragesTies() {
        #expect(OfflineMetrics.auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]) == 0.75)
        #expect(OfflineMetrics.auc([0.5, 0.5], [false, true]) == 0.5)
        #expect(OfflineMetrics.auc([0.9, 0.1], [false, true]) == 0)
    }

    @Test func loglossNEAndCalibrationByHand() {
        let m = OfflineMetrics(predictions: [0.5, 0.5, 0.5, 0.5], labels: [true, false, false, false])
        #expect(abs(m.logloss - log(2)) < 1e-12)
        let entropy = -(0.25 * log(0.25) + 0.75 * log(0.75))
        #expect(abs(m.ne - log(2) / entropy) < 1e-12)
        #expect(abs(m.calibration - 2) < 1e-12)
    }

    @Test func hashingIsStableAndNamespaced() {
        let h = FeatureHasher(bits: 20, seed: 1)
        #expect(h.index(namespace: "C1", value: "abc") == FeatureHasher(bits: 20, seed: 1).index(namespace: "C1", value: "abc"))
        #expect(h.index(namespace: "C1", value: "abc") != h.index(namespace: "C2", value: "abc"))
        #expect(h.index(namespace: "C1", value: "abc") < 1 << 20)
    }

    /// FTRL learns a separable rule and its predictions follow the labels.
    @Test func ftrlLearnsAndIsCalibratedOnASimpleWorld() {
        var rng = SplitMix64(seed: 3)
        let hasher = FeatureHasher(bits: 12)
        var model = FTRLProximal(hasher: hasher)
        func example(_ color: Int) -> SparseFeatures {
            var x = SparseFeatures()
            x.append(hasher.biasIndex)
            x.append(hasher.index(namespace: "color", value: String(color)))
            return x
        }
        let rates = [0.05, 0.5]
        for _ in 0..<20_000 {
            let color = Int.random(in: 0...1, using: &rng)
            model.update(example(color), label: Double.random(in: 0..<1, using: &rng) < rates[color])
        }
        #expect(abs(model.predict(example(0)) - 0.05) < 0.02)
        #expect(abs(model.predict(example(1)) - 0.5) < 0.05)
    }

    @Test func savedModelLoadsWithIdenticalPredictionsAndCorruptFilesAreRefused() throws {
        let hasher = FeatureHasher(bits: 10)
        var model = FTRLProximal(hasher: hasher)
        let reader = CriteoReader(hasher: hasher)
        let data = reader.parse(Self.criteoLines(300).joined(separator: "\n"))
        #expect(data.labels.count == 300)
        for (x, y) in zip(data.features, data.labels) { model.update(x, label: y) }
        let bytes = model.serialized()
        let loaded = try FTRLProximal(serialized: bytes)
        #expect(loaded == model)
        #expect(data.features.map(loaded.predict) == data.features.map(model.predict))
        #expect(throws: AdServeError.self) { try FTRLProximal(serialized: Array(bytes.dropLast(3))) }
        var wrongVersion = bytes
        wrongVersion[9] = 99
        #expect(throws: AdServeError.self) { try FTRLProximal(serialized: wrongVersion) }
        #expect(throws: AdServeError.self) { try FTRLProximal(serialized: Array("not a model".utf8)) }
    }

    @Test func criteoRowsParseAndMalformedOnesAreCounted() throws {
        let reader = CriteoReader(hasher: FeatureHasher(bits: 16))
        let good = Self.criteoLines(3).joined(separator: "\n")
        let parsed = reader.parse(good + "\nnot\ta\trow\n2" + String(repeating: "\t", count: 39) + "\n")
        #expect(parsed.labels.count == 3)
        #expect(parsed.malformed == 2)
        #expect(parsed.features.allSatisfy { $0.indices.count == 40 })  // bias, 13 integers, 26 categories; missing ones as "NA"
    }

    /// Rows in the Criteo layout (label, 13 integers, 26 hashed categories; some missing).
    static func criteoLines(_ count: Int) -> [String] {
        var rng = SplitMix64(seed: 17)
        return (0..<count).map { _ in
            let label = Int.random(in: 0..<5, using: &rng) == 0 ? "1" : "0"
            let integers = (0..<13).map { _ in Int.random(in: 0..<6, using: &rng) == 0 ? "" : String(Int.random(in: 0...500, using: &rng)) }
            let categories = (0..<26).map { _ in Int.random(in: 0..<8, using: &rng) == 0 ? "" : String(Int.random(in: 0..<50, using: &rng), radix: 16) }
            return ([label] + integers + categories).joined(separator: "\t")
        }
    }
}
