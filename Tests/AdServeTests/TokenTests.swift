import Domain
import Serving
import Testing

@Suite struct TokenTests {
    let signer = TokenSigner(key: Array("a secret key of thirty-two bytes".utf8), lifetimeMilliseconds: 3_600_000)
    let now = Timestamp(milliseconds: 1_780_000_000_000)

    func token() throws -> ImpressionToken {
        ImpressionToken(
            decisionID: "d1", afterPost: 3, userID: try UserID(validating: "alice"), adID: AdID(5), campaignID: CampaignID(2),
            objective: .traffic, priceMicros: 250_000, issuedAt: now)
    }

    @Test func signedTokenVerifiesToWhatWasSigned() throws {
        let original = try token()
        #expect(try signer.verify(signer.sign(original), now: now.adding(milliseconds: 1000)) == original)
    }

    @Test func alteredPayloadIsRejected() throws {
        var forged = try token()
        forged.priceMicros = 1
        let genuine = signer.sign(try token())
        let forgedPayload = signer.sign(forged).split(separator: ".")[0]
        let spliced = forgedPayload + "." + genuine.split(separator: ".")[1]
        #expect(throws: AdServeError.self) { try signer.verify(String(spliced), now: now) }
    }

    @Test func tokenFromAnotherKeyIsRejected() throws {
        let other = TokenSigner(key: Array("another key entirely, not ours!!".utf8))
        #expect(throws: AdServeError.self) { try signer.verify(other.sign(try token()), now: now) }
    }

    @Test(arguments: ["", ".", "abc", "a.b.c", "!!!.???", String(repeating: "A", count: 5000)])
    func garbageIsRejected(text: String) {
        #expect(throws: AdServeError.self) { try signer.verify(text, now: now) }
    }

    /// A token only a key holder could sign, issued at a time outside 1970–9999, is refused as
    /// invalid instead of overflowing the lifetime arithmetic (it once stopped the process).
    @Test(arguments: [Int64.min, -1, Timestamp.latest.milliseconds + 1, Int64.max])
    func aSignedTokenIssuedOutsideTheCalendarIsRefused(issued: Int64) throws {
        var odd = try token()
        odd.issuedAt = Timestamp(milliseconds: issued)
        #expect(throws: AdServeError(.invalidInput, "impression token is invalid", field: "impression_token")) {
            try signer.verify(signer.sign(odd), now: now)
        }
    }

    @Test func flippedMacBitIsRejected() throws {
        var text = Array(signer.sign(try token()))
        let last = text.count - 1
        text[last] = text[last] == "A" ? "B" : "A"
        #expect(throws: AdServeError.self) { try signer.verify(String(text), now: now) }
    }

    @Test func expiredTokenIsRejectedAsExpired() throws {
        let text = signer.sign(try token())
        #expect(try signer.verify(text, now: now.adding(milliseconds: 3_600_000)).adID == AdID(5))
        #expect(throws: AdServeError(.expired, "impression token has expired", field: "impression_token")) {
            try signer.verify(text, now: now.adding(milliseconds: 3_600_001))
        }
    }
}
