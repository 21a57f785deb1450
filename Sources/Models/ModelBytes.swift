import Domain

/// Appends little-endian fixed-width values to a model file.
struct ModelBytesWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func put(_ values: [Float]) {
        for value in values { put(value.bitPattern) }
    }
}

/// Reads little-endian fixed-width values from a model file; running past the end is an error,
/// and so is a weight or parameter that is not finite (NaN or infinity), so a damaged or
/// diverged model is refused rather than served.
struct ModelBytesReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    /// A reader past `magic`, or nil when the file does not start with it.
    init?(_ bytes: [UInt8], magic: [UInt8]) {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else { return nil }
        self.init(bytes, offset: magic.count)
    }

    mutating func take<T: FixedWidthInteger>(_: T.Type) throws(AdServeError) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw AdServeError.invalid("model", "model file is truncated") }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    mutating func takeDouble() throws(AdServeError) -> Double {
        let at = offset
        let value = Double(bitPattern: try take(UInt64.self))
        guard value.isFinite else {
            throw AdServeError.invalid("model", "model file holds a non-finite parameter (\(value)) at byte \(at)")
        }
        return value
    }

    /// `count` floats. The count is checked against the bytes left before anything is
    /// allocated, so a damaged header cannot ask for more memory than the file could fill.
    mutating func takeFloats(_ count: Int) throws(AdServeError) -> [Float] {
        guard count >= 0, count <= remaining / 4 else { throw AdServeError.invalid("model", "model file is truncated") }
        var values = [Float](repeating: 0, count: count)
        for k in 0..<count {
            let at = offset
            let value = Float(bitPattern: try take(UInt32.self))
            guard value.isFinite else {
                throw AdServeError.invalid("model", "model file holds a non-finite weight (\(value)) at byte \(at)")
            }
            values[k] = value
        }
        return values
    }
}

/// The checksum a model's metadata records for its weights file, so a file damaged on disk or
/// in a copy is refused when it is loaded: FNV-1a 64 (Fowler, Noll & Vo) over the file's bytes,
/// written `fnv1a64:` and 16 hex digits. Any one changed byte changes it (each step of FNV-1a
/// is a bijection of its state). It guards against accidents, not tampering: whoever can
/// rewrite the weights can rewrite the metadata beside them.
public enum ModelChecksum {
    public static let algorithm = "fnv1a64"

    /// FNV-1a 64 of `bytes`.
    public static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The checksum as stored in `ModelMeta.checksum`: `fnv1a64:` and 16 lowercase hex digits.
    public static func of(_ bytes: [UInt8]) -> String {
        let hex = String(fnv1a64(bytes), radix: 16)
        return algorithm + ":" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
