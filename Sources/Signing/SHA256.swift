import Crypto

/// SHA-256 (FIPS 180-4) through swift-crypto: API key hashes and the HMAC of impression tokens.
/// A thin value wrapper so callers speak bytes (`[UInt8]`) and never import Crypto themselves.
public struct SHA256 {
    private var hasher = Crypto.SHA256()

    public init() {}

    public static func hash<Bytes: Sequence<UInt8>>(_ data: Bytes) -> [UInt8] {
        var h = SHA256()
        h.update(data)
        return h.finalize()
    }

    public mutating func update<Bytes: Sequence<UInt8>>(_ data: Bytes) {
        let done: Void? = data.withContiguousStorageIfAvailable { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        if done == nil { Array(data).withUnsafeBytes { hasher.update(bufferPointer: $0) } }
    }

    public func finalize() -> [UInt8] { Array(hasher.finalize()) }
}
