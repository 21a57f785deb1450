import Signing
import Testing

@Suite struct SigningTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256MatchesNISTVectors(input: String, digest: String) {
        #expect(Hex.encode(SHA256.hash(Array(input.utf8))) == digest)
    }

    @Test func sha256OfAMillionAs() {
        let input = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(Hex.encode(SHA256.hash(input)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Fed in pieces that straddle block boundaries, the digest is the one-shot digest.
    @Test(arguments: [1, 7, 55, 56, 63, 64, 65, 127, 200])
    func incrementalUpdatesMatchOneShot(chunk: Int) {
        let message = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var hasher = SHA256()
        var start = 0
        while start < message.count {
            hasher.update(message[start..<min(start + chunk, message.count)])
            start += chunk
        }
        #expect(hasher.finalize() == SHA256.hash(message))
        #expect(SHA256.hash(message[0..<chunk]) == SHA256.hash(Array(message[0..<chunk])))
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block).
    @Test func hmacMatchesRFC4231() {
        #expect(Hex.encode(HMAC.sha256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Hex.encode(HMAC.sha256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Hex.encode(HMAC.sha256(key: [UInt8](repeating: 0xaa, count: 131), message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    /// One key signs many messages, from many tasks at once (a server's signer does): each MAC
    /// is that message's alone, so a keyed state reused for every message is never changed by
    /// one (RFC 4231 test cases 6 and 7 share their key).
    @Test func oneKeySignsEveryMessageAsIfNew() async {
        let key = HMAC.Key([UInt8](repeating: 0xaa, count: 131))
        let cases = [
            ("Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        let wrong = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<200 {
                        let (message, mac) = cases[(task + i) % 2]
                        if Hex.encode(key.authenticationCode(for: Array(message.utf8))) != mac { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }

    @Test func hexRoundTripsAndRejectsGarbage() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xff]
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }

    @Test func constantTimeEqualsComparesContent() {
        #expect(HMAC.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!HMAC.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!HMAC.constantTimeEquals([1, 2, 3], [1, 2]))
    }

    @Test func apiKeysAreRandomAndStoredAsTheirHash() {
        let a = Secrets.newAPIKey(prefix: "adv")
        let b = Secrets.newAPIKey(prefix: "adv")
        #expect(a != b)
        #expect(a.hasPrefix("adv_") && a.count == 4 + 64)
        #expect(Secrets.keyHash(a) == Hex.encode(SHA256.hash(Array(a.utf8))))
        #expect(Secrets.keyHash(a) != Secrets.keyHash(b))
    }
}

@Suite struct Base64URLTests {
    /// RFC 4648 §10 vectors, unpadded, in the URL-safe alphabet.
    @Test(arguments: [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")])
    func matchesRFC4648(plain: String, encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Array(plain.utf8))
    }

    @Test func usesTheURLSafeAlphabetAndRoundTrips() {
        let bytes: [UInt8] = [0xfb, 0xff, 0xbf, 0x00, 0x10]
        let text = Base64URL.encode(bytes)
        #expect(text == "-_-_ABA")
        #expect(Base64URL.decode(text) == bytes)
    }

    @Test(arguments: ["Zg=", "Z", "Zh", "a+b/", "ab cd"])
    func rejectsPaddingForeignCharactersAndNonCanonicalText(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }
}
