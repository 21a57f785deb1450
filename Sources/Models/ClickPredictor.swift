import Domain
import Synchronization

/// A model ready to predict: weights, the feature encoder it was trained with, downsampling
/// correction and calibration — in that order.
public struct ClickPredictor: Sendable {
    public let meta: ModelMeta
    public let model: any ClickModel
    public let features: ClickFeatures
    /// The served weights of a linear model (`ClickModel.linearWeights`), nil for another kind.
    public let linearWeights: [Double]?

    public init(meta: ModelMeta, model: any ClickModel) throws(AdServeError) {
        guard meta.featureVersion == ClickFeatures.version else {
            throw AdServeError.invalid("model", "model \(meta.version) uses feature encoding \(meta.featureVersion); this build speaks \(ClickFeatures.version)")
        }
        guard model.hasher.bits == meta.hashBits, model.hasher.seed == meta.hashSeed else {
            throw AdServeError.invalid("model", "model \(meta.version): weights and metadata disagree on the feature hash")
        }
        self.meta = meta
        var serving = model
        serving.prepareForServing()
        self.model = serving
        self.linearWeights = serving.linearWeights
        self.features = ClickFeatures(hasher: model.hasher, set: meta.featureSet ?? .full)
    }

    /// The calibrated probability for an encoded example.
    public func predict(_ x: SparseFeatures) -> Double {
        meta.calibrated(model.predict(x))
    }

    /// The calibrated probability of a linear model's margin (Σ `linearWeights` of the
    /// example's features): what `predict` returns for that example, up to the rounding of a
    /// sum added in another order.
    public func predict(margin: Double) -> Double {
        meta.calibrated(sigmoid(margin))
    }
}

/// The model a serving path predicts with, swappable while decisions run: a decision takes the
/// current predictor once and uses it throughout, so a swap never mixes two models in one
/// ranking and never fails a request.
public final class ModelSlot: Sendable {
    private let current: Mutex<ClickPredictor?>
    public init(_ predictor: ClickPredictor? = nil) { current = Mutex(predictor) }
    public var predictor: ClickPredictor? { current.withLock { $0 } }
    public func replace(with predictor: ClickPredictor?) { current.withLock { $0 = predictor } }
}
