/// `adserve ann-bench`: builds an `HNSWIndex` over a base set, then for each search effort
/// runs every query once, one query per call on one thread, and measures recall@k against
/// exact neighbours, queries per second and the latency percentiles.
public struct IndexBenchmark: Sendable {
    public var dimension: Int
    public var k: Int
    public var m = 16
    public var efConstruction = 200
    /// Search efforts to sweep (`ef`; below `k` the search explores `k`).
    public var efs = [100, 150, 200, 300]
    /// Threads that build the index (queries always run on one).
    public var buildThreads = 2
    /// Told each phase as it starts and each search effort's result as it comes (`ann-bench`
    /// writes them to stderr).
    public var progress: @Sendable (String) -> Void = { _ in }
    public var seed: UInt64 = 1

    public init(dimension: Int, k: Int) {
        self.dimension = dimension
        self.k = k
    }

    public struct Params: Codable, Sendable, Equatable {
        public var m: Int
        public var ef_construction: Int
        public var ef: Int
    }

    public struct Result: Codable, Sendable {
        public var params: Params
        public var recall: Double
        public var qps: Double
        public var p50_us: Double
        public var p99_us: Double
    }

    public struct Report: Codable, Sendable {
        public var index = "hnsw"
        public var count: Int
        public var queries: Int
        public var dimension: Int
        public var k: Int
        public var build_threads: Int
        public var build_s: Double
        public var memory_mb: Double
        public var results: [Result]
    }

    /// The three files of a run, read and checked against each other: the base holds at least
    /// `k` vectors, the truth `k` ids in range for each query. A failure names the file at fault.
    public struct Inputs: Sendable {
        public let base: [Float]
        public let baseRows: Int
        public let queries: [Float]
        public let queryRows: Int
        public let truth: [Int32]

        public static func read(base: String, queries: String, truth: String, dimension: Int, k: Int) throws(RawMatrixFile.Failure) -> Inputs {
            let (baseValues, baseRows) = try RawMatrixFile.floats(base, dimension: dimension)
            let (queryValues, queryRows) = try RawMatrixFile.floats(queries, dimension: dimension)
            guard baseRows >= k else { throw RawMatrixFile.Failure(file: base, reason: "\(baseRows) vectors, fewer than --k \(k)") }
            let (truthValues, truthRows) = try RawMatrixFile.ids(truth, columns: k, bound: baseRows)
            guard truthRows == queryRows else {
                throw RawMatrixFile.Failure(
                    file: truth,
                    reason: "\(truthRows) rows of \(k) ids, but \(queries) holds \(queryRows) queries: the files must come from the same set (or --k is wrong)")
            }
            return Inputs(base: baseValues, baseRows: baseRows, queries: queryValues, queryRows: queryRows, truth: truthValues)
        }
    }

    /// `base` and `queries` are rows of `dimension` floats; `truth` holds, per query, the ids
    /// of its `truthColumns` (≥ `k`) exact neighbours by inner product, best first.
    public func run(base: [Float], queries: [Float], truth: [Int32], truthColumns: Int) -> Report {
        precondition(truthColumns >= k && k > 0, "the truth must hold at least k ids per query")
        let clock = ContinuousClock()
        let started = clock.now
        progress("building the index over \(base.count / max(dimension, 1)) vectors on \(buildThreads) thread(s)")
        let index = HNSWIndex.build(vectors: base, dimension: dimension, m: m, efConstruction: efConstruction, threads: buildThreads, seed: seed)
        let buildSeconds = Self.seconds(clock.now - started)
        let queryCount = queries.count / dimension
        progress("built in \((buildSeconds * 10).rounded() / 10) s; \(queryCount) queries per search effort, one thread")
        let scratch = SearchScratch()
        var latencies = [Double](repeating: 0, count: queryCount)
        var hits = [Int32](repeating: -1, count: queryCount * k)
        var results: [Result] = []
        queries.withUnsafeBufferPointer { all in
            func query(_ q: Int) -> UnsafeBufferPointer<Float> {
                UnsafeBufferPointer(rebasing: all[(q * dimension)..<((q + 1) * dimension)])
            }
            for ef in efs {
                // One query first, so the scratch has grown to this ef before timing.
                index.search(query(0), k: k, ef: ef, scratch: scratch)
                // The sweep only searches and keeps the hits; recall is counted after it.
                let sweepStart = clock.now
                for q in 0..<queryCount {
                    let t0 = clock.now
                    let n = index.search(query(q), k: k, ef: ef, scratch: scratch)
                    latencies[q] = Self.seconds(clock.now - t0) * 1e6
                    for i in 0..<k { hits[q * k + i] = i < n ? scratch.ids[i] : -1 }
                }
                let sweepSeconds = Self.seconds(clock.now - sweepStart)
                var found = 0
                for q in 0..<queryCount {
                    found += Self.overlap(hits[(q * k)..<((q + 1) * k)], truth[(q * truthColumns)..<(q * truthColumns + k)])
                }
                latencies.sort()
                results.append(Result(
                    params: Params(m: m, ef_construction: efConstruction, ef: ef),
                    recall: Double(found) / Double(queryCount * k),
                    qps: Double(queryCount) / max(sweepSeconds, 1e-9),
                    p50_us: Self.percentile(latencies, 0.50), p99_us: Self.percentile(latencies, 0.99)))
                if let last = results.last {
                    progress("ef \(ef): recall \((last.recall * 10_000).rounded() / 10_000), \(Int(last.qps)) queries/s")
                }
            }
        }
        return Report(
            count: index.count, queries: queryCount, dimension: dimension, k: k, build_threads: buildThreads, build_s: buildSeconds,
            memory_mb: Double(index.memoryBytes) / 1_048_576, results: results)
    }

    /// How many of `found` are among `truth` (k is small: a linear scan beats hashing).
    static func overlap(_ found: ArraySlice<Int32>, _ truth: ArraySlice<Int32>) -> Int {
        var hits = 0
        for id in found where id >= 0 && truth.contains(id) { hits += 1 }
        return hits
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}
