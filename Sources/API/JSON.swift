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

    /// Foundation reports a number that does not fit its field (`1.5` or `1e30` for an `Int64`,
    /// `1e60` for a `Float`) as "not valid JSON" without a path. Finds the field by replacing each
    /// suspicious number with 0 until the document decodes past it. Runs only on the error path.
    static func unrepresentableNumber<T: Decodable>(_ type: T.Type, in data: Data) -> String? {
        guard let tree = try? JSONSerialization.jsonObject(with: data) else { return nil }
        var suspects: [[PathElement]] = []
        func collect(_ node: Any, _ path: [PathElement]) {
            if let object = node as? [String: Any] {
                for (key, value) in object { collect(value, path + [.key(key)]) }
            } else if let array = node as? [Any] {
                for (index, value) in array.enumerated() { collect(value, path + [.index(index)]) }
            } else if let number = node as? NSNumber, !(node is String) {
                let value = number.doubleValue
                if value != value.rounded() || abs(value) >= 9.2e18 || abs(value) > Double(Float.greatestFiniteMagnitude) {
                    suspects.append(path)
                }
            }
        }
        collect(tree, [])
        for path in suspects {
            let repaired = replacing(tree, at: path[...], with: 0)
            guard let repairedData = try? JSONSerialization.data(withJSONObject: repaired) else { continue }
            do {
                _ = try JSONFormat.decoder().decode(T.self, from: repairedData)
                return describe(path)
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                continue
            } catch {
                return describe(path)
            }
        }
        return nil
    }

    enum PathElement {
        case key(String)
        case index(Int)
    }

    private static func replacing(_ node: Any, at path: ArraySlice<PathElement>, with value: Any) -> Any {
        guard let first = path.first else { return value }
        switch first {
        case .key(let key):
            guard var object = node as? [String: Any], let child = object[key] else { return node }
            object[key] = replacing(child, at: path.dropFirst(), with: value)
            return object
        case .index(let index):
            guard var array = node as? [Any], array.indices.contains(index) else { return node }
            array[index] = replacing(array[index], at: path.dropFirst(), with: value)
            return array
        }
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
