import Crypto

/// HMAC-SHA-256 (RFC 2104) through swift-crypto, for signing impression tokens.
public enum HMAC {
    /// A signing key, made once and reused for every token: the HMAC already keyed (its inner
    /// and outer hashes past the padded key's block), copied for each message. Keying took
    /// half of a token's signing, and a decision signs one token per placed ad. The copies
    /// share the keyed hash states copy-on-write, so the kept one is never changed;
    /// swift-crypto does not declare it `Sendable`, but nothing mutates it after `init`.
    public struct Key: @unchecked Sendable {
        private let keyed: Crypto.HMAC<Crypto.SHA256>

        public init<Bytes: Collection<UInt8>>(_ key: Bytes) { keyed = Crypto.HMAC(key: SymmetricKey(data: Array(key))) }

        public func authenticationCode<Message: Sequence<UInt8>>(for message: Message) -> [UInt8] {
            let bytes = message as? [UInt8] ?? Array(message)
            var mac = keyed
            mac.update(data: bytes)
            return Array(mac.finalize())
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
