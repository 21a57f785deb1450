import Domain
import Foundation
import Hummingbird

/// JSON in and out: snake_case on the wire, bodies bounded, decoding errors turned into
/// `AdServeError`s that name the field.
enum JSON {
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// Reads and decodes a request body of at most `limit` bytes.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AdServeError(.payloadTooLarge, "request body is larger than \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { throw AdServeError(.invalidInput, "request body must be a JSON object") }
        do {
            return try decoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw adServeError(error)
        }
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder().encode(value)
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

    static func snakeCase(_ camel: String) -> String {
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

/// Times on the wire are ISO 8601 strings (`2026-11-29T10:00:00Z`).
enum ISOTime {
    static func parse(_ text: String, field: String) throws(AdServeError) -> Timestamp {
        let formatter = ISO8601DateFormatter()
        var date = formatter.date(from: text)
        if date == nil {
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            date = formatter.date(from: text)
        }
        guard let date else { throw .invalid(field, "must be an ISO 8601 time such as 2026-11-29T10:00:00Z") }
        return Timestamp(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    static func format(_ time: Timestamp) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(time.milliseconds) / 1000))
    }
}
