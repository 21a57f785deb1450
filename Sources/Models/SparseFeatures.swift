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

/// Feature hashing with an explicit, seeded, versioned hash, never Swift's per-process `Hasher`:
/// a saved model means the same thing in every process.
///
/// A string feature's key is FNV-1a 64 over the namespace's bytes (from the seeded offset
/// basis), then the separator 0x01 XORed into the state *without* FNV's multiply step, then
/// FNV-1a over the value's bytes. That is what models of hash version 1 were trained with, so
/// it is the intended hash, not FNV-1a of the string "namespace\u{1}value" (which would
/// multiply after the separator); changing it means bumping `version`.
public struct FeatureHasher: Sendable, Equatable {
    public static let version = 1
    public let bits: Int
    public let seed: UInt64

    public init(bits: Int = 20, seed: UInt64 = 0x5EED_AD5E) {
        self.bits = min(max(bits, 4), 28)
        self.seed = seed
        self.biasIndex = 0
        self.biasIndex = index(namespace: "", value: "bias")
    }

    public var dimension: Int { 1 << bits }

    public func index(namespace: String, value: String) -> UInt32 {
        slot(key(namespace: namespace, value: value))
    }

    /// A feature's full 64-bit key, before it is folded into the table: keys can be cached and
    /// crossed without touching strings again.
    public func key(namespace: String, value: some StringProtocol) -> UInt64 {
        StableHash.fnv1a(value, seed: StableHash.fnv1a(namespace, seed: seed ^ 0xcbf2_9ce4_8422_2325) ^ 0x01)
    }

    /// The key of an integer-valued feature (ids, buckets), without formatting the integer.
    public func key(namespace: String, value: Int64) -> UInt64 {
        key(namespaceSeed: namespaceSeed(namespace), value: value)
    }

    /// What `key(namespace:value:)` takes from the namespace: hashed once, so a hot path keys
    /// integer values without touching the namespace's string.
    public func namespaceSeed(_ namespace: String) -> UInt64 {
        StableHash.fnv1a(namespace, seed: seed ^ 0xcbf2_9ce4_8422_2325)
    }

    @inline(__always)
    public func key(namespaceSeed: UInt64, value: Int64) -> UInt64 {
        StableHash.mix(namespaceSeed ^ UInt64(bitPattern: value) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The key of the conjunction of two features (a cross), order-sensitive.
    public func cross(_ a: UInt64, _ b: UInt64) -> UInt64 {
        StableHash.mix(a &* 0xBF58_476D_1CE4_E5B9 ^ (b &+ 0x94D0_49BB_1331_11EB))
    }

    /// The table slot of a key.
    @inline(__always)
    public func slot(_ key: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (key ^ (key >> 29)) & UInt64(dimension - 1))
    }

    /// The bias feature every example carries (hashed once, not per example).
    public private(set) var biasIndex: UInt32
}
