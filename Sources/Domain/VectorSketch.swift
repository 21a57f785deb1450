/// A content or activity vector of the shared text space (384 floats) reduced to 64 signed
/// bytes: a fixed random Gaussian projection (seeded, so serving, training and a restart agree),
/// scaled to unit length and quantized. Inner products of sketches approximate cosines of the
/// vectors (the error shrinks as 1/√64). Small enough to log with every impression, so the
/// candidate model trains on what serving saw; held inline, so a log in memory costs no
/// allocation per line. Coded as 128 hex digits in JSON.
public struct VectorSketch: Sendable, Equatable, Hashable, Codable {
    public static let dimension = 64
    public var bytes: SIMD64<Int8>

    public init(bytes: SIMD64<Int8>) {
        self.bytes = bytes
    }

    static let projection: [Float] = {
        var rng = SplitMix64(seed: 0x5EED_5E7C_0064)
        // A Gaussian matrix keeps inner products unbiased.
        return (0..<(dimension * Limits.embeddingDimensions)).map { _ in Float(rng.gaussian()) }
    }()

    /// The sketch of a vector of the shared text space; nil for any other size or a zero vector.
    public init?(_ vector: [Float]?) {
        guard let vector, vector.count == Limits.embeddingDimensions else { return nil }
        // Each row summed as `VectorMath.dot` sums, in eight lanes (a serving request makes one
        // sketch of its user: one running sum would wait on each of 24,576 additions in turn).
        var projected = [Float](repeating: 0, count: Self.dimension)
        Self.projection.withUnsafeBufferPointer { p in
            vector.withUnsafeBufferPointer { v in
                for row in 0..<Self.dimension {
                    projected[row] = Float(VectorMath.dot(UnsafeBufferPointer(rebasing: p[(row * v.count)..<((row + 1) * v.count)]), v))
                }
            }
        }
        let norm = projected.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        var bytes = SIMD64<Int8>()
        for i in 0..<Self.dimension { bytes[i] = Int8((projected[i] / norm * 127).rounded()) }
        self.bytes = bytes
    }

    /// Component `i` as a float of the unit-length sketch.
    @inline(__always)
    public subscript(i: Int) -> Float { Float(bytes[i]) / 127 }

    /// Inner product of two sketches: about the cosine of the vectors they sketch.
    public func dot(_ other: VectorSketch) -> Float {
        var acc: Int32 = 0
        for i in 0..<Self.dimension { acc += Int32(bytes[i]) * Int32(other.bytes[i]) }
        return Float(acc) / (127 * 127)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let digits = Array(text.utf8)
        guard digits.count == Self.dimension * 2 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a sketch is \(Self.dimension * 2) hex digits"))
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes = SIMD64<Int8>()
        for i in 0..<Self.dimension {
            guard let high = nibble(digits[2 * i]), let low = nibble(digits[2 * i + 1]) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a sketch is lowercase hex digits"))
            }
            bytes[i] = Int8(bitPattern: high << 4 | low)
        }
        self.bytes = bytes
    }

    public func encode(to encoder: any Encoder) throws {
        let hex = Array("0123456789abcdef".utf8)
        var digits: [UInt8] = []
        digits.reserveCapacity(Self.dimension * 2)
        for i in 0..<Self.dimension {
            let byte = UInt8(bitPattern: bytes[i])
            digits.append(hex[Int(byte >> 4)])
            digits.append(hex[Int(byte & 0xF)])
        }
        var container = encoder.singleValueContainer()
        try container.encode(String(decoding: digits, as: UTF8.self))
    }
}
