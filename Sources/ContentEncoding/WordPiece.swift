import Domain
import Foundation

/// BERT's uncased tokenizer, as Hugging Face's `BertTokenizer` and the `tokenizers` BERT
/// normalizer and pre-tokenizer compute it: clean the text (drop NUL, U+FFFD and control
/// characters; any whitespace becomes a space), put spaces around CJK ideographs, lower-case,
/// strip accents (NFD, then drop combining marks), split on whitespace and punctuation, then
/// split each word into the longest vocabulary pieces from the left (`##` marks a piece inside
/// a word); a word with a piece the vocabulary lacks, or longer than 100 characters, is [UNK].
struct WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    let unknown: Int32
    let classification: Int32
    let separator: Int32
    static let maxCharactersPerWord = 100

    /// `vocab.txt`: one piece per line, its id the line number.
    init(vocabularyFile path: String) throws(AdServeError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AdServeError(.storage, "cannot read \(path)") }
        var vocabulary: [String: Int32] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            vocabulary[String(line)] = Int32(i)
        }
        try self.init(vocabulary: vocabulary)
    }

    init(vocabulary: [String: Int32]) throws(AdServeError) {
        guard let unknown = vocabulary["[UNK]"], let cls = vocabulary["[CLS]"], let sep = vocabulary["[SEP]"] else {
            throw AdServeError(.storage, "the vocabulary lacks [UNK], [CLS] or [SEP]")
        }
        self.vocabulary = vocabulary
        self.unknown = unknown
        self.classification = cls
        self.separator = sep
    }

    /// `[CLS] pieces… [SEP]`, at most `maxTokens` in all (pieces past the limit are dropped).
    func encode(_ text: String, maxTokens: Int) -> [Int32] {
        var ids: [Int32] = [classification]
        let room = max(0, maxTokens - 2)
        outer: for word in Self.words(text) {
            for piece in pieces(word) {
                if ids.count - 1 == room { break outer }
                ids.append(piece)
            }
        }
        ids.append(separator)
        return ids
    }

    /// The normalized words of `text`: cleaned, CJK spaced, lower-cased, accents stripped, and
    /// split on whitespace and punctuation (each punctuation character a word of its own).
    static func words(_ text: String) -> [String] {
        var spaced = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v == 0 || v == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                spaced.append(" ")
            } else if isCJK(v) {
                spaced.append(" ")
                spaced.append(scalar)
                spaced.append(" ")
            } else {
                spaced.append(scalar)
            }
        }
        // Lower-case, then decompose and drop combining marks (what strip_accents does).
        let lowered = String(spaced).lowercased().decomposedStringWithCanonicalMapping
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty { words.append(String(current)) }
            current = String.UnicodeScalarView()
        }
        for scalar in lowered.unicodeScalars {
            if scalar.properties.generalCategory == .nonspacingMark { continue }
            if isWhitespace(scalar) {
                flush()
            } else if isPunctuation(scalar) {
                flush()
                words.append(String(scalar))
            } else {
                current.append(scalar)
            }
        }
        flush()
        return words
    }

    /// Greedy longest-match-first pieces of one word, or [UNK].
    func pieces(_ word: String) -> [Int32] {
        let scalars = Array(word.unicodeScalars)
        guard scalars.count <= Self.maxCharactersPerWord else { return [unknown] }
        var ids: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [unknown] }
            ids.append(found)
            start = end
        }
        return ids
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII symbols count as punctuation too (`$`, `^`, `` ` ``), as in BERT.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
            .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not Hiragana, Katakana or Hangul).
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
