/// A small, fast, seeded generator (SplitMix64, Steele et al. 2014): the same seed gives the
/// same world on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal draw (Box–Muller, one value per pair of uniforms): deterministic given
    /// the generator. The simulated world, the content sketch's projection and the benchmark's
    /// synthetic vectors all draw from it.
    public mutating func gaussian() -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// FNV-1a, 64-bit: a stable hash (the same in every process, unlike `Hasher`) for assigning
/// users to experiment arms and seeding per-decision randomness.
public enum StableHash {
    /// Inlinable so that callers in other modules get it specialized for their string type: as
    /// an unspecialized generic it walked the bytes through witness tables, and feature hashing
    /// spent most of its time there.
    @inlinable
    public static func fnv1a<S: StringProtocol>(_ text: S, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        if let hash = text.utf8.withContiguousStorageIfAvailable({ fnv1a(bytes: $0, seed: seed) }) { return hash }
        var hash = seed
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// SplitMix64's finalizer: every input bit affects every output bit (FNV-1a's low bits
    /// depend only on the input bytes' low bits, so a hash taken modulo a small number needs it).
    @inlinable @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inlinable
    static func fnv1a(bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
