import Domain
import Foundation
import Models

/// What a model predicts.
public enum PredictionTarget: String, Sendable, Codable, CaseIterable {
    /// P(click | impression).
    case click
    /// P(conversion | click).
    case conversion
}

/// Everything stored with a model besides its weights.
public struct ModelMeta: Sendable, Codable, Equatable {
    public var version: Int
    public var kind: String
    public var target: PredictionTarget
    public var createdAt: Timestamp
    /// The time range of the impressions it was trained on, and how many examples.
    public var trainedFrom: Timestamp
    public var trainedTo: Timestamp
    public var trainingExamples: Int
    public var trainingBaseRate: Double
    /// The feature spec: encoding version and hash table.
    public var featureVersion: Int
    public var hashBits: Int
    public var hashSeed: UInt64
    /// Negative downsampling keep-rate the model was trained with (1 = none); predictions are
    /// recalibrated by `q = p / (p + (1 − p) / w)` before the calibrator.
    public var negativeKeepRate: Double
    /// Fitted on held-out data after training.
    public var calibrator: Calibrator
    /// Measured on the held-out data named by `evaluatedOn`, after calibration.
    public var metrics: OfflineMetrics
    public var evaluatedOn: String

    /// A raw model prediction, corrected for negative downsampling and then calibrated.
    public func calibrated(_ raw: Double) -> Double {
        calibrator.calibrate(DownsamplingRecalibration.recalibrate(raw, keepRate: negativeKeepRate))
    }

    public init(
        version: Int = 0, kind: String, target: PredictionTarget, createdAt: Timestamp, trainedFrom: Timestamp, trainedTo: Timestamp,
        trainingExamples: Int, trainingBaseRate: Double, features: ClickFeatures, negativeKeepRate: Double, calibrator: Calibrator,
        metrics: OfflineMetrics, evaluatedOn: String
    ) {
        self.version = version
        self.kind = kind
        self.target = target
        self.createdAt = createdAt
        self.trainedFrom = trainedFrom
        self.trainedTo = trainedTo
        self.trainingExamples = trainingExamples
        self.trainingBaseRate = trainingBaseRate
        self.featureVersion = ClickFeatures.version
        self.hashBits = features.hasher.bits
        self.hashSeed = features.hasher.seed
        self.negativeKeepRate = negativeKeepRate
        self.calibrator = calibrator
        self.metrics = metrics
        self.evaluatedOn = evaluatedOn
    }
}

extension ModelMeta {
    /// The metadata of a model nothing has trained yet (online learning's cold start).
    public static func untrained(kind: String, target: PredictionTarget, features: ClickFeatures, at time: Timestamp) -> ModelMeta {
        ModelMeta(
            kind: kind, target: target, createdAt: time, trainedFrom: time, trainedTo: time, trainingExamples: 0, trainingBaseRate: 0,
            features: features, negativeKeepRate: 1, calibrator: .identity,
            metrics: OfflineMetrics(predictions: [], labels: [], trainingBaseRate: 0), evaluatedOn: "nothing yet")
    }
}

/// A model ready to predict: weights, the feature encoder it was trained with, downsampling
/// correction and calibration — in that order.
public struct ClickPredictor: Sendable {
    public let meta: ModelMeta
    public let model: any ClickModel
    public let features: ClickFeatures

    public init(meta: ModelMeta, model: any ClickModel) throws(AdServeError) {
        guard meta.featureVersion == ClickFeatures.version else {
            throw AdServeError.invalid("model", "model \(meta.version) uses feature encoding \(meta.featureVersion); this build speaks \(ClickFeatures.version)")
        }
        guard model.hasher.bits == meta.hashBits, model.hasher.seed == meta.hashSeed else {
            throw AdServeError.invalid("model", "model \(meta.version): weights and metadata disagree on the feature hash")
        }
        self.meta = meta
        self.model = model
        self.features = ClickFeatures(hasher: model.hasher)
    }

    /// The calibrated probability for an encoded example.
    public func predict(_ x: SparseFeatures) -> Double {
        meta.calibrated(model.predict(x))
    }

    /// Calibrated predictions for logged examples, encoded as serving would.
    public func predictions(for examples: [JoinedExample]) -> [Double] {
        var x = SparseFeatures()
        return examples.map { example in
            features.encode(example.features, into: &x)
            return predict(x)
        }
    }
}

/// Model kinds by name: how a stored model is made and read back.
public enum ModelKinds {
    public static let known = [FTRLProximal.kind, FactorizationMachine.kind]

    public static func make(_ kind: String, hasher: FeatureHasher, ftrl: FTRLProximal.Parameters = .init()) throws(AdServeError) -> any ClickModel {
        switch kind {
        case FTRLProximal.kind: FTRLProximal(hasher: hasher, parameters: ftrl)
        case FactorizationMachine.kind: FactorizationMachine(hasher: hasher)
        default: throw AdServeError.invalid("kind", "unknown model kind '\(kind)'; known: \(known.joined(separator: ", "))")
        }
    }

    public static func decode(_ kind: String, bytes: [UInt8]) throws(AdServeError) -> any ClickModel {
        switch kind {
        case FTRLProximal.kind: try FTRLProximal(serialized: bytes)
        case FactorizationMachine.kind: try FactorizationMachine(serialized: bytes)
        default: throw AdServeError.invalid("kind", "unknown model kind '\(kind)'")
        }
    }
}

/// Trained models on disk, one directory per version (`v000001/model.bin`, `meta.json`), and
/// per target the promotion history (`promoted-click.json`): the last entry is what serves,
/// rollback drops it. Files are written to a temporary name and renamed, so a reader never sees
/// half a file.
public struct ModelRepository: Sendable {
    public let directory: URL

    public init(directory: String) throws(AdServeError) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        } catch {
            throw AdServeError.invalid("models", "cannot create model directory \(directory): \(error.localizedDescription)")
        }
    }

    private func versionDirectory(_ version: Int) -> URL {
        let digits = String(version)
        return directory.appendingPathComponent("v" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits, isDirectory: true)
    }

    /// Stores a new version and returns its metadata with the version number filled in.
    public func save(_ model: any ClickModel, meta: ModelMeta) throws -> ModelMeta {
        var meta = meta
        meta.version = (try list().map(\.version).max() ?? 0) + 1
        let folder = versionDirectory(meta.version)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Self.atomicWrite(Data(model.serialized()), to: folder.appendingPathComponent("model.bin"))
        try Self.atomicWrite(try Self.encoder.encode(meta), to: folder.appendingPathComponent("meta.json"))
        return meta
    }

    /// Every stored version, oldest first. A version whose metadata cannot be read is skipped.
    public func list() throws -> [ModelMeta] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("v") }.sorted().compactMap { name in
            let url = directory.appendingPathComponent(name).appendingPathComponent("meta.json")
            return (try? Data(contentsOf: url)).flatMap { try? JSONDecoder().decode(ModelMeta.self, from: $0) }
        }
    }

    public func meta(_ version: Int) throws(AdServeError) -> ModelMeta {
        let url = versionDirectory(version).appendingPathComponent("meta.json")
        guard let data = try? Data(contentsOf: url) else { throw AdServeError.notFound("model version \(version)") }
        do {
            return try JSONDecoder().decode(ModelMeta.self, from: data)
        } catch {
            throw AdServeError.invalid("model", "model \(version): unreadable metadata")
        }
    }

    /// Loads and checks a version: a corrupt or incompatible file throws, nothing half-loaded.
    public func load(_ version: Int) throws(AdServeError) -> ClickPredictor {
        let meta = try meta(version)
        guard let data = try? Data(contentsOf: versionDirectory(version).appendingPathComponent("model.bin")) else {
            throw AdServeError.invalid("model", "model \(version): weights file missing")
        }
        return try ClickPredictor(meta: meta, model: ModelKinds.decode(meta.kind, bytes: [UInt8](data)))
    }

    // MARK: Promotion

    private func historyURL(_ target: PredictionTarget) -> URL { directory.appendingPathComponent("promoted-\(target.rawValue).json") }

    /// Promoted versions of a target, oldest first; the last one serves.
    public func history(_ target: PredictionTarget) -> [Int] {
        (try? Data(contentsOf: historyURL(target))).flatMap { try? JSONDecoder().decode([Int].self, from: $0) } ?? []
    }

    public func promoted(_ target: PredictionTarget) -> Int? { history(target).last }

    /// Makes `version` the serving model of its target. The version must exist and load.
    public func promote(_ version: Int) throws {
        let predictor = try load(version)
        var history = history(predictor.meta.target)
        if history.last != version { history.append(version) }
        try Self.atomicWrite(try Self.encoder.encode(history), to: historyURL(predictor.meta.target))
    }

    /// Returns to the previously promoted version of `target`; throws if there is none.
    @discardableResult
    public func rollback(_ target: PredictionTarget) throws -> Int {
        var history = history(target)
        guard history.count >= 2 else { throw AdServeError(.conflict, "no earlier promoted \(target.rawValue) model to roll back to") }
        history.removeLast()
        try Self.atomicWrite(try Self.encoder.encode(history), to: historyURL(target))
        return history[history.count - 1]
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }

    static func atomicWrite(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
        try data.write(to: temporary)
        // rename(2) replaces the destination atomically.
        guard rename(temporary.path, url.path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw AdServeError(.storage, "cannot write \(url.path): errno \(errno)")
        }
    }
}
