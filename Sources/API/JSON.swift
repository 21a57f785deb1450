import Domain
import Foundation
import Hummingbird
import NIOCore

/// JSON in and out: snake_case on the wire, bodies bounded, decoding errors turned into
/// `AdServeError`s that name the field.
public enum JSON {
    /// The context's request decoder: `decode` below, with the context's body limit.
    public struct RequestCoder: RequestDecoder {
        let limit: Int

        public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
            try await JSON.decode(type, from: request, limit: limit)
        }
    }

    /// The context's response encoder: every answer through one shared encoder.
    public struct ResponseCoder: ResponseEncoder {
        public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
            try JSON.response(value)
        }
    }

    /// One encoder for every answer: its settings never change after this, and encoding with it
    /// from many requests at once is safe.
    static let encoder = JSONFormat.encoder()

    /// Reads and decodes a request body of at most `limit` bytes.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw AdServeError(.payloadTooLarge, "request body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AdServeError(.payloadTooLarge, "request body is larger than \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { throw AdServeError(.invalidInput, "request body must be a JSON object") }
        let data = Data(buffer: buffer)
        try checkDepth(data)
        do {
            return try TreeDecoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw adServeError(error)
        }
    }

    /// No request of ours nests deeper than a few levels; Foundation's parsers recurse once per
    /// level, so a body of a million `[` would exhaust the stack. One linear pass refuses it first.
    static let maxDepth = 32

    static func checkDepth(_ data: Data) throws(AdServeError) {
        let tooDeep: Bool = data.withUnsafeBytes { bytes in
            var depth = 0
            var inString = false
            var escaped = false
            for byte in bytes {
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    if depth > maxDepth { return true }
                case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
                default: break
                }
            }
            return false
        }
        if tooDeep { throw AdServeError(.invalidInput, "JSON nested deeper than \(maxDepth) levels") }
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func adServeError(_ error: DecodingError) -> AdServeError {
        func path(_ keys: [any CodingKey]) -> String? {
            let parts = keys.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }
            guard !parts.isEmpty else { return nil }
            return parts.enumerated().map { i, p in i == 0 || p.hasPrefix("[") ? p : "." + p }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return AdServeError(.invalidInput, "missing required field", field: field)
        case .typeMismatch(let type, let context):
            return AdServeError(.invalidInput, "wrong type: expected \(describe(type))", field: path(context.codingPath))
        case .valueNotFound(let type, let context):
            return AdServeError(.invalidInput, "must not be null: expected \(describe(type))", field: path(context.codingPath))
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field == nil { return AdServeError(.invalidInput, "malformed JSON") }
            if let underlying = context.underlyingError as? AdServeError { return AdServeError(.invalidInput, underlying.message, field: field) }
            return AdServeError(.invalidInput, "invalid value: \(context.debugDescription)", field: field)
        @unknown default:
            return AdServeError(.invalidInput, "malformed JSON")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int64.Type, is Int.Type: "an integer"
        case is String.Type: "a string"
        case is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "a boolean"
        default: String(describing: type).lowercased().contains("array") ? "an array" : "an object"
        }
    }

    static func camelCase(_ snake: String) -> String {
        var out = ""
        var upper = false
        for c in snake {
            if c == "_" && !out.isEmpty {
                upper = true
            } else {
                out += upper ? c.uppercased() : String(c)
                upper = false
            }
        }
        return out
    }

    static func snakeCase(_ camel: String) -> String {
        // Our keys are ASCII: their capitals are found in the bytes, without Unicode's character
        // classes (every field a request decodes is looked up through here).
        let utf8 = camel.utf8
        if utf8.allSatisfy({ $0 < 0x80 }) {
            let capitals = utf8.count { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
            guard capitals > 0 else { return camel }
            return String(unsafeUninitializedCapacity: utf8.count + capitals) { out in
                var n = 0
                for byte in utf8 {
                    if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                        out[n] = UInt8(ascii: "_")
                        out[n + 1] = byte + 0x20
                        n += 2
                    } else {
                        out[n] = byte
                        n += 1
                    }
                }
                return n
            }
        }
        var out = ""
        for c in camel {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }
}
