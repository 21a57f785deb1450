/// The two things done to content and activity vectors everywhere: compare and normalize.
public enum VectorMath {
    /// Cosine similarity, 0 when either is missing, empty, of another size or zero. Float
    /// products summed in eight lanes (a ranker computes one per candidate), then in Double.
    public static func cosine(_ a: [Float]?, _ b: [Float]?) -> Double {
        guard let a, let b else { return 0 }
        return cosine(a, b, squaredNormA: squaredNorm(a), squaredNormB: squaredNorm(b))
    }

    /// The same cosine with both squared norms known (`squaredNorm`): a ranker computes the
    /// user's once per request and keeps each ad's with the ad. Bit for bit what
    /// `cosine(_:_:)` returns.
    @inline(__always)
    public static func cosine(_ a: [Float], _ b: [Float], squaredNormA: Double, squaredNormB: Double) -> Double {
        guard a.count == b.count, !a.isEmpty, squaredNormA > 0, squaredNormB > 0 else { return 0 }
        return dot(a, b) / (squaredNormA * squaredNormB).squareRoot()
    }

    /// Σ aᵢbᵢ: Float products in eight lanes, the lanes and the tail summed in Double. `a` and
    /// `b` have the same length.
    @inline(__always)
    public static func dot(_ a: [Float], _ b: [Float]) -> Double {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in dot(a, b) } }
    }

    /// The same over buffers: a row of a larger matrix, say.
    @inline(__always)
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        precondition(a.count == b.count, "dot of \(a.count) and \(b.count) floats")
        let lanes = a.count / 8 * 8
        let bytesA = UnsafeRawBufferPointer(a), bytesB = UnsafeRawBufferPointer(b)
        var acc = SIMD8<Float>()
        var offset = 0
        while offset < lanes &* 4 {
            acc += bytesA.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self) * bytesB.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            offset &+= 32
        }
        var sum = Double(acc.sum())
        for i in lanes..<a.count { sum += Double(a[i]) * Double(b[i]) }
        return sum
    }

    /// Σ vᵢ², summed as `dot` sums.
    public static func squaredNorm(_ v: [Float]) -> Double { dot(v, v) }

    /// `v` scaled to unit length (a zero vector stays zero).
    public static func unitLength(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }
}

/// A content vector compressed to a few bits (random-hyperplane hashing, "SimHash"): vectors at
/// a small angle share most bits, so a model can learn what a region of the content space means
/// to a kind of user from a handful of ids rather than 384 floats. The hyperplanes are fixed by a
/// seed: the same vector gets the same code in serving, in training and after a restart.
public enum ContentCode {
    public static let bits = 6
    static let planes: [Float] = {
        var rng = SplitMix64(seed: 0x5EED_C0DE_0006)
        return (0..<(bits * Limits.embeddingDimensions)).map { _ in Float.random(in: -1...1, using: &rng) }
    }()

    /// The code of a vector of the shared text space; nil for any other size.
    public static func of(_ vector: [Float]?) -> Int? {
        guard let vector, vector.count == Limits.embeddingDimensions else { return nil }
        var code = 0
        planes.withUnsafeBufferPointer { planes in
            for bit in 0..<bits {
                var dot: Float = 0
                let base = bit * vector.count
                for i in vector.indices { dot += planes[base + i] * vector[i] }
                if dot > 0 { code |= 1 << bit }
            }
        }
        return code
    }
}
