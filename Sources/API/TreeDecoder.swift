import Domain
import Foundation

/// Decodes a request from the tree `JSONSerialization` parsed, in one pass, naming the field of
/// every failure. Foundation's `JSONDecoder` reports a number that does not fit its field
/// (`1.5` or `1e30` for an `Int64`) without a path; finding the field afterwards took repeated
/// decodes. Here a number is converted where it is read, so the error carries its path, and
/// the cost is linear in the body. Keys are snake_case on the wire, camelCase in Swift.
struct TreeDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let tree: Any
        do {
            tree = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "malformed JSON"))
        }
        return try T(from: Node(value: tree, codingPath: []))
    }

    /// One value of the tree and where it is.
    struct Node: Decoder {
        let value: Any
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard let object = value as? [String: Any] else { throw mismatch([String: Any].self, value, codingPath) }
            return KeyedDecodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard let array = value as? [Any] else { throw mismatch([Any].self, value, codingPath) }
            return Unkeyed(array: array, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(node: self) }

        /// A primitive of this node, or the value decoded by its own `init(from:)`.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if value is NSNull { throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath, debugDescription: "null")) }
            if let primitive = try primitive(T.self) { return primitive }
            return try T(from: self)
        }

        private func primitive<T>(_ type: T.Type) throws -> T? {
            switch type {
            case is String.Type:
                guard let s = value as? String else { throw mismatch(String.self, value, codingPath) }
                return s as? T
            case is Bool.Type:
                // Only `true` and `false`: 0 and 1 would bridge to Bool too.
                guard isBoolean, let b = value as? Bool else { throw mismatch(Bool.self, value, codingPath) }
                return b as? T
            case is Int64.Type: return try integer() as? T
            case is Int.Type: return Int(exactly: try integer()) as? T
            case is Double.Type: return try number() as? T
            case is Float.Type:
                let d = try number()
                guard abs(d) <= Double(Float.greatestFiniteMagnitude) else { throw outOfRange("a number that fits a 32-bit float") }
                return Float(d) as? T
            default: return nil
            }
        }

        private func number() throws -> Double {
            guard !(value is String), !isBoolean, let n = value as? NSNumber else { throw mismatch(Double.self, value, codingPath) }
            return n.doubleValue
        }

        /// `true` and `false`, told apart from 1 and 0.
        private var isBoolean: Bool { JSONFormat.isBoolean(value) }

        /// An integer that fits Int64 exactly: `1.5`, `1e30` and `true` are refused, with this path.
        private func integer() throws -> Int64 {
            guard !(value is String), !isBoolean, let n = value as? NSNumber else { throw mismatch(Int64.self, value, codingPath) }
            let i = n.int64Value
            // 9.2e18 < Int64.max: a value near the edge, whose double rounds onto it, is refused.
            guard NSNumber(value: i).isEqual(to: n), n.doubleValue.rounded() == n.doubleValue, abs(n.doubleValue) < 9.2e18 else {
                throw outOfRange("an integer (ids, counts and micros are whole numbers up to 9.2e18)")
            }
            return i
        }

        private func outOfRange(_ expected: String) -> DecodingError {
            DecodingError.dataCorrupted(.init(
                codingPath: codingPath, debugDescription: "number out of range or not of the expected kind",
                underlyingError: AdServeError.invalid("", "number out of range or not of the expected kind: expected \(expected)")))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: [String: Any]
        let codingPath: [any CodingKey]

        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: JSON.camelCase($0)) } }

        private func raw(_ key: Key) -> Any? { object[JSON.snakeCase(key.stringValue)] }

        func contains(_ key: Key) -> Bool { raw(key) != nil }

        func decodeNil(forKey key: Key) throws -> Bool { raw(key).map { $0 is NSNull } ?? true }

        // An optional field is one lookup: the protocol's defaults ask `contains`, `decodeNil`
        // and `decode` in turn, each looking the key up again.
        private func present<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
            guard let value = raw(key), !(value is NSNull) else { return nil }
            return try Node(value: value, codingPath: codingPath + [key]).decode(T.self)
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try present(type, key) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(type, key) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(type, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(type, key) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(type, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(type, key) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present(type, key) }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let value = raw(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
            }
            return try Node(value: value, codingPath: codingPath + [key]).decode(T.self)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try Node(value: raw(key) ?? NSNull(), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try Node(value: raw(key) ?? NSNull(), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { Node(value: object, codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { Node(value: raw(key) ?? NSNull(), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let array: [Any]
        let codingPath: [any CodingKey]
        var currentIndex = 0

        init(array: [Any], codingPath: [any CodingKey]) {
            self.array = array
            self.codingPath = codingPath
        }

        var count: Int? { array.count }
        var isAtEnd: Bool { currentIndex >= array.count }

        private mutating func next() throws -> Node {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "no more elements"))
            }
            defer { currentIndex += 1 }
            return Node(value: array[currentIndex], codingPath: codingPath + [IndexKey(currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, array[currentIndex] is NSNull else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(T.self) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try next().container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }

    struct Single: SingleValueDecodingContainer {
        let node: Node
        var codingPath: [any CodingKey] { node.codingPath }
        func decodeNil() -> Bool { node.value is NSNull }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try node.decode(T.self) }
    }

    struct IndexKey: CodingKey {
        let intValue: Int?
        let stringValue: String
        init(_ index: Int) {
            self.intValue = index
            self.stringValue = "[\(index)]"
        }
        init?(stringValue: String) { return nil }
        init?(intValue: Int) { self.init(intValue) }
    }
}

private func mismatch(_ type: Any.Type, _ value: Any, _ path: [any CodingKey]) -> DecodingError {
    if value is NSNull { return DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "null")) }
    return DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "wrong type"))
}
