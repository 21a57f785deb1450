import Domain

/// A binary-outcome model over hashed sparse features: what every model kind offers to training,
/// evaluation, the model repository and the serving ranker.
public protocol ClickModel: Sendable {
    /// Stable name of the kind, stored with every saved model ("ftrl_lr", "fm").
    static var kind: String { get }
    var hasher: FeatureHasher { get }
    /// P(y = 1 | x).
    func predict(_ x: SparseFeatures) -> Double
    /// One online step; `weight` scales the gradient (importance weighting).
    mutating func update(_ x: SparseFeatures, label: Bool, weight: Double)
    /// A versioned, self-describing byte format; `init(serialized:)` refuses anything else.
    func serialized() -> [UInt8]
    init(serialized bytes: [UInt8]) throws(AdServeError)
    /// Readies the model to predict many times between updates (precomputed weights); the
    /// predictions do not change. An update undoes it.
    mutating func prepareForServing()
    /// For a linear model readied by `prepareForServing`: its weight per feature slot, so that
    /// `predict(x)` is σ(Σ weights[xᵢ]) and a ranker may sum the weights in parts
    /// (`ClickFeatures.requestMargin`). Nil for any other model.
    var linearWeights: [Double]? { get }
}

extension ClickModel {
    public mutating func prepareForServing() {}
    public var linearWeights: [Double]? { nil }
}
