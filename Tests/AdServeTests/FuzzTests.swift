// The request bodies, `JSON.decode` and the tree decoder are internal to API: this file reaches
// them through a testable import (debug builds, as `swift test` makes them).
@testable import API
import Domain
import Foundation
import Hummingbird
import Serving
import Signing
import Testing

// A seeded mutation fuzzer over what the API parses from strangers: JSON request bodies and
// impression tokens. Deterministic (SplitMix64, one seed per body type), so a failure names an
// input that reproduces on every machine; fast enough for `swift test`.
//
// Figures (constants the README can cite):
// - JSON: `JSONFuzzTests.casesPerBody` (2,500) mutated bodies for each of the ten body types,
//   25,000 in all, plus `FuzzTargets.numberCases` (390) numbers no field can hold, each placed
//   in each of the 22 numeric fields it does not fit, booleans in the 19 integer fields, and
//   the nesting and size boundaries.
// - Tokens: `TokenFuzzTests.mutatedTokens` (20,000) mutated tokens and
//   `TokenFuzzTests.keyPairs` (2,000) pairs of keys.
// A trap anywhere (an overflow, a force unwrap, a stack overflow) ends the test process, so
// "crashes: 0" is the suite finishing.

/// Mutations of a byte string in the manner of AFL's havoc stage: one to four random edits
/// stacked on a valid input.
struct FuzzMutator {
    private var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// Uniform in `0..<n`; 0 when `n` is 0.
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(random.next() % UInt64(n)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func randomBytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(UInt8(truncatingIfNeeded: random.next())) }
        return out
    }

    /// Numbers no field can hold, and the edges of the ones some can.
    static let numbers: [String] = [
        "0", "-0", "-1", "1.5", "-0.5", "0.1", "1e309", "-1e309", "1E400", "1e-400", "1e30", "-1e30", "9.3e18",
        "99999999999999999999", "-99999999999999999999", "9223372036854775807", "9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "4.9e-324", "3.5e38", "123456789012345678901234567890.5",
        "1" + String(repeating: "0", count: 400), "01", "1.", ".5", "+1", "--1", "NaN", "Infinity",
    ]

    /// String contents: too long, control characters raw and escaped, invalid UTF-8, unpaired
    /// surrogates, bidirectional overrides, schemes a media URL must not have.
    static let strings: [[UInt8]] = [
        [],
        Array("   ".utf8),
        Array(String(repeating: "x", count: 65).utf8),
        Array(String(repeating: "x", count: 201).utf8),
        Array(String(repeating: "y", count: 2_049).utf8),
        Array(String(repeating: "z", count: 5_001).utf8),
        Array(String(repeating: "w", count: 20_000).utf8),
        Array(#"\u0000"#.utf8),
        Array(#"a\u001b[31mb"#.utf8),
        Array(#"\u0085"#.utf8),
        Array(#"\u202e"#.utf8),
        Array(#"\ufeff"#.utf8),
        Array(#"\ud800"#.utf8),
        Array(#"\udc00\ud800"#.utf8),
        Array(#"\ud83c\udf89"#.utf8),
        Array(#"\u12"#.utf8),
        Array(#"\x"#.utf8),
        Array(#"\"#.utf8),
        [0x01],
        [0x09, 0x0A],
        [0x00],
        [0xFF, 0xFE],
        [0xC0, 0x80],
        [0xED, 0xA0, 0x80],
        [0xF4, 0x90, 0x80, 0x80],
        Array(("e" + String(repeating: "\u{0301}", count: 300)).utf8),
        Array("Café 東京 🎉".utf8),
        Array("javascript:alert(1)".utf8),
        Array("data:text/html,<script>alert(1)</script>".utf8),
        Array("HTTPS://CDN.EXAMPLE/A.JPG".utf8),
        Array("https://\u{202E}gpj.exe".utf8),
    ]

    /// Pieces of JSON (and of not-quite JSON) inserted anywhere.
    static let fragments: [[UInt8]] = [
        Array("\"".utf8), Array("\\".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8), Array("]".utf8),
        Array(":".utf8), Array(",".utf8), Array("null".utf8), Array("true".utf8), Array("-".utf8), Array("e".utf8),
        Array(".".utf8), Array(" ".utf8), Array("/*".utf8), Array("NaN".utf8), Array(#"\u0000"#.utf8),
        Array(#"\ud800"#.utf8), Array(#""\u0000":1,"#.utf8), [0x00], [0xFF], [0xEF, 0xBB, 0xBF],
    ]

    /// A JSON value of the wrong kind, size or content for whatever field receives it.
    mutating func hostileValue() -> [UInt8] {
        switch below(10) {
        case 0:
            return Array("null".utf8)
        case 1:
            let text = pick(["true", "false", "[]", "{}", "\"\"", "[null]", #"{"a":null}"#, "[1,2,3]", "0"])
            return Array(text.utf8)
        case 2, 3:
            return Array(pick(Self.numbers).utf8)
        case 4, 5, 6:
            let content = pick(Self.strings)
            return [UInt8(ascii: "\"")] + content + [UInt8(ascii: "\"")]
        case 7:
            let count = 1 + below(500)
            let items = (0..<count).map { String($0) }.joined(separator: ",")
            return Array("[\(items)]".utf8)
        case 8:
            let depth = pick([5, 33, 1_000])
            return [UInt8](repeating: UInt8(ascii: "["), count: depth) + [UInt8](repeating: UInt8(ascii: "]"), count: depth)
        default:
            let content = randomBytes(1 + below(16))
            return [UInt8(ascii: "\"")] + content + [UInt8(ascii: "\"")]
        }
    }

    /// `input` with one to four edits; `other` is spliced in by one of them, `fields` (the
    /// body's wire names) are repeated with hostile values by another.
    mutating func mutate(_ input: [UInt8], splicing other: [UInt8], fields: [String]) -> [UInt8] {
        var bytes = input
        let edits = 1 + below(4)
        for _ in 0..<edits {
            switch below(14) {
            case 0:  // flip one bit
                guard !bytes.isEmpty else { break }
                let at = below(bytes.count)
                let bit = UInt8(below(8))
                bytes[at] ^= UInt8(1) << bit
            case 1:  // overwrite one byte
                guard !bytes.isEmpty else { break }
                let at = below(bytes.count)
                let value = randomBytes(1)[0]
                bytes[at] = value
            case 2:  // insert random bytes
                let inserted = randomBytes(1 + below(8))
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: inserted, at: at)
            case 3:  // delete a slice
                guard !bytes.isEmpty else { break }
                let start = below(bytes.count)
                let end = min(bytes.count, start + 1 + below(16))
                bytes.removeSubrange(start..<end)
            case 4:  // duplicate a slice
                guard !bytes.isEmpty else { break }
                let start = below(bytes.count)
                let end = min(bytes.count, start + 1 + below(64))
                let slice = Array(bytes[start..<end])
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: slice, at: at)
            case 5:  // splice: the head of this input, the tail of another
                let cut = below(bytes.count + 1)
                let otherCut = below(other.count + 1)
                bytes = Array(bytes[..<cut]) + Array(other[otherCut...])
            case 6:  // a number no field can hold
                replaceNumber(&bytes)
            case 7:  // a string's contents replaced
                replaceString(&bytes)
            case 8:  // a JSON fragment anywhere
                let fragment = pick(Self.fragments)
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: fragment, at: at)
            case 9:  // deep nesting, open or closed, of arrays or objects
                let depth = pick([2, 16, 31, 32, 33, 100, 600, 5_000])
                let shape: [UInt8]
                switch below(3) {
                case 0:
                    shape = [UInt8](repeating: UInt8(ascii: "["), count: depth)
                case 1:
                    shape = [UInt8](repeating: UInt8(ascii: "["), count: depth) + [UInt8(ascii: "1")]
                        + [UInt8](repeating: UInt8(ascii: "]"), count: depth)
                default:
                    shape = Array(String(repeating: #"{"a":"#, count: depth).utf8) + [UInt8(ascii: "1")]
                        + [UInt8](repeating: UInt8(ascii: "}"), count: depth)
                }
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: shape, at: at)
            case 10:  // an unknown field
                let name = Array("\"extra_\(below(1_000))\":".utf8)
                let value = hostileValue()
                insertAfterBrace(&bytes, name + value + [UInt8(ascii: ",")])
            case 11:  // many fields
                let count = pick([20, 200, 2_000])
                let text = (0..<count).map { "\"f\($0)\":\($0)" }.joined(separator: ",") + ","
                insertAfterBrace(&bytes, Array(text.utf8))
            case 12:  // a field of this body again (a duplicate key), with a hostile value
                let field = fields.isEmpty ? "name" : pick(fields)
                let value = hostileValue()
                insertAfterBrace(&bytes, Array("\"\(field)\":".utf8) + value + [UInt8(ascii: ",")])
            default:  // truncated
                let keep = below(bytes.count + 1)
                bytes.removeSubrange(keep...)
            }
        }
        return bytes
    }

    /// Inserts right after the first `{` (where a field goes), or anywhere if there is none.
    private mutating func insertAfterBrace(_ bytes: inout [UInt8], _ fragment: [UInt8]) {
        let at: Int
        if let brace = bytes.firstIndex(of: UInt8(ascii: "{")) {
            at = brace + 1
        } else {
            at = below(bytes.count + 1)
        }
        bytes.insert(contentsOf: fragment, at: at)
    }

    private static func startsValue(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: ",")
    }

    private static func startsNumber(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
    }

    private static func isNumeric(_ byte: UInt8) -> Bool {
        startsNumber(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
            || byte == UInt8(ascii: "E")
    }

    /// Replaces one number that starts a value (or, if there is none, inserts one anywhere).
    private mutating func replaceNumber(_ bytes: inout [UInt8]) {
        let replacement = Array(pick(Self.numbers).utf8)
        let starts = bytes.indices.filter { i in i > 0 && Self.startsValue(bytes[i - 1]) && Self.startsNumber(bytes[i]) }
        guard !starts.isEmpty else {
            let at = below(bytes.count + 1)
            bytes.insert(contentsOf: replacement, at: at)
            return
        }
        let start = pick(starts)
        var end = start
        while end < bytes.count && Self.isNumeric(bytes[end]) { end += 1 }
        bytes.replaceSubrange(start..<end, with: replacement)
    }

    /// Replaces the contents of one string value (or, if there is none, inserts one anywhere).
    private mutating func replaceString(_ bytes: inout [UInt8]) {
        let quote = UInt8(ascii: "\"")
        let replacement = pick(Self.strings)
        let opens = bytes.indices.filter { i in
            i > 0 && bytes[i] == quote && (bytes[i - 1] == UInt8(ascii: ":") || bytes[i - 1] == UInt8(ascii: "["))
        }
        guard !opens.isEmpty else {
            let at = below(bytes.count + 1)
            bytes.insert(contentsOf: [quote] + replacement + [quote], at: at)
            return
        }
        let open = pick(opens)
        var close = open + 1
        while close < bytes.count && bytes[close] != quote {
            close += bytes[close] == UInt8(ascii: "\\") ? 2 : 1
        }
        bytes.replaceSubrange((open + 1)..<min(close, bytes.count), with: replacement)
    }

    // MARK: Tokens

    /// A valid token with random fields, issued within `lifetime` before `now`.
    mutating func token(issuedAt now: Timestamp, within lifetime: Int64) -> ImpressionToken {
        let idCharacters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        let length = 1 + below(64)
        var user = ""
        for _ in 0..<length { user.append(pick(idCharacters)) }
        let decisionID = "\(below(1_000_000))-\(below(1_000_000))"
        let afterPost = below(1_000)
        let adID = AdID(Int64(truncatingIfNeeded: random.next()))
        let campaignID = CampaignID(Int64(below(1_000_000)))
        let objective = pick(Objective.allCases)
        let price = Int64(below(1_000_000_000))
        let age = Int64(below(Int(lifetime)))
        return ImpressionToken(
            decisionID: decisionID, afterPost: afterPost, userID: UserID(trusted: user), adID: adID, campaignID: campaignID,
            objective: objective, priceMicros: price, issuedAt: now.adding(milliseconds: -age))
    }

    /// `text` (a signed token) changed in one way: a character, the halves, a forged field, dots,
    /// padding, letter case, garbage, length, random bytes, or a generic byte edit.
    mutating func mutateToken(_ text: String, other: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var bytes = Array(text.utf8)
        switch below(12) {
        case 0:  // one character to another of the alphabet
            if !bytes.isEmpty {
                let at = below(bytes.count)
                bytes[at] = pick(alphabet)
            }
        case 1:  // this token's payload with another's MAC
            let theirs = other.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            bytes = Array((parts[0] + "." + (theirs.last ?? "")).utf8)
        case 2:  // payload and MAC swapped
            bytes = Array(parts.reversed().joined(separator: ".").utf8)
        case 3:  // one field of the payload changed and re-encoded, the MAC kept: a forgery
            if parts.count == 2, let payload = Base64URL.decode(parts[0]) {
                var fields = String(decoding: payload, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                let at = below(fields.count)
                fields[at] = pick(["0", "1", "-1", "999999999999", "awareness", "", "x|y", "alice"])
                bytes = Array((Base64URL.encode(Array(fields.joined(separator: "|").utf8)) + "." + parts[1]).utf8)
            }
        case 4:  // dots
            let dots = [UInt8](repeating: UInt8(ascii: "."), count: 1 + below(400))
            let at = below(bytes.count + 1)
            bytes.insert(contentsOf: dots, at: at)
        case 5:  // what other base64 flavours and sloppy clients add
            let extra = Array(pick(["=", "==", "%3D", " ", "\n", "+", "/", "\0", "."]).utf8)
            let at = below(bytes.count + 1)
            bytes.insert(contentsOf: extra, at: at)
        case 6:  // one letter's case flipped
            let letters = bytes.indices.filter { i in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[i]) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[i])
            }
            if !letters.isEmpty {
                let at = pick(letters)
                bytes[at] ^= 0x20
            }
        case 7:  // base64url garbage, with or without a dot
            var garbage: [UInt8] = []
            let length = below(300)
            for _ in 0..<length { garbage.append(pick(alphabet)) }
            if below(2) == 0 {
                let at = below(garbage.count + 1)
                garbage.insert(UInt8(ascii: "."), at: at)
            }
            bytes = garbage
        case 8:  // very long: the token repeated
            let repeats = 2 + below(40)
            bytes = Array(Array(repeating: bytes, count: repeats).joined())
        case 9:  // random bytes
            bytes = randomBytes(below(200))
        case 10:  // shortened
            if !bytes.isEmpty {
                let cut = 1 + below(min(bytes.count, 8))
                bytes.removeLast(cut)
            }
        default:  // a generic byte edit
            bytes = mutate(bytes, splicing: Array(other.utf8), fields: [])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A rule of `Validation.swift` that a body the fuzzer got accepted breaks: a finding, not an
/// answer the API would give.
struct BrokenRule: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The rules an accepted value must satisfy, restated plainly from `Validation.swift` and
/// checked on every value the fuzzer got through.
enum FuzzRules {
    static func check(_ holds: Bool, _ rule: @autoclosure () -> String) throws {
        if !holds { throw BrokenRule(rule()) }
    }

    static func isAllowed(_ scalar: Unicode.Scalar, multiline: Bool) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A: return multiline
        case 0x00...0x1F, 0x7F...0x9F, 0xFEFF, 0x202A...0x202E, 0x2066...0x2069: return false
        default: return true
        }
    }

    /// Bounded in characters and bytes, no control characters (`\n` and `\t` only in long text).
    static func text(_ value: String, _ field: String, characters: Int, required: Bool, multiline: Bool) throws {
        try check(!required || !value.isEmpty, "\(field) is empty")
        try check(value.count <= characters, "\(field) has \(value.count) characters")
        try check(value.utf8.count <= 4 * characters, "\(field) has \(value.utf8.count) bytes")
        for scalar in value.unicodeScalars where !isAllowed(scalar, multiline: multiline) {
            throw BrokenRule("\(field) holds U+\(String(scalar.value, radix: 16, uppercase: true))")
        }
    }

    static func targeting(_ t: Targeting) throws {
        let ages = 0...130
        try check(t.ageMin.map { ages.contains($0) } ?? true, "targeting.age_min \(String(describing: t.ageMin))")
        try check(t.ageMax.map { ages.contains($0) } ?? true, "targeting.age_max \(String(describing: t.ageMax))")
        if let low = t.ageMin, let high = t.ageMax { try check(low <= high, "targeting ages \(low) > \(high)") }
        for list in [t.genders, t.countries, t.languages, t.interests, t.devices] {
            try check(list.count <= Limits.maxListCount, "a targeting list of \(list.count) values")
            try check(list.allSatisfy { !$0.isEmpty && $0.count <= 64 }, "a targeting value outside 1-64 characters")
            try check(list.allSatisfy { $0 == $0.lowercased() } && Set(list).count == list.count, "a targeting list not normalised")
        }
    }

    static func campaign(_ c: Campaign) throws {
        try text(c.name, "name", characters: Limits.maxNameLength, required: true, multiline: false)
        let money: ClosedRange<Micros> = 1...Limits.maxMoney
        try check(money.contains(c.bidMicros), "bid_micros \(c.bidMicros)")
        try check(money.contains(c.dailyBudgetMicros), "daily_budget_micros \(c.dailyBudgetMicros)")
        try check(money.contains(c.totalBudgetMicros), "total_budget_micros \(c.totalBudgetMicros)")
        try check(c.objective != .awareness || c.bidMicros % 1000 == 0, "a CPM bid of \(c.bidMicros)")
        try check((0...Limits.maxMoney).contains(c.maxConversionValueMicros), "max_conversion_value_micros \(c.maxConversionValueMicros)")
        if let start = c.startAt, let end = c.endAt { try check(start < end, "start_at \(start) not before end_at \(end)") }
        try targeting(c.targeting)
        try check(c.frequencyCaps.count <= Limits.maxFrequencyCaps, "\(c.frequencyCaps.count) frequency caps")
        for cap in c.frequencyCaps {
            try check((1...10_000).contains(cap.impressions), "frequency cap impressions \(cap.impressions)")
            try check(cap.perHours.map { (1...Limits.maxCapHours).contains($0) } ?? true, "frequency cap per_hours \(String(describing: cap.perHours))")
        }
    }

    static func ad(_ ad: Ad) throws {
        try check((1...Limits.maxMediaURLs).contains(ad.mediaURLs.count), "\(ad.mediaURLs.count) media URLs")
        for url in ad.mediaURLs {
            let scheme = url.firstIndex(of: ":").map { url[..<$0].lowercased() }
            try check(scheme.map { Limits.mediaSchemes.contains($0) } ?? false, "a media URL with scheme \(scheme ?? "(none)")")
            try check(url.utf8.count <= 2048, "a media URL of \(url.utf8.count) bytes")
            try text(url, "media_urls", characters: 2048, required: true, multiline: false)
        }
        try text(ad.caption, "caption", characters: Limits.maxTextLength, required: false, multiline: true)
        try text(ad.company, "company", characters: Limits.maxNameLength, required: true, multiline: false)
        try text(ad.product, "product", characters: Limits.maxNameLength, required: false, multiline: false)
        try text(ad.description, "description", characters: Limits.maxTextLength, required: false, multiline: true)
        if let embedding = ad.embedding {
            try check(embedding.count == Limits.embeddingDimensions, "an embedding of \(embedding.count) numbers")
            try check(embedding.allSatisfy { $0.isFinite }, "an embedding with a non-finite number")
        }
    }

    /// What the tree decoder promises before any validation: a `[Float]` holds finite numbers.
    static func decodedFinite(_ embedding: [Float]?) throws {
        try check(embedding?.allSatisfy { $0.isFinite } ?? true, "the decoder produced a non-finite embedding number")
    }

    static func userID(_ raw: String) throws {
        let allowed = raw.utf8.allSatisfy { (byte: UInt8) -> Bool in
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2D: return true
            default: return false
            }
        }
        try check(!raw.isEmpty && raw.utf8.count <= 64 && allowed, "user id \(raw.debugDescription)")
    }
}

/// One request body type: bodies the API accepts, its top-level wire fields, and `accept`,
/// which does what the route's handler does before it reaches the store (decode, build the
/// domain value, validate), then checks the result against `FuzzRules`. It throws the
/// `AdServeError` the API would answer with, or `BrokenRule` for a finding.
struct FuzzTarget: Sendable, CustomTestStringConvertible {
    let name: String
    let fields: [String]
    let seeds: [String]
    let accept: @Sendable ([UInt8]) async throws -> Void

    var testDescription: String { name }
}

/// A body with one numeric field marked `@@`, and the numbers that field must refuse.
struct FuzzNumberSlot: Sendable, CustomTestStringConvertible {
    let target: FuzzTarget
    let field: String
    /// The body as the API accepts it.
    let body: String
    let template: String
    let refused: [String]

    init(_ target: FuzzTarget, _ field: String, _ body: String, replacing literal: String, with pattern: String, refused: [String]) {
        self.target = target
        self.field = field
        self.body = body
        self.template = body.replacingOccurrences(of: literal, with: pattern)
        self.refused = refused
    }

    var testDescription: String { "\(target.name) \(field)" }
}

enum FuzzTargets {
    /// `,0` n times: pads a vector in a body to the 384 numbers an embedding must have.
    static func zeros(_ n: Int) -> String { String(repeating: ",0", count: n) }

    static let now = Timestamp(milliseconds: 1_780_315_200_000)
    static let limit = APIConfiguration(adminKey: "fuzz-admin-key-0123456789").maxBodyBytes
    static let signer = TokenSigner(key: Array("a secret key of thirty-two bytes".utf8), lifetimeMilliseconds: 3_600_000)
    static let token = ImpressionToken(
        decisionID: "7-1", afterPost: 3, userID: UserID(trusted: "alice"), adID: AdID(5), campaignID: CampaignID(2),
        objective: .traffic, priceMicros: 250_000, issuedAt: now)
    static let signedToken = signer.sign(token)

    /// The campaign and ad the PATCH bodies are applied to.
    static let storedCampaign = Campaign(
        id: CampaignID(1), advertiserID: AdvertiserID(1), name: "Spring", objective: .traffic, bidMicros: 500_000,
        dailyBudgetMicros: 50_000_000, totalBudgetMicros: 100_000_000, createdAt: now)
    static let storedAd = Ad(
        id: AdID(1), campaignID: CampaignID(1), format: .video, mediaURLs: ["https://cdn.example/v.mp4"], caption: "Run faster",
        company: "Acme", product: "Shoe", description: "A fast shoe", embedding: [0.1, 0.2, 0.3] + Array(repeating: 0, count: 381), createdAt: now)

    /// `JSON.decode` on a request carrying `bytes`, as every handler calls it.
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) async throws -> T {
        let request = Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/fuzz"),
            body: RequestBody(buffer: ByteBuffer(bytes: bytes)))
        return try await JSON.decode(type, from: request, limit: limit)
    }

    // MARK: What each handler does before the store (mirrors `AdServeAPI` and `CatalogService`)

    static func acceptAdvertiser(_ bytes: [UInt8]) async throws {
        let body = try await decode(CreateAdvertiserBody.self, bytes)
        var name = Substring(body.name)
        while name.first?.isWhitespace == true { name.removeFirst() }
        while name.last?.isWhitespace == true { name.removeLast() }
        try Limits.checkText(String(name), field: "name", characters: Limits.maxNameLength, required: true, multiline: false)
        try FuzzRules.text(String(name), "name", characters: Limits.maxNameLength, required: true, multiline: false)
    }

    static func acceptCampaign(_ bytes: [UInt8]) async throws {
        var campaign = try await decode(CreateCampaignBody.self, bytes).draft(at: now)
        campaign.targeting = campaign.targeting.normalized()
        try campaign.validate()
        try FuzzRules.campaign(campaign)
    }

    static func acceptCampaignPatch(_ bytes: [UInt8]) async throws {
        let change = try await decode(PatchCampaignBody.self, bytes).change()
        var campaign = storedCampaign
        change(&campaign)
        campaign.targeting = campaign.targeting.normalized()
        try campaign.validate()
        try FuzzRules.campaign(campaign)
    }

    static func acceptAd(_ bytes: [UInt8]) async throws {
        let body = try await decode(CreateAdBody.self, bytes)
        try FuzzRules.decodedFinite(body.embedding)
        let ad = body.draft(at: now)
        try ad.validate()
        try FuzzRules.ad(ad)
    }

    static func acceptAdPatch(_ bytes: [UInt8]) async throws {
        let patch = try await decode(PatchAdBody.self, bytes)
        try FuzzRules.decodedFinite(patch.embedding)
        var ad = storedAd
        patch.apply(to: &ad)
        try ad.validate()
        try FuzzRules.ad(ad)
    }

    static func acceptUser(_ bytes: [UInt8]) async throws {
        let body = try await decode(PutUserBody.self, bytes)
        let profile = UserProfile(
            id: UserID(trusted: "alice"), age: body.age, gender: body.gender, country: body.country, language: body.language,
            interests: body.interests ?? []
        ).normalized()
        try profile.validate()
        try FuzzRules.check(profile.age.map { (0...130).contains($0) } ?? true, "age \(String(describing: profile.age))")
        for value in [profile.gender, profile.country, profile.language] {
            if let value { try FuzzRules.check(!value.isEmpty && value.count <= 64, "a profile value of \(value.count) characters") }
        }
        try FuzzRules.check(profile.interests.count <= Limits.maxListCount, "\(profile.interests.count) interests")
        try FuzzRules.check(profile.interests.allSatisfy { !$0.isEmpty && $0.count <= 64 }, "an interest outside 1-64 characters")
    }

    static func acceptActivity(_ bytes: [UInt8]) async throws {
        let body = try await decode(ActivityBody.self, bytes)
        let activity = Activity(
            userID: UserID(trusted: "alice"), type: body.type, topics: (body.topics ?? []).map { $0.lowercased() }, text: body.text,
            adID: body.adId.map(AdID.init), seconds: body.seconds, at: now)
        try activity.validate()
        try FuzzRules.check(activity.topics.count <= Limits.maxListCount, "\(activity.topics.count) topics")
        try FuzzRules.check((activity.text?.count ?? 0) <= Limits.maxTextLength, "an activity text of \(activity.text?.count ?? 0) characters")
        if let seconds = activity.seconds {
            try FuzzRules.check(seconds.isFinite && seconds >= 0 && seconds <= 86_400, "seconds \(seconds)")
        }
    }

    static func acceptDecision(_ bytes: [UInt8]) async throws {
        let body = try await decode(DecisionBody.self, bytes)
        let user = try UserID(validating: body.userId)
        try FuzzRules.userID(user.rawValue)
    }

    static func acceptEvent(_ bytes: [UInt8]) async throws {
        let body = try await decode(EventBody.self, bytes)
        let verified = try signer.verify(body.impressionToken, now: now)
        try FuzzRules.check(verified == token, "a token verified that is not the one signed")
    }

    /// `POST /v1/token-secret/rotate` checks the grace itself.
    static func acceptSecretRotation(_ bytes: [UInt8]) async throws {
        let body = try await decode(RotateSecretBody.self, bytes)
        if let grace = body.graceSeconds, grace < 0 || grace > 30 * 86_400 {
            throw AdServeError.invalid("grace_seconds", "must be between 0 and 2592000 (30 days)")
        }
        try FuzzRules.check(body.graceSeconds.map { (0...(30 * 86_400)).contains($0) } ?? true, "grace_seconds \(String(describing: body.graceSeconds))")
    }

    // MARK: The ten body types

    static let advertisers = FuzzTarget(
        name: "POST /v1/advertisers", fields: ["name"],
        seeds: [#"{"name":"Acme"}"#, #"{"name":"Café 東京 🎉"}"#, #"{"name":"  Spaced  out  "}"#]
    ) { try await FuzzTargets.acceptAdvertiser($0) }

    static let campaigns = FuzzTarget(
        name: "POST /v1/campaigns",
        fields: [
            "advertiser_id", "name", "objective", "bid_micros", "daily_budget_micros", "total_budget_micros", "start_at", "end_at",
            "targeting", "frequency_cap", "status", "max_conversion_value_micros",
        ],
        seeds: [
            #"{"advertiser_id":1,"name":"Spring sale","objective":"traffic","bid_micros":500000,"daily_budget_micros":50000000,"total_budget_micros":100000000,"start_at":"2026-06-01T00:00:00Z","end_at":"2026-07-01T00:00:00Z","targeting":{"age_min":18,"age_max":65,"genders":["female"],"countries":["US","fr"],"languages":["en"],"interests":["running"],"devices":["ios"]},"frequency_cap":{"impressions":3,"per_hours":24},"status":"active"}"#,
            #"{"advertiser_id":2,"name":"Brand","objective":"awareness","bid_micros":2000000,"daily_budget_micros":1000000,"total_budget_micros":1000000}"#,
            #"{"advertiser_id":3,"name":"Sign-ups","objective":"conversions","bid_micros":3,"daily_budget_micros":7,"total_budget_micros":9,"status":"paused","targeting":{},"max_conversion_value_micros":5000000}"#,
        ]
    ) { try await FuzzTargets.acceptCampaign($0) }

    static let campaignPatches = FuzzTarget(
        name: "PATCH /v1/campaigns/{id}",
        fields: [
            "name", "status", "bid_micros", "daily_budget_micros", "total_budget_micros", "start_at", "end_at", "targeting", "frequency_cap",
            "max_conversion_value_micros",
        ],
        seeds: [
            #"{"status":"paused"}"#,
            #"{"name":"Summer","bid_micros":900000,"daily_budget_micros":60000000,"total_budget_micros":200000000,"start_at":"2026-06-01T00:00:00Z","end_at":"2026-06-02T00:00:00.500Z","targeting":{"countries":["fr"],"age_min":21},"frequency_cap":{"impressions":5,"per_hours":168},"max_conversion_value_micros":0}"#,
        ]
    ) { try await FuzzTargets.acceptCampaignPatch($0) }

    static let ads = FuzzTarget(
        name: "POST /v1/ads",
        fields: ["campaign_id", "format", "media_urls", "caption", "company", "product", "description", "embedding", "status"],
        seeds: [
            #"{"campaign_id":1,"format":"video","media_urls":["https://cdn.example/v.mp4"],"caption":"Run faster\nand further","company":"Acme","product":"Shoe","description":"A fast shoe\twith grip","embedding":[0.1,-0.2,3e-3,1"#
                + FuzzTargets.zeros(380) + "]}",
            #"{"campaign_id":7,"format":"image","media_urls":["https://a.example/1.jpg","data:image/png;base64,iVBORw0KGgo="],"caption":"","company":"Café 東京","product":"","description":"","status":"paused"}"#,
        ]
    ) { try await FuzzTargets.acceptAd($0) }

    static let adPatches = FuzzTarget(
        name: "PATCH /v1/ads/{id}",
        fields: ["status", "media_urls", "caption", "company", "product", "description", "embedding"],
        seeds: [
            #"{"status":"paused"}"#,
            #"{"media_urls":["http://cdn.example/x.jpg"],"caption":"New","company":"Acme Inc","product":"Shoe 2","description":"Better","embedding":[0.5,0.25"#
                + FuzzTargets.zeros(382) + "]}",
        ]
    ) { try await FuzzTargets.acceptAdPatch($0) }

    static let users = FuzzTarget(
        name: "PUT /v1/users/{id}", fields: ["age", "gender", "country", "language", "interests"],
        seeds: [
            #"{"age":30,"gender":"female","country":"us","language":"en","interests":["running","tea"]}"#,
            #"{}"#,
            #"{"interests":[]}"#,
        ]
    ) { try await FuzzTargets.acceptUser($0) }

    static let activities = FuzzTarget(
        name: "POST /v1/users/{id}/activity", fields: ["type", "topics", "text", "ad_id", "seconds"],
        seeds: [
            #"{"type":"view","topics":["Running"],"text":"hello there","ad_id":5,"seconds":12.5}"#,
            #"{"type":"like"}"#,
            #"{"type":"session","seconds":0}"#,
        ]
    ) { try await FuzzTargets.acceptActivity($0) }

    static let decisions = FuzzTarget(
        name: "POST /v1/decisions", fields: ["user_id", "context", "organic_count"],
        seeds: [
            #"{"user_id":"alice","organic_count":10,"context":{"device":"ios","hour":9,"session_position":4}}"#,
            #"{"user_id":"u_1-x","organic_count":0}"#,
        ]
    ) { try await FuzzTargets.acceptDecision($0) }

    static let events = FuzzTarget(
        name: "POST /v1/events", fields: ["type", "impression_token", "value_micros"],
        seeds: [
            #"{"type":"click","impression_token":"\#(signedToken)","value_micros":1000}"#,
            #"{"type":"impression","impression_token":"\#(signedToken)"}"#,
        ]
    ) { try await FuzzTargets.acceptEvent($0) }

    static let secretRotations = FuzzTarget(
        name: "POST /v1/token-secret/rotate", fields: ["grace_seconds"],
        seeds: [#"{}"#, #"{"grace_seconds":3600}"#, #"{"grace_seconds":0}"#]
    ) { try await FuzzTargets.acceptSecretRotation($0) }

    static let all = [advertisers, campaigns, campaignPatches, ads, adPatches, users, activities, decisions, events, secretRotations]

    // MARK: Numbers no field can hold

    /// Not integers, or integers past Int64, or not numbers: every integer field refuses these,
    /// naming itself. (Booleans have their own test.)
    static let notIntegers = [
        "1.5", "-0.5", "0.1", "1e30", "-1e30", "9.3e18", "1e19", "99999999999999999999", "-99999999999999999999",
        "123456789012345678901234567890", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
        #""1""#, "[1]", #"{"a":1}"#,
    ]
    /// What a `[Float]` element refuses, naming its index.
    static let notFloats = [#""0.5""#, "[0.5]", "{}", "null", "1e39", "-1e39", "3.5e38"]
    /// What `seconds` refuses, in decoding or in validation.
    static let notSeconds = [#""12""#, "[1]", "{}", "-1", "86400.5", "1e39"]
    /// Numbers the parser itself may refuse (the whole body, naming no field) or pass on.
    static let unrepresentable = ["1e309", "-1e309", "1E400"]

    static let numberSlots: [FuzzNumberSlot] = {
        let campaign = #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":500000,"daily_budget_micros":50000000,"total_budget_micros":100000000,"targeting":{"age_min":18,"age_max":65},"frequency_cap":{"impressions":3,"per_hours":24},"max_conversion_value_micros":5000000}"#
        let patch = #"{"bid_micros":900000,"targeting":{"age_min":21}}"#
        let ad = #"{"campaign_id":1,"format":"video","media_urls":["https://cdn.example/v.mp4"],"caption":"c","company":"Acme","product":"p","description":"d","embedding":[0.5,0.25"#
            + FuzzTargets.zeros(382) + "]}"
        let adPatch = #"{"embedding":[0.25"# + FuzzTargets.zeros(383) + "]}"
        let user = #"{"age":30}"#
        let activity = #"{"type":"view","ad_id":5,"seconds":12.5}"#
        let decision = #"{"user_id":"alice","organic_count":10,"context":{"hour":9,"session_position":4}}"#
        let event = #"{"type":"click","impression_token":"\#(FuzzTargets.signedToken)","value_micros":1000}"#
        let rotation = #"{"grace_seconds":3600}"#
        func integer(_ target: FuzzTarget, _ field: String, _ body: String, key: String, value: String) -> FuzzNumberSlot {
            FuzzNumberSlot(target, field, body, replacing: "\"\(key)\":\(value)", with: "\"\(key)\":@@", refused: FuzzTargets.notIntegers)
        }
        return [
            integer(FuzzTargets.campaigns, "advertiser_id", campaign, key: "advertiser_id", value: "1"),
            integer(FuzzTargets.campaigns, "bid_micros", campaign, key: "bid_micros", value: "500000"),
            integer(FuzzTargets.campaigns, "daily_budget_micros", campaign, key: "daily_budget_micros", value: "50000000"),
            integer(FuzzTargets.campaigns, "total_budget_micros", campaign, key: "total_budget_micros", value: "100000000"),
            integer(FuzzTargets.campaigns, "targeting.age_min", campaign, key: "age_min", value: "18"),
            integer(FuzzTargets.campaigns, "targeting.age_max", campaign, key: "age_max", value: "65"),
            integer(FuzzTargets.campaigns, "frequency_cap.impressions", campaign, key: "impressions", value: "3"),
            integer(FuzzTargets.campaigns, "frequency_cap.per_hours", campaign, key: "per_hours", value: "24"),
            integer(FuzzTargets.campaigns, "max_conversion_value_micros", campaign, key: "max_conversion_value_micros", value: "5000000"),
            integer(FuzzTargets.campaignPatches, "bid_micros", patch, key: "bid_micros", value: "900000"),
            integer(FuzzTargets.campaignPatches, "targeting.age_min", patch, key: "age_min", value: "21"),
            integer(FuzzTargets.ads, "campaign_id", ad, key: "campaign_id", value: "1"),
            FuzzNumberSlot(FuzzTargets.ads, "embedding[1]", ad, replacing: "[0.5,0.25,", with: "[0.5,@@,", refused: FuzzTargets.notFloats),
            FuzzNumberSlot(FuzzTargets.adPatches, "embedding[0]", adPatch, replacing: "[0.25,", with: "[@@,", refused: FuzzTargets.notFloats),
            integer(FuzzTargets.users, "age", user, key: "age", value: "30"),
            integer(FuzzTargets.activities, "ad_id", activity, key: "ad_id", value: "5"),
            FuzzNumberSlot(FuzzTargets.activities, "seconds", activity, replacing: #""seconds":12.5"#, with: #""seconds":@@"#, refused: FuzzTargets.notSeconds),
            integer(FuzzTargets.decisions, "organic_count", decision, key: "organic_count", value: "10"),
            integer(FuzzTargets.decisions, "context.hour", decision, key: "hour", value: "9"),
            integer(FuzzTargets.decisions, "context.session_position", decision, key: "session_position", value: "4"),
            integer(FuzzTargets.events, "value_micros", event, key: "value_micros", value: "1000"),
            integer(FuzzTargets.secretRotations, "grace_seconds", rotation, key: "grace_seconds", value: "3600"),
        ]
    }()

    static var numberCases: Int { FuzzTargets.numberSlots.reduce(0) { $0 + $1.refused.count + FuzzTargets.unrepresentable.count } }

    // MARK: Judging an answer

    /// What is wrong with a refusal, or nil: it must be `invalid_input` with a message, and name
    /// no field or one of this body's, in wire form (`targeting.age_min`, `media_urls[2]`).
    static func problem(with error: AdServeError, fields: [String]) -> String? {
        guard error.code == .invalidInput else { return "answered \(error.code), not invalid_input: \(error)" }
        guard !error.message.isEmpty else { return "a refusal with no message" }
        guard let field = error.field else { return nil }
        let wire = field.utf8.allSatisfy { (byte: UInt8) -> Bool in
            switch byte {
            case 0x61...0x7A, 0x30...0x39, 0x5F, 0x2E, 0x5B, 0x5D: return true  // a-z 0-9 _ . [ ]
            default: return false
            }
        }
        let top = String(field.prefix { $0 != "." && $0 != "[" })
        guard wire, fields.contains(top) else { return "named the field \(field), not one of this body's" }
        return nil
    }

    static func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(160), as: UTF8.self)
        return bytes.count > 160 ? "\(text)… (\(bytes.count) bytes)" : text
    }
}

/// Every mutated body is either accepted and valid, or refused with `invalid_input` naming one
/// of its own fields; none traps, none throws anything but `AdServeError`.
@Suite struct JSONFuzzTests {
    /// Mutated bodies per body type (ten types: 25,000 in all).
    static let casesPerBody = 2_500

    @Test(arguments: FuzzTargets.all)
    func mutatedBodiesAreAcceptedValidOrRefusedNamingAField(target: FuzzTarget) async throws {
        let seeds = target.seeds.map { Array($0.utf8) }
        for seed in seeds {
            try await target.accept(seed)  // the fuzzer starts from bodies the API takes
        }
        var mutator = FuzzMutator(seed: StableHash.fnv1a(target.name))
        var accepted = 0
        var refused = 0
        var failures: [String] = []
        for _ in 0..<Self.casesPerBody {
            let base = mutator.pick(seeds)
            let other = mutator.pick(seeds)
            let input = mutator.mutate(base, splicing: other, fields: target.fields)
            do {
                try await target.accept(input)
                accepted += 1
            } catch let error as AdServeError {
                refused += 1
                if let problem = FuzzTargets.problem(with: error, fields: target.fields) {
                    failures.append("\(problem) — for \(FuzzTargets.preview(input))")
                }
            } catch {
                failures.append("threw \(type(of: error)): \(error) — for \(FuzzTargets.preview(input))")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Self.casesPerBody) inputs: \(failures.prefix(3).joined(separator: "\n"))")
        #expect(accepted + refused == Self.casesPerBody)
        // The mutations reach both sides of the checks: some bodies still pass, others do not.
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    @Test(arguments: FuzzTargets.numberSlots)
    func numbersTheFieldCannotHoldAreRefusedNamingIt(slot: FuzzNumberSlot) async throws {
        #expect(slot.template.components(separatedBy: "@@").count == 2, "the template marks exactly one number")
        try await slot.target.accept(Array(slot.body.utf8))
        for form in slot.refused {
            let input = Array(slot.template.replacingOccurrences(of: "@@", with: form).utf8)
            do {
                try await slot.target.accept(input)
                Issue.record("\(slot.field) = \(form) was accepted")
            } catch let error as AdServeError {
                #expect(error.code == .invalidInput && error.field == slot.field, "\(slot.field) = \(form): \(error)")
            }
        }
        for form in FuzzTargets.unrepresentable {
            let input = Array(slot.template.replacingOccurrences(of: "@@", with: form).utf8)
            do {
                try await slot.target.accept(input)
                Issue.record("\(slot.field) = \(form) was accepted")
            } catch let error as AdServeError {
                #expect(error.code == .invalidInput && (error.field == nil || error.field == slot.field), "\(slot.field) = \(form): \(error)")
            }
        }
    }

    /// Swift's names go to the wire in snake_case: the ASCII path (every key of ours) and the
    /// general one give the same names, and camelCase takes them back.
    @Test func namesGoToTheWireInSnakeCase() {
        #expect(JSON.snakeCase("userId") == "user_id")
        #expect(JSON.snakeCase("organicCount") == "organic_count")
        #expect(JSON.snakeCase("device") == "device")
        #expect(JSON.snakeCase("mediaURLs") == "media_u_r_ls")
        #expect(JSON.snakeCase("prixÉtatFinal") == "prix_état_final")
        for name in ["userId", "sessionPosition", "dailyBudgetMicros", "device", "x"] {
            #expect(JSON.camelCase(JSON.snakeCase(name)) == name)
        }
    }

    /// `TreeDecoder.integer` documents that `true` is refused where an integer belongs; a
    /// boolean is not a count, an id or an amount of money.
    @Test(arguments: ["true", "false"])
    func aBooleanIsNotAnInteger(literal: String) async throws {
        var accepted: [String] = []
        for slot in FuzzTargets.numberSlots where slot.refused == FuzzTargets.notIntegers {
            let input = Array(slot.template.replacingOccurrences(of: "@@", with: literal).utf8)
            do {
                try await slot.target.accept(input)
                accepted.append(slot.testDescription)
            } catch let error as AdServeError {
                #expect(error.code == .invalidInput && error.field == slot.field, "\(slot.field) = \(literal): \(error)")
            }
        }
        #expect(accepted.isEmpty, "\(literal) was accepted as an integer by \(accepted.joined(separator: ", "))")
    }

    /// `JSON.maxDepth` levels parse; one more is refused before any parser recurses, however
    /// deep, closed or not; brackets inside a string are text.
    @Test func nestingIsRefusedOneLevelPastTheLimit() async throws {
        let limit = JSON.maxDepth
        for arrays in [1, limit - 2, limit - 1, limit, limit + 1, 1_000, 200_000] {
            // The object is one level, the arrays `arrays` more.
            let body = #"{"name":"# + String(repeating: "[", count: arrays) + String(repeating: "]", count: arrays) + "}"
            do {
                try await FuzzTargets.advertisers.accept(Array(body.utf8))
                Issue.record("an array for a name was accepted")
            } catch let error as AdServeError {
                if arrays + 1 > limit {
                    #expect(error.message.contains("nested deeper"), "\(arrays + 1) levels: \(error)")
                } else {
                    #expect(error.field == "name", "\(arrays + 1) levels are allowed, the type is wrong: \(error)")
                }
            }
        }
        let unclosed = String(repeating: "[", count: 1_000_000)
        await #expect(throws: AdServeError(.invalidInput, "JSON nested deeper than \(limit) levels")) {
            try await FuzzTargets.advertisers.accept(Array(unclosed.utf8))
        }
        let inString = #"{"name":"\""# + String(repeating: "[", count: 150) + #""}"#
        try await FuzzTargets.advertisers.accept(Array(inString.utf8))
    }

    @Test func aBodyOfExactlyTheLimitIsReadAndOneByteMoreIsNot() async throws {
        let limit = FuzzTargets.limit
        let padding = limit - #"{"name":""}"#.utf8.count
        let atLimit = #"{"name":""# + String(repeating: "x", count: padding) + #""}"#
        #expect(atLimit.utf8.count == limit)
        let body = try await FuzzTargets.decode(CreateAdvertiserBody.self, Array(atLimit.utf8))
        #expect(body.name.utf8.count == padding)
        await #expect(throws: AdServeError(.payloadTooLarge, "request body is larger than \(limit) bytes")) {
            _ = try await FuzzTargets.decode(CreateAdvertiserBody.self, Array((atLimit + " ").utf8))
        }
    }
}

/// A token verifies only exactly as it was signed, and only under the key that signed it;
/// anything else is refused as an invalid `impression_token`.
@Suite struct TokenFuzzTests {
    static let mutatedTokens = 20_000
    static let keyPairs = 2_000
    static let now = Timestamp(milliseconds: 1_780_315_200_000)
    static let lifetime: Int64 = 3_600_000

    @Test func aChangedTokenNeverVerifiesAndIsRefusedAsAnImpressionToken() {
        let signer = TokenSigner(key: Array("a secret key of thirty-two bytes".utf8), lifetimeMilliseconds: Self.lifetime)
        var mutator = FuzzMutator(seed: 0x746F_6B65_6E73)
        var originals: [(token: ImpressionToken, text: String)] = []
        for _ in 0..<64 {
            let token = mutator.token(issuedAt: Self.now, within: Self.lifetime)
            originals.append((token: token, text: signer.sign(token)))
        }
        var changed = 0
        var failures: [String] = []
        for i in 0..<Self.mutatedTokens {
            let original = originals[i % originals.count]
            let other = originals[mutator.below(originals.count)].text
            let text = mutator.mutateToken(original.text, other: other)
            let unchanged = text.utf8.elementsEqual(original.text.utf8)
            if !unchanged { changed += 1 }
            do throws(AdServeError) {
                let verified = try signer.verify(text, now: Self.now)
                if !unchanged {
                    failures.append("a changed token verified: \(text.prefix(120))")
                } else if verified != original.token {
                    failures.append("\(original.text) verified to another token")
                }
            } catch {
                if unchanged {
                    failures.append("the token as signed was refused: \(error)")
                } else if error.code != .invalidInput || error.field != "impression_token" {
                    failures.append("\(error) — for \(text.prefix(120))")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Self.mutatedTokens): \(failures.prefix(3).joined(separator: "\n"))")
        #expect(changed > Self.mutatedTokens * 9 / 10, "only \(changed) tokens were changed")
    }

    /// Independent keys, and keys one bit apart; and a rotation's grace, to the millisecond.
    /// (Not a key and the same key with zero bytes appended: HMAC pads short keys with zeros, so
    /// those sign alike by design.)
    @Test func aTokenSignedWithOneKeyNeverVerifiesUnderAnother() {
        var mutator = FuzzMutator(seed: 0x6B65_7973)
        var failures: [String] = []
        for i in 0..<Self.keyPairs {
            let key = mutator.randomBytes(32)
            var otherKey = key
            if i % 2 == 0 {
                otherKey = mutator.randomBytes(32)
            } else {
                let bit = mutator.below(256)
                otherKey[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            }
            let signer = TokenSigner(key: key, lifetimeMilliseconds: Self.lifetime)
            let other = TokenSigner(key: otherKey, lifetimeMilliseconds: Self.lifetime)
            let token = mutator.token(issuedAt: Self.now, within: Self.lifetime)
            let text = signer.sign(token)
            do throws(AdServeError) {
                if try signer.verify(text, now: Self.now) != token { failures.append("the round trip changed \(text)") }
            } catch {
                failures.append("its own key refused \(text): \(error)")
            }
            do throws(AdServeError) {
                _ = try other.verify(text, now: Self.now)
                failures.append("another key accepted \(text)")
            } catch {
                if error.code != .invalidInput || error.field != "impression_token" { failures.append("\(error)") }
            }
            // Rotated from `key` to `otherKey` with a grace ending now: the old key's token
            // verifies until the grace ends, and not a millisecond after.
            let rotated = TokenSigner(key: otherKey, lifetimeMilliseconds: Self.lifetime, previous: (value: key, validUntil: Self.now))
            do throws(AdServeError) {
                if try rotated.verify(text, now: Self.now) != token { failures.append("within the grace, \(text) verified to another token") }
            } catch {
                failures.append("within the grace, the previous key's token was refused: \(error)")
            }
            do throws(AdServeError) {
                _ = try rotated.verify(text, now: Self.now.adding(milliseconds: 1))
                failures.append("after the grace, the previous key's token verified: \(text)")
            } catch {
                if error.code != .invalidInput || error.field != "impression_token" { failures.append("\(error)") }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Self.keyPairs): \(failures.prefix(3).joined(separator: "\n"))")
    }
}
