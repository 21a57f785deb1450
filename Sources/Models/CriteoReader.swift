import Foundation

/// Reads the Criteo Display Advertising Challenge layout: label, 13 integer and 26 categorical
/// columns, tab separated, empty = missing. Integers become log-scale bucket features, so one
/// hashed feature code path serves both kinds; a missing value is a value of its own ("NA"),
/// since that a field is missing says something. Malformed rows are counted, not fatal.
public struct CriteoReader: Sendable {
    public let hasher: FeatureHasher
    public init(hasher: FeatureHasher) { self.hasher = hasher }

    public func parse(_ text: String) -> LabeledExamples {
        var parsed = LabeledExamples()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let (x, y) = example(line) {
                parsed.append(x, label: y)
            } else {
                parsed.malformed += 1
            }
        }
        return parsed
    }

    public func example(_ line: Substring) -> (SparseFeatures, Bool)? {
        let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard columns.count == 40, let label = Int(columns[0]), label == 0 || label == 1 else { return nil }
        var x = SparseFeatures()
        x.append(hasher.biasIndex)
        for j in 1...13 {
            if columns[j].isEmpty {
                x.append(hasher.index(namespace: Self.integerNames[j - 1], value: "NA"))
                continue
            }
            guard let v = Int(columns[j]) else { return nil }
            x.append(hasher.index(namespace: Self.integerNames[j - 1], value: Self.integerBucket(v)))
        }
        for j in 14...39 {
            x.append(hasher.index(namespace: Self.categoryNames[j - 14], value: columns[j].isEmpty ? "NA" : String(columns[j])))
        }
        return (x, label == 1)
    }

    static let integerNames = (1...13).map { "I\($0)" }
    static let categoryNames = (1...26).map { "C\($0)" }

    /// The bucket of a count-like integer: values up to 2 are their own bucket (negatives
    /// included), larger ones share ⌊ln(v)²⌋ — finer than octaves where counts are small and
    /// common (the bucketing the shared data's reference baseline uses).
    static func integerBucket(_ v: Int) -> String {
        if v <= 2 { return String(v) }
        let l = log(Double(v))
        return "b" + String(Int((l * l).rounded(.down)))
    }
}
