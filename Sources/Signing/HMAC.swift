import Crypto

/// HMAC-SHA-256 (RFC 2104) through swift-crypto, for signing impression tokens.
public enum HMAC {
    /// A signing key, made once and reused for every token. `SymmetricKey` does not declare
    /// `Sendable` in this swift-crypto version, but it is immutable after `init`, so sharing
    /// it between tasks is safe.
    public struct Key: @unchecked Sendable {
        private let key: SymmetricKey

        public init<Bytes: Collection<UInt8>>(_ key: Bytes) { self.key = SymmetricKey(data: Array(key)) }

        public func authenticationCode<Message: Sequence<UInt8>>(for message: Message) -> [UInt8] {
            let bytes = message as? [UInt8] ?? Array(message)
            return Array(Crypto.HMAC<Crypto.SHA256>.authenticationCode(for: bytes, using: key))
        }
    }

    public static func sha256<Key: Collection<UInt8>, Message: Sequence<UInt8>>(key: Key, message: Message) -> [UInt8] {
        HMAC.Key(key).authenticationCode(for: message)
    }

    /// Compares two MACs in time that does not depend on where they differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
