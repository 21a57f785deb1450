import Domain
import Foundation

/// How every store writes the values that have no column type of their own: lists and maps as
/// JSON text, enums by raw value, vectors as little-endian float bytes. One definition, so an
/// SQLite file and a PostgreSQL database hold the same text for the same value.
public enum StoredValues {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    public static func enumValue<T: RawRepresentable<String>>(_ type: T.Type, _ raw: String) throws -> T {
        guard let value = T(rawValue: raw) else { throw AdServeError(.storage, "unknown \(T.self) '\(raw)' in store") }
        return value
    }

    public static func floatsToBytes(_ floats: [Float]) -> [UInt8] {
        floats.withUnsafeBytes { Array($0) }
    }

    public static func bytesToFloats(_ bytes: [UInt8]) -> [Float] {
        var floats = [Float](repeating: 0, count: bytes.count / MemoryLayout<Float>.size)
        floats.withUnsafeMutableBytes { target in
            bytes.withUnsafeBytes { source in target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<target.count])) }
        }
        return floats
    }
}
