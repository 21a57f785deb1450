@testable import API
import Domain
import Foundation
import Hummingbird
import Testing

/// The decision route writes its answer by hand; the bytes must be the shared encoder's.
@Suite struct DecisionResponseTests {
    static func slot(_ text: String, id: Int64, explored: Bool, format: AdFormat, urls: [String]) -> DecisionPayload.AdSlot {
        DecisionPayload.AdSlot(
            afterPost: Int(id & 0xFFFF), adId: id, campaignId: 0 &- id, advertiserId: id / 3, format: format, caption: text, mediaUrls: urls,
            company: String(text.reversed()), product: text + "/p", impressionToken: "MXx\(id).sig-_", explored: explored)
    }

    static func expectSameBytes(_ payload: DecisionPayload) throws {
        let encoded = Array(try JSON.encoder.encode(payload))
        let written = Array(payload.json().readableBytesView)
        #expect(written == encoded, "\(String(decoding: written, as: UTF8.self)) against \(String(decoding: encoded, as: UTF8.self))")
    }

    @Test func decisionAnswersAreWhatTheSharedEncoderWrites() throws {
        // Every ASCII character (controls, quote, backslash, slash, DEL) and some that are not.
        var ascii = ""
        for byte in UInt8(0)...UInt8(0x7F) { ascii.unicodeScalars.append(Unicode.Scalar(byte)) }
        let odd = ["", "é€😀 naïve", "\u{2028}\u{2029}\u{FEFF}\u{200B}", "e\u{301}", "\"quoted\" \\ back\\slash", "https://cdn.example/a b?x=1&y=\"2\""]
        try Self.expectSameBytes(DecisionPayload(decisionId: "d0", ads: []))
        try Self.expectSameBytes(DecisionPayload(decisionId: ascii, ads: [
            Self.slot(ascii, id: Int64.max, explored: true, format: .video, urls: [ascii, ""]),
            Self.slot("", id: Int64.min + 1, explored: false, format: .image, urls: []),
        ]))
        try Self.expectSameBytes(DecisionPayload(decisionId: "fc91a01fc6f789371", ads: odd.enumerated().map { i, text in
            Self.slot(text, id: Int64(i), explored: i % 2 == 0, format: i % 3 == 0 ? .image : .video, urls: odd)
        }))
        // Seeded random text from a pool of characters that need escaping and ones that do not.
        let pool = Array("ab/\\\"\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F} é€😀\u{2028}")
        var rng = SplitMix64(seed: 0xDEC1_5104)
        func text() -> String { String((0..<Int.random(in: 0...12, using: &rng)).map { _ in pool.randomElement(using: &rng)! }) }
        for round in 0..<300 {
            let ads = (0..<Int.random(in: 0...5, using: &rng)).map { _ in
                Self.slot(
                    text(), id: Int64.random(in: Int64.min...Int64.max, using: &rng), explored: Bool.random(using: &rng),
                    format: AdFormat.allCases.randomElement(using: &rng)!, urls: (0..<Int.random(in: 0...3, using: &rng)).map { _ in text() })
            }
            try Self.expectSameBytes(DecisionPayload(decisionId: "\(round)" + text(), ads: ads))
        }
    }
}
