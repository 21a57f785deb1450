import Domain
import Foundation
import Hummingbird
import NIOCore

/// JSON in and out: snake_case on the wire, bodies bounded, decoding errors turned into
/// `AdServeError`s that name the field.
enum JSON {
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
            return try JSONFormat.decoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                let field = unrepresentableNumber(T.self, in: data)
            {
                throw AdServeError(.invalidInput, "number out of range or not of the expected kind (integers for ids, counts and micros)", field: field)
            }
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

    /// Foundation reports a number that does not fit its field (`1.5` or `1e30` for an `Int64`,
    /// `1e60` for a `Float`) as "not valid JSON" without a path. Finds the field by replacing
    /// suspicious numbers with 0 until the document decodes past them: "the first k suspects
    /// replaced" clears the error for every k from some k₀ on, so a binary search finds k₀ and
    /// names suspect k₀ − 1 in O(log n) decodes, each a linear rebuild — O(n log n) for a body
    /// of n numbers (trying them one by one was O(n²): 87 s for 8,000 numbers). Runs only on the
    /// error path, on a body already checked for size and depth.
    static func unrepresentableNumber<T: Decodable>(_ type: T.Type, in data: Data) -> String? {
        guard let tree = try? JSONSerialization.jsonObject(with: data) else { return nil }
        var suspects: [[PathElement]] = []
        var path: [PathElement] = []
        func collect(_ node: Any) {
            if let object = node as? [String: Any] {
                for key in object.keys.sorted() {
                    path.append(.key(key))
                    collect(object[key]!)
                    path.removeLast()
                }
            } else if let array = node as? [Any] {
                for (index, value) in array.enumerated() {
                    path.append(.index(index))
                    collect(value)
                    path.removeLast()
                }
            } else if !(node is String), let number = node as? NSNumber, isSuspect(number) {
                suspects.append(path)
            }
        }
        collect(tree)
        guard !suspects.isEmpty else { return nil }
        /// Whether the document with the first `count` suspects set to 0 gets past the path-less error.
        func clears(_ count: Int) -> Bool {
            var replaced = 0
            func rebuild(_ node: Any) -> Any {
                if let object = node as? [String: Any] {
                    var out: [String: Any] = [:]
                    for key in object.keys.sorted() { out[key] = rebuild(object[key]!) }
                    return out
                } else if let array = node as? [Any] {
                    return array.map(rebuild)
                } else if !(node is String), let number = node as? NSNumber, isSuspect(number) {
                    replaced += 1
                    return replaced <= count ? NSNumber(value: 0) : number
                }
                return node
            }
            guard let repairedData = try? JSONSerialization.data(withJSONObject: rebuild(tree)) else { return false }
            do {
                _ = try JSONFormat.decoder().decode(T.self, from: repairedData)
                return true
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                return false
            } catch {
                return true
            }
        }
        guard clears(suspects.count) else { return nil }
        var low = 0  // clears(low) is false: the document as sent
        var high = suspects.count  // clears(high) is true
        while high - low > 1 {
            let mid = (low + high) / 2
            if clears(mid) { high = mid } else { low = mid }
        }
        return describe(suspects[high - 1])
    }

    /// A number that no integer or float field of ours can hold exactly.
    private static func isSuspect(_ number: NSNumber) -> Bool {
        let value = number.doubleValue
        return value != value.rounded() || abs(value) >= 9.2e18 || abs(value) > Double(Float.greatestFiniteMagnitude)
    }

    enum PathElement {
        case key(String)
        case index(Int)
    }

    private static func describe(_ path: [PathElement]) -> String {
        var out = ""
        for element in path {
            switch element {
            case .key(let key): out += out.isEmpty ? key : "." + key
            case .index(let index): out += "[\(index)]"
            }
        }
        return out
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONFormat.encoder().encode(value)
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
