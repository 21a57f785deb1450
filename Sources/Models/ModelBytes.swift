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

/// Reads little-endian fixed-width values from a model file; running past the end is an error.
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
        Double(bitPattern: try take(UInt64.self))
    }

    mutating func takeFloats(_ count: Int) throws(AdServeError) -> [Float] {
        guard 4 * count <= remaining else { throw AdServeError.invalid("model", "model file is truncated") }
        var values = [Float](repeating: 0, count: count)
        for k in 0..<count { values[k] = Float(bitPattern: try take(UInt32.self)) }
        return values
    }
}
