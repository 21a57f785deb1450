/// The two things done to content and activity vectors everywhere: compare and normalize.
public enum VectorMath {
    /// Cosine similarity, 0 when either is missing, empty, of another size or zero. Float
    /// products summed in eight lanes (a ranker computes one per candidate), then in Double.
    public static func cosine(_ a: [Float]?, _ b: [Float]?) -> Double {
        guard let a, let b, a.count == b.count, !a.isEmpty else { return 0 }
        var dot = SIMD8<Float>(), na = SIMD8<Float>(), nb = SIMD8<Float>()
        let lanes = a.count / 8 * 8
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var i = 0
                while i < lanes {
                    let x = SIMD8<Float>(a[i..<(i + 8)])
                    let y = SIMD8<Float>(b[i..<(i + 8)])
                    dot += x * y
                    na += x * x
                    nb += y * y
                    i += 8
                }
            }
        }
        var d = Double(dot.sum()), sa = Double(na.sum()), sb = Double(nb.sum())
        for i in lanes..<a.count {
            d += Double(a[i]) * Double(b[i])
            sa += Double(a[i]) * Double(a[i])
            sb += Double(b[i]) * Double(b[i])
        }
        return sa > 0 && sb > 0 ? d / (sa * sb).squareRoot() : 0
    }

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
