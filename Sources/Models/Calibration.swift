import Domain
import Foundation

// MARK: Negative downsampling

/// The correction for negative downsampling (He et al., "Practical Lessons from Predicting Clicks
/// on Ads at Facebook", ADKDD 2014, §6): a model trained on every positive and a share `w` of the
/// negatives predicts p, which overstates the true rate; the true rate is
///
///     q = p / (p + (1 − p) / w)
///
/// because the negatives' odds were divided by w. The alternative, importance weighting, trains
/// kept negatives with weight 1/w and needs no correction (`NegativeDownsampler`).
public struct DownsamplingRecalibration: Sendable, Equatable, Codable {
    /// w: the probability that a negative example was kept, in (0, 1].
    public let keepRate: Double

    public init(keepRate: Double) {
        precondition(keepRate > 0 && keepRate <= 1, "keep rate must be in (0, 1]")
        self.keepRate = keepRate
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let keepRate = try container.decode(Double.self, forKey: .keepRate)
        guard keepRate > 0 && keepRate <= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .keepRate, in: container, debugDescription: "keep rate must be in (0, 1]")
        }
        self.keepRate = keepRate
    }

    /// The true-rate estimate q of a prediction p made by a model trained on downsampled data.
    public func calibrate(_ p: Double) -> Double { Self.recalibrate(p, keepRate: keepRate) }

    /// q = p / (p + (1 − p) / w).
    public static func recalibrate(_ p: Double, keepRate w: Double) -> Double {
        let denominator = p + (1 - p) / w
        return denominator > 0 ? p / denominator : 0
    }
}

/// Decides which examples of a stream to train on: every positive, and each negative with
/// probability `keepRate`, from a seeded generator so a run can be repeated. With
/// `.importanceWeight` kept negatives carry weight 1/keepRate and the model needs no correction;
/// with `.recalibrate` every kept example has weight 1 and predictions go through `calibrator`.
public struct NegativeDownsampler: Sendable {
    public enum Correction: String, Sendable, Codable {
        case recalibrate
        case importanceWeight = "importance_weight"
    }

    public let keepRate: Double
    public let correction: Correction
    private var rng: SplitMix64

    public init(keepRate: Double, correction: Correction = .recalibrate, seed: UInt64 = 0xD0_5A3F) {
        precondition(keepRate > 0 && keepRate <= 1, "keep rate must be in (0, 1]")
        self.keepRate = keepRate
        self.correction = correction
        self.rng = SplitMix64(seed: seed)
    }

    /// The training weight of the example, or nil to drop it.
    public mutating func sample(label: Bool) -> Double? {
        if label { return 1 }
        guard keepRate < 1 else { return 1 }
        guard Double.random(in: 0..<1, using: &rng) < keepRate else { return nil }
        return correction == .importanceWeight ? 1 / keepRate : 1
    }

    /// What to apply to the trained model's predictions.
    public var calibrator: Calibrator {
        correction == .recalibrate && keepRate < 1 ? .downsampling(DownsamplingRecalibration(keepRate: keepRate)) : .identity
    }
}

// MARK: Calibrators

/// A monotone map from a model's prediction to a calibrated probability, stored with a model as
/// JSON (`{"kind": "platt", "a": …, "b": …}`).
public enum Calibrator: Sendable, Equatable, Codable {
    case identity
    case downsampling(DownsamplingRecalibration)
    case platt(PlattCalibrator)
    case isotonic(IsotonicCalibrator)

    public func calibrate(_ p: Double) -> Double {
        switch self {
        case .identity: p
        case .downsampling(let c): c.calibrate(p)
        case .platt(let c): c.calibrate(p)
        case .isotonic(let c): c.calibrate(p)
        }
    }

    private enum CodingKeys: String, CodingKey { case kind }

    public var kind: String {
        switch self {
        case .identity: "identity"
        case .downsampling: "downsampling"
        case .platt: "platt"
        case .isotonic: "isotonic"
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        // The case's own fields sit beside "kind" in the same object.
        switch self {
        case .identity: break
        case .downsampling(let c): try c.encode(to: encoder)
        case .platt(let c): try c.encode(to: encoder)
        case .isotonic(let c): try c.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "identity": self = .identity
        case "downsampling": self = .downsampling(try DownsamplingRecalibration(from: decoder))
        case "platt": self = .platt(try PlattCalibrator(from: decoder))
        case "isotonic": self = .isotonic(try IsotonicCalibrator(from: decoder))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown calibrator \"\(other)\"")
        }
    }
}

/// Platt scaling (Platt 1999, with the smoothed targets and Newton's method of Lin, Lin & Weng
/// 2007): q = σ(a · logit(p) + b), fitted on held-out predictions and labels. a < 1 tempers an
/// overconfident model, b moves its base rate.
public struct PlattCalibrator: Sendable, Equatable, Codable {
    public var a: Double
    public var b: Double

    public init(a: Double = 1, b: Double = 0) {
        self.a = a
        self.b = b
    }

    public func calibrate(_ p: Double) -> Double { sigmoid(a * logit(p) + b) }

    /// Fits (a, b) by minimising the log loss against Platt's smoothed targets
    /// ((N₊ + 1)/(N₊ + 2) for positives, 1/(N₋ + 2) for negatives), which keeps the fit finite on
    /// separable data. Newton's method with a backtracking line search, from the identity map.
    public static func fit(predictions: [Double], labels: [Bool]) -> PlattCalibrator {
        precondition(predictions.count == labels.count)
        guard !predictions.isEmpty else { return PlattCalibrator() }
        let positives = Double(labels.reduce(0) { $0 + ($1 ? 1 : 0) })
        let negatives = Double(labels.count) - positives
        let high = (positives + 1) / (positives + 2)
        let low = 1 / (negatives + 2)
        let z = predictions.map(logit)
        let t = labels.map { $0 ? high : low }

        func loss(_ a: Double, _ b: Double) -> Double {
            var total = 0.0
            for k in z.indices {
                let u = a * z[k] + b
                total += t[k] * softplus(-u) + (1 - t[k]) * softplus(u)
            }
            return total
        }

        var (a, b) = (1.0, 0.0)
        var current = loss(a, b)
        for _ in 0..<100 {
            var (ga, gb, haa, hab, hbb) = (0.0, 0.0, 0.0, 0.0, 0.0)
            for k in z.indices {
                let q = sigmoid(a * z[k] + b)
                let r = q - t[k]
                let s = q * (1 - q)
                ga += r * z[k]
                gb += r
                haa += s * z[k] * z[k]
                hab += s * z[k]
                hbb += s
            }
            // A small ridge keeps the 2 × 2 system solvable when all logits are equal.
            let ridge = 1e-12 * Double(z.count)
            haa += ridge
            hbb += ridge
            let determinant = haa * hbb - hab * hab
            guard determinant > 0 else { break }
            let da = -(hbb * ga - hab * gb) / determinant
            let db = -(haa * gb - hab * ga) / determinant
            var step = 1.0
            var improved = false
            while step > 1e-10 {
                let candidate = loss(a + step * da, b + step * db)
                if candidate <= current {
                    a += step * da
                    b += step * db
                    improved = candidate < current
                    current = candidate
                    break
                }
                step /= 2
            }
            if !improved || abs(step * da) + abs(step * db) < 1e-10 { break }
        }
        return PlattCalibrator(a: a, b: b)
    }
}

/// Isotonic regression by pool-adjacent-violators (Zadrozny & Elkan 2002): the non-decreasing step
/// function of the prediction that best fits the labels in squared error, interpolated linearly
/// between the blocks' mean predictions and constant beyond the first and last block.
public struct IsotonicCalibrator: Sendable, Equatable, Codable {
    /// The blocks' mean predictions, strictly increasing.
    public private(set) var thresholds: [Double]
    /// The blocks' observed rates, non-decreasing.
    public private(set) var values: [Double]

    /// With no blocks the calibrator is the identity.
    public init(thresholds: [Double] = [], values: [Double] = []) {
        precondition(thresholds.count == values.count, "one value per threshold")
        precondition(zip(thresholds, thresholds.dropFirst()).allSatisfy { $0 < $1 }, "thresholds must increase")
        self.thresholds = thresholds
        self.values = values
    }

    private enum CodingKeys: String, CodingKey { case thresholds, values }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let thresholds = try container.decode([Double].self, forKey: .thresholds)
        let values = try container.decode([Double].self, forKey: .values)
        guard thresholds.count == values.count, zip(thresholds, thresholds.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw DecodingError.dataCorruptedError(forKey: .thresholds, in: container,
                                                   debugDescription: "thresholds must increase and match the values one to one")
        }
        self.thresholds = thresholds
        self.values = values
    }

    public func calibrate(_ p: Double) -> Double {
        guard let first = thresholds.first, let last = thresholds.last else { return p }
        if p <= first { return values[0] }
        if p >= last { return values[values.count - 1] }
        // The first threshold above p; thresholds[hi - 1] < p < thresholds[hi].
        var lo = 0
        var hi = thresholds.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if thresholds[mid] <= p { lo = mid } else { hi = mid }
        }
        let t = (p - thresholds[lo]) / (thresholds[hi] - thresholds[lo])
        return values[lo] + t * (values[hi] - values[lo])
    }

    public static func fit(predictions: [Double], labels: [Bool]) -> IsotonicCalibrator {
        precondition(predictions.count == labels.count)
        let order = predictions.indices.filter { predictions[$0].isFinite }.sorted { predictions[$0] < predictions[$1] }
        // Blocks as parallel arrays: Σ prediction, Σ label, count.
        var sumX: [Double] = []
        var sumY: [Double] = []
        var count: [Double] = []
        var previous: Double?
        for k in order {
            let x = predictions[k]
            let y: Double = labels[k] ? 1 : 0
            if x == previous, let last = sumX.indices.last {
                // Equal predictions must get one value: they join the block of the one before.
                sumX[last] += x
                sumY[last] += y
                count[last] += 1
            } else {
                sumX.append(x)
                sumY.append(y)
                count.append(1)
            }
            previous = x
            // Pool while the last two blocks violate the order.
            while sumY.count >= 2 {
                let last = sumY.count - 1
                guard sumY[last - 1] / count[last - 1] >= sumY[last] / count[last] else { break }
                sumX[last - 1] += sumX[last]
                sumY[last - 1] += sumY[last]
                count[last - 1] += count[last]
                sumX.removeLast()
                sumY.removeLast()
                count.removeLast()
            }
        }
        var thresholds: [Double] = []
        var values: [Double] = []
        for b in sumX.indices {
            let x = sumX[b] / count[b]
            // Rounding can make two block means equal; keep thresholds strictly increasing.
            if let previous = thresholds.last, x <= previous { continue }
            thresholds.append(x)
            values.append(sumY[b] / count[b])
        }
        return IsotonicCalibrator(thresholds: thresholds, values: values)
    }
}

@inline(__always)
func logit(_ p: Double) -> Double {
    let q = min(max(p, 1e-15), 1 - 1e-15)
    return log(q / (1 - q))
}

/// log(1 + eˣ) without overflow.
@inline(__always)
func softplus(_ x: Double) -> Double {
    max(x, 0) + log1p(exp(-abs(x)))
}
