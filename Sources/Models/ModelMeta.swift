import Domain

/// What a model predicts.
public enum PredictionTarget: String, Sendable, Codable, CaseIterable {
    /// P(click | impression).
    case click
    /// P(conversion | click).
    case conversion
    /// P(hide | impression): the user hides the ad, hides its advertiser or calls it not
    /// relevant (the engagement cost of total value).
    case hide
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
    /// Which features the model reads; nil (metadata written before the choice existed): full.
    public var featureSet: ClickFeatures.FeatureSet?
    /// Negative downsampling keep-rate the model was trained with (1 = none); predictions are
    /// recalibrated by `q = p / (p + (1 − p) / w)` before the calibrator.
    public var negativeKeepRate: Double
    /// Fitted on held-out data after training.
    public var calibrator: Calibrator
    /// Measured on the held-out data named by `evaluatedOn`, after calibration.
    public var metrics: OfflineMetrics
    public var evaluatedOn: String
    /// The weights file's size in bytes and its checksum (`ModelChecksum.of`), recorded by the
    /// model repository when it saves the model and checked when it loads it. Nil in metadata
    /// written before files were checksummed (such a file is still read with every bound and
    /// finiteness check) and in a model not saved yet.
    public var fileBytes: Int?
    public var checksum: String?

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
        self.featureSet = features.set
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
            metrics: OfflineMetrics(predictions: [], labels: []), evaluatedOn: "nothing yet")
    }
}
