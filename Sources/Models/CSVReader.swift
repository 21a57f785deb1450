import Domain
import Foundation

/// Reads a comma-separated log with a header row (RFC 4180 quoting: a field in double quotes may
/// hold commas, and `""` inside it is one quote). The label column is 0/1 or true/false; every
/// other column is a categorical feature, namespaced by its column name, unless it is listed as
/// numeric: integers then fall into the same buckets as `CriteoReader`'s integer columns (up to 2
/// as themselves, else ⌊ln(v)²⌋), and other numbers into a signed bucket ⌊log2(|v| + 1)⌋. An
/// empty field is missing.
///
/// Records are lines (LF or CRLF); a quoted field cannot span lines. Rows with the wrong number of
/// fields, a bad label, an unreadable number or broken quoting are counted as malformed, not fatal.
public struct CSVReader: Sendable {
    public let hasher: FeatureHasher
    public let labelColumn: String
    public let numericColumns: Set<String>

    public init(hasher: FeatureHasher, labelColumn: String = "label", numericColumns: Set<String> = []) {
        self.hasher = hasher
        self.labelColumn = labelColumn
        self.numericColumns = numericColumns
    }

    /// Parses a whole file. Throws when the header has no column named `labelColumn`, or lacks a
    /// column listed as numeric; a text with no header at all gives no examples.
    public func parse(_ text: String) throws(AdServeError) -> LabeledExamples {
        var result = LabeledExamples()
        var lines = Self.lines(text).makeIterator()
        guard let headerLine = lines.next() else { return result }
        guard var header = Self.fields(headerLine) else {
            throw AdServeError.invalid("csv", "the header row has broken quoting")
        }
        // A UTF-8 byte order mark is not part of the first column's name.
        if let first = header.first, first.hasPrefix("\u{FEFF}") { header[0] = String(first.dropFirst()) }
        guard let labelIndex = header.firstIndex(of: labelColumn) else {
            throw AdServeError.invalid("label", "no column named \"\(labelColumn)\" in the header (columns: \(header.joined(separator: ", ")))")
        }
        if let missing = numericColumns.sorted().first(where: { !header.contains($0) }) {
            throw AdServeError.invalid("numeric", "no column named \"\(missing)\" in the header")
        }
        let columns = header.indices.filter { $0 != labelIndex }.map { index in
            Column(index: index, name: header[index], numeric: numericColumns.contains(header[index]))
        }
        while let line = lines.next() {
            if let (x, y) = example(line, columnCount: header.count, labelIndex: labelIndex, columns: columns) {
                result.append(x, label: y)
            } else {
                result.malformed += 1
            }
        }
        return result
    }

    private struct Column {
        var index: Int
        var name: String
        var numeric: Bool
    }

    private func example(_ line: Substring, columnCount: Int, labelIndex: Int, columns: [Column]) -> (SparseFeatures, Bool)? {
        guard let fields = Self.fields(line), fields.count == columnCount,
              let label = Self.label(fields[labelIndex]) else { return nil }
        var x = SparseFeatures()
        x.append(hasher.biasIndex)
        for column in columns {
            let field = fields[column.index]
            if column.numeric {
                let trimmed = field.trimmingSpaces
                guard !trimmed.isEmpty else { continue }
                guard let bucket = Self.numericBucket(trimmed) else { return nil }
                x.append(hasher.index(namespace: column.name, value: bucket))
            } else if !field.isEmpty {
                x.append(hasher.index(namespace: column.name, value: field))
            }
        }
        return (x, label)
    }

    static func label(_ field: String) -> Bool? {
        switch field.trimmingSpaces.lowercased() {
        case "1", "true": true
        case "0", "false": false
        default: nil
        }
    }

    /// The bucket of a numeric field as a feature value: an integer's bucket as `CriteoReader`
    /// makes it ("-1", "2", "b5"), or for any other number "f", its sign and ⌊log2(|v| + 1)⌋
    /// ("f+0", "f-2"), so the two kinds never share a bucket. Nil for text that is not a number.
    static func numericBucket(_ text: String) -> String? {
        if let v = Int(text) { return CriteoReader.integerBucket(v) }
        guard let v = Double(text), v.isFinite else { return nil }
        if let integer = Int(exactly: v) { return CriteoReader.integerBucket(integer) }
        let bucket = Int(log2(abs(v) + 1).rounded(.down))
        return (v < 0 ? "f-" : "f+") + String(bucket)
    }

    /// The text's non-empty lines, without their line ends (LF or CRLF).
    static func lines(_ text: String) -> [Substring] {
        let newline = UInt8(ascii: "\n")
        let carriageReturn = UInt8(ascii: "\r")
        var lines: [Substring] = []
        for raw in text.utf8.split(separator: newline, omittingEmptySubsequences: true) {
            var line = raw
            if line.last == carriageReturn { line = line.dropLast() }
            if !line.isEmpty { lines.append(Substring(line)) }
        }
        return lines
    }

    /// Splits one record into fields, undoing RFC 4180 quoting; nil when the quoting is broken
    /// (an unclosed quote, or text after a closing quote).
    public static func fields(_ line: Substring) -> [String]? {
        let quote = UInt8(ascii: "\"")
        let comma = UInt8(ascii: ",")
        var fields: [String] = []
        var field: [UInt8] = []
        var bytes = line.utf8.makeIterator()
        var atFieldStart = true
        var inQuotes = false
        var afterClosingQuote = false
        while let byte = bytes.next() {
            if inQuotes {
                if byte == quote {
                    inQuotes = false
                    afterClosingQuote = true
                } else {
                    field.append(byte)
                }
            } else if byte == comma {
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                atFieldStart = true
                afterClosingQuote = false
            } else if byte == quote && afterClosingQuote {
                // `""` inside a quoted field: one literal quote, still inside the quotes.
                field.append(quote)
                inQuotes = true
                afterClosingQuote = false
            } else if byte == quote && atFieldStart {
                inQuotes = true
                atFieldStart = false
            } else if afterClosingQuote {
                return nil
            } else {
                // A quote inside an unquoted field is taken literally.
                field.append(byte)
                atFieldStart = false
            }
        }
        guard !inQuotes else { return nil }
        fields.append(String(decoding: field, as: UTF8.self))
        return fields
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
