import Domain
import Foundation

/// Logistic regression trained online by FTRL-Proximal (McMahan et al., "Ad Click Prediction:
/// a View from the Trenches", KDD 2013): per-coordinate learning rates α / (β + √n), L1 for
/// sparsity, L2 for shrinkage. Weights are derived lazily from (z, n) when predicting.
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
        for k in x.indices.indices { acc += weight(Int(x.indices[k])) * Double(x.values[k]) }
        return acc
    }

    /// P(y = 1 | x).
    public func predict(_ x: SparseFeatures) -> Double { sigmoid(margin(x)) }

    /// One FTRL step on one example; `weight` scales the gradient (importance weighting).
    public mutating func update(_ x: SparseFeatures, label: Bool, weight exampleWeight: Double = 1) {
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
        var out = Self.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        put(Self.formatVersion)
        put(UInt32(FeatureHasher.version))
        put(UInt32(hasher.bits))
        put(hasher.seed)
        for v in [parameters.alpha, parameters.beta, parameters.l1, parameters.l2] { put(v.bitPattern) }
        for array in [z, n] { for v in array { put(v.bitPattern) } }
        return out
    }

    public init(serialized bytes: [UInt8]) throws(AdServeError) {
        var offset = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws(AdServeError) -> T {
            let size = MemoryLayout<T>.size
            guard offset + size <= bytes.count else { throw AdServeError.invalid("model", "model file is truncated") }
            var v: T = 0
            for i in 0..<size { v |= T(bytes[offset + i]) << (8 * i) }
            offset += size
            return v
        }
        guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
            throw AdServeError.invalid("model", "not an FTRL model file")
        }
        offset = Self.magic.count
        guard try take(UInt32.self) == Self.formatVersion else { throw AdServeError.invalid("model", "unsupported FTRL format version") }
        guard try take(UInt32.self) == UInt32(FeatureHasher.version) else { throw AdServeError.invalid("model", "incompatible feature hash version") }
        let bits = Int(try take(UInt32.self))
        guard (4...28).contains(bits) else { throw AdServeError.invalid("model", "bad hash size") }
        let seed = try take(UInt64.self)
        var parameters = Parameters()
        parameters.alpha = Double(bitPattern: try take(UInt64.self))
        parameters.beta = Double(bitPattern: try take(UInt64.self))
        parameters.l1 = Double(bitPattern: try take(UInt64.self))
        parameters.l2 = Double(bitPattern: try take(UInt64.self))
        let hasher = FeatureHasher(bits: bits, seed: seed)
        guard bytes.count - offset == hasher.dimension * 8 else { throw AdServeError.invalid("model", "model file size does not match its header") }
        var z = [Float](repeating: 0, count: hasher.dimension)
        var n = [Float](repeating: 0, count: hasher.dimension)
        for i in 0..<hasher.dimension { z[i] = Float(bitPattern: try take(UInt32.self)) }
        for i in 0..<hasher.dimension { n[i] = Float(bitPattern: try take(UInt32.self)) }
        self.hasher = hasher
        self.parameters = parameters
        self.z = z
        self.n = n
        self.bias = Int(hasher.biasIndex)
    }
}

@inline(__always)
func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}
