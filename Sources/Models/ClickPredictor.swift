import Domain
import Foundation
import Synchronization

/// A model ready to predict: weights, the feature encoder it was trained with, downsampling
/// correction and calibration — in that order.
public struct ClickPredictor: Sendable {
    public let meta: ModelMeta
    public let model: any ClickModel
    public let features: ClickFeatures
    /// The served weights of a linear model (`ClickModel.linearWeights`), nil for another kind.
    public let linearWeights: [Double]?
    /// `meta`'s calibration as a map of the margin, when it has one (`MarginCalibration`).
    private let marginCalibration: MarginCalibration?

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
        self.marginCalibration = MarginCalibration(meta)
    }

    /// The calibrated probability for an encoded example.
    public func predict(_ x: SparseFeatures) -> Double {
        meta.calibrated(model.predict(x))
    }

    /// The calibrated probability of a linear model's margin (Σ `linearWeights` of the
    /// example's features): what `predict` returns for that example, up to the rounding of a
    /// sum added in another order.
    public func predict(margin: Double) -> Double {
        marginCalibration?.probability(margin) ?? meta.calibrated(sigmoid(margin))
    }
}

/// Downsampling's correction and a Platt or identity calibrator, applied to a margin m rather
/// than to σ(m): the correction multiplies the odds by w, which adds ln w to the margin, and
/// Platt's σ(a · logit(q) + b) reads that margin back through the logit. So the whole chain is
/// σ(a · clamp(m + ln w) + b), one exp where σ, the correction, the logit's log and σ again took
/// three transcendentals per prediction (4.7% of a learned decision in `perf`). The clamp is
/// `logit`'s, moved to margin space. Equal to `meta.calibrated(sigmoid(m))` up to rounding, and
/// closer to the exact value where σ(m) rounds near 0 or 1. Nil for an isotonic calibrator,
/// which reads the probability itself.
struct MarginCalibration: Sendable {
    let shift: Double
    let a: Double
    let b: Double
    /// `logit`'s clamp in margin space (none for a model without Platt scaling).
    let low: Double
    let high: Double

    init?(_ meta: ModelMeta) {
        var shift = log(meta.negativeKeepRate)
        switch meta.calibrator {
        case .identity:
            (a, b, low, high) = (1, 0, -.infinity, .infinity)
        case .downsampling(let c):
            shift += log(c.keepRate)
            (a, b, low, high) = (1, 0, -.infinity, .infinity)
        case .platt(let c):
            (a, b, low, high) = (c.a, c.b, logit(0), logit(1))
        case .isotonic:
            return nil
        }
        self.shift = shift
    }

    @inline(__always)
    func probability(_ margin: Double) -> Double {
        sigmoid(a * min(max(margin + shift, low), high) + b)
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
