/// Reads the Criteo Display Advertising Challenge layout: label, 13 integer and 26 categorical
/// columns, tab separated, empty = missing. Integers become log-scale bucket features, so one
/// hashed feature code path serves both kinds. Malformed rows are counted, not fatal.
public struct CriteoReader: Sendable {
    public let hasher: FeatureHasher
    public init(hasher: FeatureHasher) { self.hasher = hasher }

    public struct Parsed: Sendable {
        public var features: [SparseFeatures] = []
        public var labels: [Bool] = []
        public var malformed = 0

        public init(features: [SparseFeatures] = [], labels: [Bool] = [], malformed: Int = 0) {
            self.features = features
            self.labels = labels
            self.malformed = malformed
        }
    }

    public func parse(_ text: String) -> Parsed {
        var parsed = Parsed()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let (x, y) = example(line) {
                parsed.features.append(x)
                parsed.labels.append(y)
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
        for j in 1...13 where !columns[j].isEmpty {
            guard let v = Int(columns[j]) else { return nil }
            // log2 buckets: 0, 1, 2-3, 4-7, …; negatives have their own bucket.
            let bucket = v < 0 ? -1 : v == 0 ? 0 : Int.bitWidth - v.leadingZeroBitCount
            x.append(hasher.index(namespace: "I\(j)", value: String(bucket)))
        }
        for j in 14...39 where !columns[j].isEmpty {
            x.append(hasher.index(namespace: "C\(j - 13)", value: String(columns[j])))
        }
        return (x, label == 1)
    }
}
