/// HMAC-SHA-256 (RFC 2104). A `HMAC.Key` hashes its padded key blocks once, so each MAC
/// costs only the message's blocks plus one.
public enum HMAC {
    public struct Key: Sendable {
        fileprivate let inner: SHA256
        fileprivate let outer: SHA256

        public init<Bytes: Collection<UInt8>>(_ key: Bytes) {
            var block = key.count > SHA256.blockSize ? SHA256.hash(key) : Array(key)
            block += [UInt8](repeating: 0, count: SHA256.blockSize - block.count)
            var inner = SHA256()
            inner.update(block.map { $0 ^ 0x36 })
            var outer = SHA256()
            outer.update(block.map { $0 ^ 0x5c })
            self.inner = inner
            self.outer = outer
        }

        public func authenticationCode<Message: Sequence<UInt8>>(for message: Message) -> [UInt8] {
            var inner = self.inner
            inner.update(message)
            var outer = self.outer
            outer.update(inner.finalize())
            return outer.finalize()
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

public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Random secrets and API keys from the system's cryptographic generator.
public enum Secrets {
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    /// A new API key: a prefix that says what it is, then 32 random bytes in hex.
    public static func newAPIKey(prefix: String) -> String { prefix + "_" + Hex.encode(randomBytes(32)) }

    /// How an API key is stored: its SHA-256 in hex. Keys are 256-bit random, so a fast hash
    /// is enough (no password stretching needed).
    public static func keyHash(_ key: String) -> String { Hex.encode(SHA256.hash(Array(key.utf8))) }
}
