import Domain
import Testing

/// Text is what it claims: bounded in characters and in bytes, free of control characters.
@Suite struct TextLimitTests {
    @Test func aFewCharactersThatAreManyBytesAreRefused() {
        // One character (a base letter with 300 combining marks) but over 600 bytes.
        let heavy = "e" + String(repeating: "\u{0301}", count: 300)
        #expect(heavy.count == 1)
        #expect(throws: AdServeError.self) { try Limits.checkText(heavy, field: "company", characters: 100, required: true, multiline: false) }
        #expect(throws: Never.self) { try Limits.checkText("Café 東京 🎉", field: "company", characters: 100, required: true, multiline: false) }
    }

    @Test func newlinesAndTabsOnlyInLongText() throws {
        try Limits.checkText("line one\n\tline two", field: "caption", characters: 100, required: false, multiline: true)
        #expect(throws: AdServeError.invalid("name", "must not contain control characters (found U+A)")) {
            try Limits.checkText("a\nb", field: "name", characters: 100, required: true, multiline: false)
        }
    }
}
