import Domain

/// One example's hashed features: parallel index/value arrays (struct-of-arrays).
public struct SparseFeatures: Sendable, Equatable {
    public var indices: [UInt32] = []
    public var values: [Float] = []
    public init() {}

    public mutating func append(_ index: UInt32, _ value: Float = 1) {
        indices.append(index)
        values.append(value)
    }
}

/// Feature hashing with an explicit, seeded, versioned hash (FNV-1a 64 over "namespace\u{1}value"),
/// never Swift's per-process `Hasher`: a saved model means the same thing in every process.
public struct FeatureHasher: Sendable, Equatable {
    public static let version = 1
    public let bits: Int
    public let seed: UInt64

    public init(bits: Int = 20, seed: UInt64 = 0x5EED_AD5E) {
        self.bits = min(max(bits, 4), 28)
        self.seed = seed
    }

    public var dimension: Int { 1 << bits }

    public func index(namespace: String, value: String) -> UInt32 {
        let h = StableHash.fnv1a(value, seed: StableHash.fnv1a(namespace, seed: seed ^ 0xcbf2_9ce4_8422_2325) ^ 0x01)
        return UInt32(truncatingIfNeeded: (h ^ (h >> 29)) & UInt64(dimension - 1))
    }

    /// The bias feature every example carries.
    public var biasIndex: UInt32 { index(namespace: "", value: "bias") }
}
