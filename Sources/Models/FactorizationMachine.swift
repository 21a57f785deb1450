import Domain
import Foundation

/// A 2-way factorization machine (Rendle, "Factorization Machines", ICDM 2010) over hashed sparse
/// features:
///
///     ŷ(x) = σ( Σᵢ wᵢ xᵢ + ½ Σ_f [ (Σᵢ v_if xᵢ)² − Σᵢ v_if² xᵢ² ] )
///
/// which is Σᵢ<ⱼ ⟨vᵢ, vⱼ⟩ xᵢ xⱼ computed in O(k · nnz). Every example carries the bias feature, so
/// its linear weight is w₀. Each feature has a linear weight and `k` latent factors; pairs of
/// features that never co-occurred in training still get an interaction through their factors,
/// which is what lets the model learn crosses (XOR-like rules) that logistic regression cannot.
///
/// Trained online with per-coordinate AdaGrad (Duchi et al. 2011), step α / (β + √Σg²) like
/// FTRL-Proximal's learning-rate schedule, and L2 applied to the coordinates an example touches.
/// Factors start uniform in ±`initScale`, drawn from a seeded `SplitMix64`, so the same parameters
/// give the same model everywhere.
///
/// Storage is struct-of-arrays: `w[i]`, and the factors of feature `i` at `v[i·k ..< i·k + k]`;
/// nothing is allocated per feature, per prediction or per update.
public struct FactorizationMachine: ClickModel, Equatable {
    public static let kind = "fm"

    public struct Parameters: Sendable, Equatable {
        /// Latent factors per feature, k (clamped to 1...64).
        public var factors = 8
        /// AdaGrad α for the linear weights.
        public var linearRate = 0.05
        /// AdaGrad α for the factors.
        public var factorRate = 0.02
        /// AdaGrad β: step α / (β + √Σg²).
        public var beta = 1.0
        /// L2 on the linear weights, per update of a coordinate.
        public var linearL2 = 1e-6
        /// L2 on the factors, per update of a coordinate.
        public var factorL2 = 1e-4
        /// Initial factors are uniform in ±initScale.
        public var initScale = 0.02
        /// Seed of the factor initialisation.
        public var seed: UInt64 = 0xFAC7_0125
        public init() {}
    }

    public let hasher: FeatureHasher
    public let parameters: Parameters
    /// k, the number of factors per feature.
    public let factors: Int
    /// Linear weights, one per hashed feature.
    package var w: [Float]
    /// AdaGrad's sums of squared gradients of `w`.
    package var wSquares: [Float]
    /// Factors, feature-major: feature `i`'s factor `f` at `i · factors + f`.
    package var v: [Float]
    /// AdaGrad's sums of squared gradients of `v`.
    package var vSquares: [Float]

    public init(hasher: FeatureHasher = FeatureHasher(), parameters: Parameters = Parameters()) {
        var parameters = parameters
        parameters.factors = min(max(parameters.factors, 1), 64)
        self.hasher = hasher
        self.parameters = parameters
        self.factors = parameters.factors
        self.w = Array(repeating: 0, count: hasher.dimension)
        self.wSquares = Array(repeating: 0, count: hasher.dimension)
        var rng = SplitMix64(seed: parameters.seed)
        let scale = parameters.initScale
        self.v = (0..<hasher.dimension * parameters.factors).map { _ in
            scale > 0 ? Float(Double.random(in: -scale...scale, using: &rng)) : 0
        }
        self.vSquares = Array(repeating: 0, count: hasher.dimension * parameters.factors)
    }

    /// The raw score: linear part plus pairwise interactions.
    public func margin(_ x: SparseFeatures) -> Double { margin(x, keepingSums: nil) }

    /// The margin; with `sums`, also each factor's Σᵢ v_if xᵢ (what `update` needs again).
    private func margin(_ x: SparseFeatures, keepingSums sums: UnsafeMutableBufferPointer<Double>?) -> Double {
        var linear = 0.0
        for e in x.indices.indices { linear += Double(w[Int(x.indices[e])]) * Double(x.values[e]) }
        var pairwise = 0.0
        for f in 0..<factors {
            let (sum, squares) = factorSums(x, f)
            sums?[f] = sum
            pairwise += sum * sum - squares
        }
        return linear + 0.5 * pairwise
    }

    /// P(y = 1 | x).
    public func predict(_ x: SparseFeatures) -> Double { sigmoid(margin(x)) }

    /// One AdaGrad step on one example; `weight` scales the gradient (importance weighting).
    public mutating func update(_ x: SparseFeatures, label: Bool, weight exampleWeight: Double = 1) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: factors) { sums in
            update(x, label: label, weight: exampleWeight, sums: sums)
        }
    }

    private mutating func update(_ x: SparseFeatures, label: Bool, weight exampleWeight: Double, sums: UnsafeMutableBufferPointer<Double>) {
        let g = (sigmoid(margin(x, keepingSums: sums)) - (label ? 1 : 0)) * exampleWeight
        let beta = parameters.beta
        for e in x.indices.indices {
            let i = Int(x.indices[e])
            let wi = Double(w[i])
            let gi = Self.linearGradient(g, x: Double(x.values[e])) + parameters.linearL2 * wi
            let n = Double(wSquares[i]) + gi * gi
            wSquares[i] = Float(n)
            w[i] = Float(wi - parameters.linearRate * gi / (beta + n.squareRoot()))
        }
        // Factor f's gradient needs only Σᵢ v_if xᵢ before the step (kept from the margin: the
        // linear step and the other factors' steps do not touch v_·f) and each coordinate's own
        // old value, so the factors are updated one f at a time.
        for f in 0..<factors {
            let sum = sums[f]
            for e in x.indices.indices {
                let j = Int(x.indices[e]) &* factors &+ f
                let vj = Double(v[j])
                let gj = Self.factorGradient(g, x: Double(x.values[e]), sum: sum, v: vj) + parameters.factorL2 * vj
                let n = Double(vSquares[j]) + gj * gj
                vSquares[j] = Float(n)
                v[j] = Float(vj - parameters.factorRate * gj / (beta + n.squareRoot()))
            }
        }
    }

    /// Σᵢ v_if xᵢ and Σᵢ (v_if xᵢ)² over the example's features.
    @inline(__always)
    func factorSums(_ x: SparseFeatures, _ f: Int) -> (sum: Double, squares: Double) {
        var sum = 0.0
        var squares = 0.0
        for e in x.indices.indices {
            let vx = Double(v[Int(x.indices[e]) &* factors &+ f]) * Double(x.values[e])
            sum += vx
            squares += vx * vx
        }
        return (sum, squares)
    }

    // MARK: Gradient of the log loss

    /// ∂ℓ/∂wᵢ, where `g` = ∂ℓ/∂margin = p − y.
    @inline(__always)
    static func linearGradient(_ g: Double, x: Double) -> Double { g * x }

    /// ∂ℓ/∂v_if = g · xᵢ · (Σⱼ v_jf xⱼ − v_if xᵢ), where `sum` = Σⱼ v_jf xⱼ.
    @inline(__always)
    static func factorGradient(_ g: Double, x: Double, sum: Double, v: Double) -> Double { g * x * (sum - v * x) }

    /// The gradient of the example's log loss (without L2) that `update` steps along: `linear[e]`
    /// for the weight of `x`'s entry `e`, `factors[e · k + f]` for that entry's factor `f`.
    package func lossGradient(_ x: SparseFeatures, label: Bool) -> (linear: [Double], factors: [Double]) {
        let g = predict(x) - (label ? 1 : 0)
        let linear = x.indices.indices.map { Self.linearGradient(g, x: Double(x.values[$0])) }
        var gradient = [Double](repeating: 0, count: x.indices.count * factors)
        for f in 0..<factors {
            let sum = factorSums(x, f).sum
            for e in x.indices.indices {
                let vj = Double(v[Int(x.indices[e]) * factors + f])
                gradient[e * factors + f] = Self.factorGradient(g, x: Double(x.values[e]), sum: sum, v: vj)
            }
        }
        return (linear, gradient)
    }

    // MARK: Versioned file format

    static let magic = Array("ADSV-FM".utf8)
    static let formatVersion: UInt32 = 1

    /// `magic, format version, hash version, bits, hash seed, k, α_w, α_v, β, L2_w, L2_v, init scale,
    /// init seed, w[], Σg²_w[], v[], Σg²_v[]`, little-endian.
    public func serialized() -> [UInt8] {
        var out = ModelBytesWriter(capacity: Self.magic.count + 80 + 4 * (2 * w.count + 2 * v.count))
        out.bytes += Self.magic
        out.put(Self.formatVersion)
        out.put(UInt32(FeatureHasher.version))
        out.put(UInt32(hasher.bits))
        out.put(hasher.seed)
        out.put(UInt32(factors))
        for p in [parameters.linearRate, parameters.factorRate, parameters.beta,
                  parameters.linearL2, parameters.factorL2, parameters.initScale] {
            out.put(p.bitPattern)
        }
        out.put(parameters.seed)
        for array in [w, wSquares, v, vSquares] { out.put(array) }
        return out.bytes
    }

    public init(serialized bytes: [UInt8]) throws(AdServeError) {
        guard var input = ModelBytesReader(bytes, magic: Self.magic) else {
            throw AdServeError.invalid("model", "not a factorization machine model file")
        }
        guard try input.take(UInt32.self) == Self.formatVersion else {
            throw AdServeError.invalid("model", "unsupported factorization machine format version")
        }
        guard try input.take(UInt32.self) == UInt32(FeatureHasher.version) else {
            throw AdServeError.invalid("model", "incompatible feature hash version")
        }
        let bits = Int(try input.take(UInt32.self))
        guard (4...28).contains(bits) else { throw AdServeError.invalid("model", "bad hash size") }
        let hashSeed = try input.take(UInt64.self)
        let factors = Int(try input.take(UInt32.self))
        guard (1...64).contains(factors) else { throw AdServeError.invalid("model", "bad factor count") }
        var parameters = Parameters()
        parameters.factors = factors
        parameters.linearRate = try input.takeDouble()
        parameters.factorRate = try input.takeDouble()
        parameters.beta = try input.takeDouble()
        parameters.linearL2 = try input.takeDouble()
        parameters.factorL2 = try input.takeDouble()
        parameters.initScale = try input.takeDouble()
        parameters.seed = try input.take(UInt64.self)
        let hasher = FeatureHasher(bits: bits, seed: hashSeed)
        let dimension = hasher.dimension
        guard input.remaining == 4 * (2 * dimension + 2 * dimension * factors) else {
            throw AdServeError.invalid("model", "model file size does not match its header")
        }
        self.hasher = hasher
        self.parameters = parameters
        self.factors = factors
        self.w = try input.takeFloats(dimension)
        self.wSquares = try input.takeFloats(dimension)
        self.v = try input.takeFloats(dimension * factors)
        self.vSquares = try input.takeFloats(dimension * factors)
    }
}
