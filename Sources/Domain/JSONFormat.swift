import Foundation

/// AdServe's one JSON setup, for everything it writes and reads outside the HTTP edge's own
/// codec: snake_case keys, sorted so output is stable (same input, same bytes), slashes left
/// alone. Logs and `--json` output are one document per line; reports and model metadata are
/// pretty-printed for people.
public enum JSONFormat {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// A value as one JSON text.
    /// Whether a value from `JSONSerialization` is `true` or `false`: Foundation's parser gives
    /// them as an NSNumber of type "c" (char), which no JSON number gets, so they are told apart
    /// from 1 and 0.
    public static func isBoolean(_ value: Any) -> Bool {
        if type(of: value) == Bool.self { return true }
        return (value as? NSNumber).map { $0.objCType.pointee == CChar(UInt8(ascii: "c")) } ?? false
    }

    public static func string(_ value: some Encodable, pretty: Bool = false) throws -> String {
        String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
    }
}
