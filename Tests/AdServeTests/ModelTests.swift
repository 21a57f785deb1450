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
        let m = OfflineMetrics(predictions: [0.5, 0.5, 0.5, 0.5], labels: [true, false, false, false], trainingBaseRate: 0.25)
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
        let text = try String(contentsOfFile: Self.criteo, encoding: .utf8)
        let data = reader.parse(String(text.split(separator: "\n").prefix(300).joined(separator: "\n")))
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
        let good = try String(contentsOfFile: Self.criteo, encoding: .utf8).split(separator: "\n").prefix(3).joined(separator: "\n")
        let parsed = reader.parse(good + "\nnot\ta\trow\n2" + String(repeating: "\t", count: 39) + "\n")
        #expect(parsed.labels.count == 3)
        #expect(parsed.malformed == 2)
        #expect(parsed.features.allSatisfy { $0.indices.count > 20 })
    }

    static let criteo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("shared/data/criteo_kaggle_head10k/criteo_kaggle_train_head.tsv").path
    }()
}
