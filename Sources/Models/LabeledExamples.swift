/// Examples read from a log file, in file (time) order: hashed features, labels, and how many rows
/// could not be read. What every data reader (`CriteoReader`, `CSVReader`) returns.
public struct LabeledExamples: Sendable {
    public var features: [SparseFeatures]
    public var labels: [Bool]
    /// Rows that were skipped because they could not be read.
    public var malformed: Int

    public init(features: [SparseFeatures] = [], labels: [Bool] = [], malformed: Int = 0) {
        precondition(features.count == labels.count, "one label per example")
        self.features = features
        self.labels = labels
        self.malformed = malformed
    }

    public var count: Int { labels.count }
    public var isEmpty: Bool { labels.isEmpty }
    public var positives: Int { labels.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The share of positive labels (0 when empty).
    public var baseRate: Double { isEmpty ? 0 : Double(positives) / Double(count) }

    public mutating func append(_ x: SparseFeatures, label: Bool) {
        features.append(x)
        labels.append(label)
    }

    /// Splits in time order: the first `count` examples (they keep the malformed count) and the rest.
    public func split(at count: Int) -> (head: LabeledExamples, tail: LabeledExamples) {
        let cut = min(max(count, 0), self.count)
        return (
            LabeledExamples(features: Array(features[..<cut]), labels: Array(labels[..<cut]), malformed: malformed),
            LabeledExamples(features: Array(features[cut...]), labels: Array(labels[cut...]), malformed: 0)
        )
    }
}
