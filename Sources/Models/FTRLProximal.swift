import Domain
import Foundation

/// Logistic regression trained online by FTRL-Proximal (McMahan et al., "Ad Click Prediction:
/// a View from the Trenches", KDD 2013): per-coordinate learning rates α / (β + √n), L1 for
/// sparsity, L2 for shrinkage. Weights are derived lazily from (z, n) when predicting, or, once
/// `prepareForServing` has run (a model that predicts many times between updates), read from a
/// table computed once: one memory read per feature instead of two and a square root.
public struct FTRLProximal: ClickModel, Equatable {
    public static let kind = "ftrl_lr"

    public struct Parameters: Sendable, Equatable {
        public var alpha: Double = 0.05
        public var beta: Double = 1
        public var l1: Double = 1
        public var l2: Double = 1
        public init() {}
    }

    public let hasher: FeatureHasher
    public let parameters: Parameters
    var z: [Float]
    var n: [Float]
    /// The bias is not regularized: shrinking it towards 0 (P = ½) would bias every prediction
    /// upwards when clicks are rare.
    let bias: Int
    /// Every coordinate's weight, computed from (z, n) by `prepareForServing`; dropped by `update`.
    private var served: ServedWeights?

    private final class ServedWeights: Sendable {
        let w: [Double]
        init(_ w: [Double]) { self.w = w }
    }

    public static func == (a: FTRLProximal, b: FTRLProximal) -> Bool {
        a.hasher == b.hasher && a.parameters == b.parameters && a.z == b.z && a.n == b.n && a.bias == b.bias
    }

    public mutating func prepareForServing() {
        served = ServedWeights((0..<z.count).map(weight))
    }

    /// Every feature value is 1 (`SparseFeatures.append`'s default, the only one the encoder
    /// uses), so the margin is the sum of the served weights.
    public var linearWeights: [Double]? { served?.w }

    public init(hasher: FeatureHasher = FeatureHasher(), parameters: Parameters = Parameters()) {
        self.hasher = hasher
        self.parameters = parameters
        self.z = Array(repeating: 0, count: hasher.dimension)
        self.n = Array(repeating: 0, count: hasher.dimension)
        self.bias = Int(hasher.biasIndex)
    }

    @inline(__always)
    func weight(_ i: Int) -> Double {
        let zi = Double(z[i])
        // Most coordinates sit inside the L1 threshold: answer them before the square root.
        guard i == bias || abs(zi) > parameters.l1 else { return 0 }
        let rate = (parameters.beta + Double(n[i]).squareRoot()) / parameters.alpha
        if i == bias { return -zi / rate }
        let sign: Double = zi < 0 ? -1 : 1
        return -(zi - sign * parameters.l1) / (rate + parameters.l2)
    }

    /// The raw score w·x.
    public func margin(_ x: SparseFeatures) -> Double {
        var acc = 0.0
        if let served {
            served.w.withUnsafeBufferPointer { w in
                for k in x.indices.indices { acc += w[Int(x.indices[k])] * Double(x.values[k]) }
            }
            return acc
        }
        for k in x.indices.indices { acc += weight(Int(x.indices[k])) * Double(x.values[k]) }
        return acc
    }

    /// P(y = 1 | x).
    public func predict(_ x: SparseFeatures) -> Double { sigmoid(margin(x)) }

    /// One FTRL step on one example; `weight` scales the gradient (importance weighting).
    public mutating func update(_ x: SparseFeatures, label: Bool, weight exampleWeight: Double = 1) {
        served = nil
        let p = predict(x)
        let g = (p - (label ? 1 : 0)) * exampleWeight
        for k in x.indices.indices {
            let i = Int(x.indices[k])
            let gi = g * Double(x.values[k])
            let ni = Double(n[i])
            let sigma = ((ni + gi * gi).squareRoot() - ni.squareRoot()) / parameters.alpha
            z[i] += Float(gi - sigma * weight(i))
            n[i] += Float(gi * gi)
        }
    }

    // MARK: Versioned file format

    static let magic = Array("ADSV-FTRL".utf8)
    static let formatVersion: UInt32 = 1

    /// `magic, format version, hash version, bits, seed, α, β, L1, L2, z[], n[]`, little-endian.
    public func serialized() -> [UInt8] {
        var out = ModelBytesWriter(capacity: Self.magic.count + 56 + 8 * z.count)
        out.bytes += Self.magic
        out.put(Self.formatVersion)
        out.put(UInt32(FeatureHasher.version))
        out.put(UInt32(hasher.bits))
        out.put(hasher.seed)
        for v in [parameters.alpha, parameters.beta, parameters.l1, parameters.l2] { out.put(v.bitPattern) }
        for array in [z, n] { out.put(array) }
        return out.bytes
    }

    public init(serialized bytes: [UInt8]) throws(AdServeError) {
        guard var input = ModelBytesReader(bytes, magic: Self.magic) else { throw AdServeError.invalid("model", "not an FTRL model file") }
        guard try input.take(UInt32.self) == Self.formatVersion else { throw AdServeError.invalid("model", "unsupported FTRL format version") }
        guard try input.take(UInt32.self) == UInt32(FeatureHasher.version) else { throw AdServeError.invalid("model", "incompatible feature hash version") }
        let bits = Int(try input.take(UInt32.self))
        guard (4...28).contains(bits) else { throw AdServeError.invalid("model", "bad hash size") }
        let seed = try input.take(UInt64.self)
        var parameters = Parameters()
        parameters.alpha = try input.takeDouble()
        parameters.beta = try input.takeDouble()
        parameters.l1 = try input.takeDouble()
        parameters.l2 = try input.takeDouble()
        let hasher = FeatureHasher(bits: bits, seed: seed)
        guard input.remaining == hasher.dimension * 8 else { throw AdServeError.invalid("model", "model file size does not match its header") }
        self.hasher = hasher
        self.parameters = parameters
        self.z = try input.takeFloats(hasher.dimension)
        self.n = try input.takeFloats(hasher.dimension)
        self.bias = Int(hasher.biasIndex)
    }
}

@inline(__always)
func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}
