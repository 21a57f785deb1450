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
