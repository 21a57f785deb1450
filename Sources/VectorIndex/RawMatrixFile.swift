import Foundation

/// Matrices as ANN benchmark sets ship them: raw little-endian 32-bit values, row after row,
/// no header (float32 vectors, int32 neighbour ids). Reading checks what the file cannot say
/// for itself — that its size is a whole number of rows, that every float is finite, that
/// every id is in range — and names the file when it is not so.
public enum RawMatrixFile {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let file: String
        public let reason: String
        public var description: String { "\(file): \(reason)" }
    }

    /// The float32 rows of `path`, each `dimension` wide.
    public static func floats(_ path: String, dimension: Int) throws(Failure) -> (values: [Float], rows: Int) {
        let data = try read(path, rowBytes: dimension * 4, what: "rows of \(dimension) float32")
        var values = [Float](repeating: 0, count: data.count / 4)
        values.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }
        for i in values.indices {
            values[i] = Float(bitPattern: UInt32(littleEndian: values[i].bitPattern))
            if !values[i].isFinite {
                throw Failure(file: path, reason: "the value at row \(i / dimension), column \(i % dimension) is not finite (\(values[i]))")
            }
        }
        return (values, values.count / dimension)
    }

    /// The int32 rows of `path`, each `columns` wide, every value in `0..<bound`.
    public static func ids(_ path: String, columns: Int, bound: Int) throws(Failure) -> (values: [Int32], rows: Int) {
        let data = try read(path, rowBytes: columns * 4, what: "rows of \(columns) int32 ids")
        var values = [Int32](repeating: 0, count: data.count / 4)
        values.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }
        for i in values.indices {
            values[i] = Int32(littleEndian: values[i])
            if values[i] < 0 || Int(values[i]) >= bound {
                throw Failure(file: path, reason: "the id at row \(i / columns), column \(i % columns) is \(values[i]), outside 0..<\(bound)")
            }
        }
        return (values, values.count / columns)
    }

    /// Writes float32 rows (for tests and data generators).
    public static func write(_ values: [Float], to path: String) throws {
        let bits = values.map { $0.bitPattern.littleEndian }
        try bits.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }

    /// Writes int32 rows.
    public static func write(_ values: [Int32], to path: String) throws {
        let little = values.map(\.littleEndian)
        try little.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }

    private static func read(_ path: String, rowBytes: Int, what: String) throws(Failure) -> Data {
        guard rowBytes > 0 else { throw Failure(file: path, reason: "the row width must be positive") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw Failure(file: path, reason: "cannot be read (\(error.localizedDescription))")
        }
        guard !data.isEmpty else { throw Failure(file: path, reason: "is empty") }
        guard data.count % rowBytes == 0 else {
            throw Failure(file: path, reason: "holds \(data.count) bytes, not a whole number of \(what) (\(rowBytes) bytes each): wrong --dim or --k?")
        }
        return data
    }
}
