import Domain
import Foundation
import Synchronization
import Testing
import VectorIndex

/// Unit-length vectors from a mixture of Gaussian clusters, like content embeddings; seeded.
private func clusteredVectors(count: Int, dimension: Int, clusters: Int = 40, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    func gaussian() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng)
        let u2 = Double.random(in: 0..<1, using: &rng)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    let centres = (0..<(clusters * dimension)).map { _ in gaussian() }
    var out: [Float] = []
    out.reserveCapacity(count * dimension)
    for _ in 0..<count {
        let c = Int.random(in: 0..<clusters, using: &rng)
        var v = (0..<dimension).map { centres[c * dimension + $0] + 0.6 * gaussian() }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] /= norm }
        out += v
    }
    return out
}

/// The exact top `k` ids by inner product among those `allowed`.
private func exactTop(_ base: [Float], dimension: Int, query: ArraySlice<Float>, k: Int, allowed: (Int) -> Bool = { _ in true }) -> [Int32] {
    let q = Array(query)
    var scored: [(Int32, Float)] = []
    for row in 0..<(base.count / dimension) where allowed(row) {
        var dot: Float = 0
        for d in 0..<dimension { dot += base[row * dimension + d] * q[d] }
        scored.append((Int32(row), dot))
    }
    return scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
}

@Suite struct VectorIndexTests {
    static let dimension = 13  // not a multiple of the SIMD width
    static let base = clusteredVectors(count: 3_000, dimension: dimension, seed: 1)
    static let queries = clusteredVectors(count: 60, dimension: dimension, seed: 2)

    func recall(_ index: HNSWIndex, k: Int, ef: Int, allowed: ((Int) -> Bool)? = nil) -> Double {
        let d = Self.dimension
        let scratch = SearchScratch()
        var hits = 0
        for q in 0..<(Self.queries.count / d) {
            let query = Self.queries[(q * d)..<((q + 1) * d)]
            let n: Int
            if let allowed {
                n = index.search(Array(query), k: k, ef: ef, scratch: scratch) { allowed(Int($0)) }
                #expect(scratch.ids.prefix(n).allSatisfy { allowed(Int($0)) })
            } else {
                n = index.search(Array(query), k: k, ef: ef, scratch: scratch)
            }
            let truth = Set(exactTop(Self.base, dimension: d, query: query, k: k, allowed: allowed ?? { _ in true }))
            hits += scratch.ids.prefix(n).filter { truth.contains($0) }.count
            // Best first.
            #expect(zip(scratch.scores.prefix(n), scratch.scores.prefix(n).dropFirst()).allSatisfy { $0 >= $1 })
        }
        return Double(hits) / Double(Self.queries.count / d * k)
    }

    @Test func findsTheExactNeighboursAtAGenerousEffort() {
        let index = HNSWIndex.build(vectors: Self.base, dimension: Self.dimension, m: 12, efConstruction: 100, threads: 1, seed: 3)
        #expect(index.count == 3_000)
        #expect(recall(index, k: 10, ef: 200) >= 0.99)
        // Less effort, less recall — but still a useful index.
        #expect(recall(index, k: 10, ef: 10) >= 0.8)
    }

    @Test func buildingOnTwoThreadsGivesAnIndexAsGood() {
        let index = HNSWIndex.build(vectors: Self.base, dimension: Self.dimension, m: 12, efConstruction: 100, threads: 2, seed: 3)
        #expect(index.count == 3_000)
        #expect(recall(index, k: 10, ef: 200) >= 0.99)
    }

    @Test func aFilterKeepsOnlyAllowedHitsAndStillFindsThem() {
        let index = HNSWIndex.build(vectors: Self.base, dimension: Self.dimension, m: 12, efConstruction: 100, threads: 1, seed: 3)
        #expect(recall(index, k: 10, ef: 200, allowed: { $0 % 3 == 0 }) >= 0.97)
    }

    /// A search forgets the visited marks of the one before, whichever index and effort that
    /// one had: after a search on a large index, small searches clear only the words they
    /// marked, large ones clear every word, and either way the answer is a fresh scratch's.
    @Test func aScratchUsedAgainAnswersAsAFreshOne() {
        let d = Self.dimension
        let small = HNSWIndex.build(vectors: Self.base, dimension: d, m: 12, efConstruction: 100, threads: 1, seed: 3)
        let largeBase = clusteredVectors(count: 20_000, dimension: 4, seed: 5)
        let large = HNSWIndex.build(vectors: largeBase, dimension: 4, m: 4, efConstruction: 16, threads: 1, seed: 3)
        let largeQueries = clusteredVectors(count: 20, dimension: 4, seed: 6)
        let reused = SearchScratch()
        var compared = 0
        for q in 0..<20 {
            for ef in [1, 10, 300] {
                let searches: [(HNSWIndex, [Float])] = [
                    (large, Array(largeQueries[(q * 4)..<((q + 1) * 4)])), (small, Array(Self.queries[(q * d)..<((q + 1) * d)])),
                ]
                for (index, query) in searches {
                    let fresh = SearchScratch()
                    let expected = index.search(query, k: min(ef, 10), ef: ef, scratch: fresh)
                    let found = index.search(query, k: min(ef, 10), ef: ef, scratch: reused)
                    #expect(found == expected)
                    #expect(Array(reused.ids) == Array(fresh.ids))
                    compared += expected
                }
            }
        }
        #expect(compared == 20 * 2 * (1 + 10 + 10))
    }

    @Test func addedVectorsAreFoundAndSmallIndexesAnswerWhatTheyHave() {
        let index = HNSWIndex(dimension: 4, m: 4, efConstruction: 16, seed: 1)
        let scratch = SearchScratch()
        #expect(index.search([1, 0, 0, 0], k: 5, ef: 10, scratch: scratch) == 0)
        index.add([0, 1, 0, 0])
        index.add([1, 0, 0, 0])
        index.add([0.6, 0.8, 0, 0])
        #expect(index.search([1, 0, 0, 0], k: 5, ef: 10, scratch: scratch) == 3)
        #expect(Array(scratch.ids) == [1, 2, 0])
    }

    @Test func rawFilesRoundTripAndBadOnesNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ann-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("base.f32").path
        try RawMatrixFile.write([1, 2, 3, 4, 5, 6] as [Float], to: good)
        let read = try RawMatrixFile.floats(good, dimension: 3)
        #expect(read.rows == 2 && read.values == [1, 2, 3, 4, 5, 6])

        #expect(throws: RawMatrixFile.Failure.self) { try RawMatrixFile.floats(good, dimension: 4) }
        do { _ = try RawMatrixFile.floats(good, dimension: 4) } catch { #expect(error.file == good && error.reason.contains("whole number")) }

        let nan = dir.appendingPathComponent("nan.f32").path
        try RawMatrixFile.write([1, .nan, 3] as [Float], to: nan)
        do { _ = try RawMatrixFile.floats(nan, dimension: 3); Issue.record("NaN accepted") } catch { #expect(error.file == nan && error.reason.contains("not finite")) }

        let ids = dir.appendingPathComponent("truth.i32").path
        try RawMatrixFile.write([0, 1, 7] as [Int32], to: ids)
        #expect(try RawMatrixFile.ids(ids, columns: 3, bound: 8).values == [0, 1, 7])
        do { _ = try RawMatrixFile.ids(ids, columns: 3, bound: 5); Issue.record("id out of range accepted") } catch { #expect(error.file == ids && error.reason.contains("outside")) }
        do { _ = try RawMatrixFile.floats(dir.appendingPathComponent("missing").path, dimension: 3); Issue.record("missing file read") } catch { #expect(error.reason.contains("cannot be read")) }
    }

    /// `ann-bench`'s files are checked against each other, each failure naming the file at
    /// fault: a truth file with a row per query too few, a base smaller than k, an infinite value.
    @Test func benchmarkInputsThatDoNotMatchNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ann-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try RawMatrixFile.write((0..<12).map(Float.init), to: path("base.f32"))  // 6 vectors of 2
        try RawMatrixFile.write([1, 0, 0, 1, 1, 1] as [Float], to: path("queries.f32"))  // 3 queries
        try RawMatrixFile.write([0, 1, 2, 3, 4, 5] as [Int32], to: path("truth.i32"))  // 3 rows of 2
        try RawMatrixFile.write([0, 1, 2, 3] as [Int32], to: path("short.i32"))  // 2 rows of 2
        try RawMatrixFile.write([1, 0, .infinity, 1] as [Float], to: path("inf.f32"))
        func failure(base: String = "base.f32", queries: String = "queries.f32", truth: String = "truth.i32", k: Int = 2) -> RawMatrixFile.Failure? {
            do {
                _ = try IndexBenchmark.Inputs.read(base: path(base), queries: path(queries), truth: path(truth), dimension: 2, k: k)
                return nil
            } catch { return error }
        }
        let inputs = try IndexBenchmark.Inputs.read(base: path("base.f32"), queries: path("queries.f32"), truth: path("truth.i32"), dimension: 2, k: 2)
        #expect(inputs.baseRows == 6 && inputs.queryRows == 3 && inputs.truth == [0, 1, 2, 3, 4, 5])
        let short = failure(truth: "short.i32")
        #expect(short?.file == path("short.i32") && short?.reason.contains("holds 3 queries") == true)
        let small = failure(truth: "base.f32", k: 7)
        #expect(small?.file == path("base.f32") && small?.reason.contains("fewer than --k 7") == true)
        let infinite = failure(queries: "inf.f32")
        #expect(infinite?.file == path("inf.f32") && infinite?.reason.contains("not finite") == true)
    }

    /// `ann-bench --json` gives the keys the issue names, at the top and in each result.
    @Test func benchmarkJSONHasTheNamedKeys() throws {
        var bench = IndexBenchmark(dimension: Self.dimension, k: 5)
        bench.efs = [20]
        bench.buildThreads = 1
        let d = Self.dimension
        let queries = Array(Self.queries[0..<(4 * d)])
        var truth: [Int32] = []
        for q in 0..<4 { truth += exactTop(Self.base, dimension: d, query: queries[(q * d)..<((q + 1) * d)], k: 5) }
        let report = bench.run(base: Self.base, queries: queries, truth: truth, truthColumns: 5)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(JSONFormat.string(report).utf8)) as? [String: Any])
        for key in ["build_s", "memory_mb", "results"] { #expect(object[key] != nil, "\(key)") }
        #expect((object["memory_mb"] as? Double ?? 0) > 0)
        let result = try #require((object["results"] as? [[String: Any]])?.first)
        for key in ["params", "recall", "qps", "p50_us", "p99_us"] { #expect(result[key] != nil, "\(key)") }
        #expect((result["params"] as? [String: Any])?["ef"] as? Int == 20)
    }

    @Test func theBenchmarkMeasuresRecallAgainstTheTruthItIsGiven() {
        let d = Self.dimension
        let k = 10
        var truth: [Int32] = []
        for q in 0..<(Self.queries.count / d) { truth += exactTop(Self.base, dimension: d, query: Self.queries[(q * d)..<((q + 1) * d)], k: k) }
        var bench = IndexBenchmark(dimension: d, k: k)
        bench.m = 12
        bench.efConstruction = 100
        bench.efs = [10, 200]
        bench.buildThreads = 1
        let report = bench.run(base: Self.base, queries: Self.queries, truth: truth, truthColumns: k)
        #expect(report.count == 3_000 && report.queries == 60 && report.results.count == 2)
        #expect(report.results[1].recall >= 0.99)
        #expect(report.results.allSatisfy { $0.qps > 0 && $0.p50_us <= $0.p99_us })
        // A wrong truth is measured as such, not trusted.
        let shifted = truth.map { ($0 + 1) % 3_000 }
        #expect(bench.run(base: Self.base, queries: Self.queries, truth: shifted, truthColumns: k).results[1].recall < 0.5)
    }
}

@Suite struct LiveVectorIndexTests {
    /// What the writing and searching tasks share.
    final class Shared: Sendable {
        let removed = Mutex<Set<Int64>>([])
        let violations = Mutex(0)
        let writing = Mutex(true)
        /// Searches made, and of them those made after the first write.
        let searches = Mutex((all: 0, duringWrites: 0))
        let lastWritten = Mutex<Int64?>(nil)
        /// Searches for the key written last before they began, and how many missed it.
        let checks = Mutex((made: 0, missed: 0))
    }

    static let dimension = 16
    static let vectors = clusteredVectors(count: 2_400, dimension: dimension, seed: 5)
    static func vector(_ i: Int) -> [Float] { Array(vectors[(i * dimension)..<((i + 1) * dimension)]) }

    @Test func aNewVectorIsFoundAtOnceAndARemovedOneNeverAgain() {
        let index = LiveVectorIndex(dimension: Self.dimension, m: 8, efConstruction: 64)
        for i in 0..<1_000 { index.upsert(Int64(i), Self.vector(i)) }
        #expect(index.rebuild())
        #expect(index.snapshot.count == 1_000 && index.snapshot.freshCount == 0)
        let scratch = SearchScratch()
        // Unit vectors: each is its own best match.
        index.upsert(5_000, Self.vector(1_500))
        #expect(index.search(Self.vector(1_500), k: 3, ef: 50, scratch: scratch).first?.key == 5_000)
        #expect(index.search(Self.vector(7), k: 3, ef: 50, scratch: scratch).first?.key == 7)
        index.remove(7)
        #expect(!index.search(Self.vector(7), k: 50, ef: 100, scratch: scratch).contains { $0.key == 7 })
        // Replaced: the key answers with its new vector only.
        index.upsert(8, Self.vector(1_600))
        #expect(index.search(Self.vector(1_600), k: 3, ef: 50, scratch: scratch).first?.key == 8)
        #expect(index.search(Self.vector(8), k: 50, ef: 100, scratch: scratch).allSatisfy { $0.key != 8 || $0.score < 0.999 })
        // The caller's filter applies to the graph and the fresh pool alike.
        #expect(index.search(Self.vector(1_500), k: 10, ef: 50, scratch: scratch) { $0 != 5_000 }.allSatisfy { $0.key != 5_000 })
        #expect(index.rebuild())
        #expect(index.snapshot.count == 1_000 && index.snapshot.freshCount == 0)
        #expect(index.search(Self.vector(1_500), k: 3, ef: 50, scratch: scratch).first?.key == 5_000)
        #expect(!index.search(Self.vector(7), k: 50, ef: 100, scratch: scratch).contains { $0.key == 7 })
    }

    /// A filter asked a batch of keys at a time (as the decision path asks it): batches of
    /// several keys do come, a refused or removed key never comes back, and the hits are the
    /// exact filtered top k but for what the graph's approximation misses.
    @Test func aBatchFilterKeepsOnlyWhatItAdmits() {
        let index = LiveVectorIndex(dimension: Self.dimension, m: 8, efConstruction: 64)
        for i in 0..<1_000 { index.upsert(Int64(i), Self.vector(i)) }
        #expect(index.rebuild())
        for i in 1_000..<1_040 { index.upsert(Int64(i), Self.vector(i)) }  // the fresh pool
        index.remove(4)
        let visible = (0..<1_040).filter { $0 != 4 }
        let scratch = SearchScratch()
        var largestBatch = 0
        var found = 0
        var wanted = 0
        for q in stride(from: 0, to: 2_400, by: 61) {
            let query = Self.vector(q)
            var hits: [LiveVectorIndex.Hit] = []
            query.withUnsafeBufferPointer { query in
                index.search(query, k: 20, ef: 80, scratch: scratch, into: &hits) { keys, admitted in
                    largestBatch = max(largestBatch, keys.count)
                    for j in keys.indices { admitted[j] = keys[j] % 3 != 0 }
                }
            }
            #expect(hits.count == 20 && hits.allSatisfy { $0.key % 3 != 0 && $0.key != 4 })
            let exact = visible.filter { $0 % 3 != 0 }
                .map { (key: Int64($0), score: zip(query, Self.vector($0)).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
                .sorted { $0.score > $1.score }.prefix(20).map(\.key)
            found += Set(exact).intersection(hits.map(\.key)).count
            wanted += exact.count
        }
        #expect(largestBatch > 1)
        #expect(Double(found) / Double(wanted) >= 0.9)
    }

    /// Searches from several tasks while one task writes and rebuilds: the searches run while
    /// the writes do (they are counted), no search ever returns a key removed before it began,
    /// a key written before a search began is found by it, and nothing written is lost by the
    /// rebuilds.
    @Test func writesAndRebuildsWhileSearching() async {
        let index = LiveVectorIndex(dimension: Self.dimension, m: 8, efConstruction: 64)
        for i in 0..<1_000 { index.upsert(Int64(i), Self.vector(i)) }
        index.rebuild()
        let shared = Shared()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Not before every searcher is searching.
                while shared.searches.withLock({ $0.all }) < 3 { await Task.yield() }
                for i in 0..<400 {
                    index.upsert(Int64(1_000 + i), Self.vector(1_000 + i))
                    shared.lastWritten.withLock { $0 = Int64(1_000 + i) }
                    index.remove(Int64(2 * i))
                    shared.removed.withLock { _ = $0.insert(Int64(2 * i)) }
                    if i % 100 == 50 { index.rebuild(threads: 1) }
                    await Task.yield()
                }
                shared.writing.withLock { $0 = false }
            }
            for t in 0..<3 {
                group.addTask {
                    let scratch = SearchScratch()
                    var q = t
                    while shared.writing.withLock({ $0 }) {
                        let written = shared.lastWritten.withLock { $0 }
                        let gone = shared.removed.withLock { $0 }
                        let hits = index.search(Self.vector(q % 2_400), k: 20, ef: 40, scratch: scratch)
                        if hits.contains(where: { gone.contains($0.key) }) { shared.violations.withLock { $0 += 1 } }
                        if let written {
                            let found = index.search(Self.vector(Int(written)), k: 5, ef: 40, scratch: scratch).contains { $0.key == written }
                            shared.checks.withLock {
                                $0.made += 1
                                if !found { $0.missed += 1 }
                            }
                        }
                        shared.searches.withLock {
                            $0.all += 1
                            if written != nil { $0.duringWrites += 1 }
                        }
                        q += 7
                        await Task.yield()
                    }
                }
            }
        }
        #expect(shared.searches.withLock { $0.duringWrites } > 0)
        let (made, missed) = shared.checks.withLock { $0 }
        #expect(made > 0 && missed * 100 <= made, "\(missed) of \(made) just-written keys not found")
        #expect(shared.violations.withLock { $0 } == 0)
        index.rebuild()
        #expect(index.snapshot.count == 1_000)  // 1,000 + 400 added − 400 removed
        let scratch = SearchScratch()
        for i in stride(from: 1_000, to: 1_400, by: 37) {
            #expect(index.search(Self.vector(i), k: 1, ef: 64, scratch: scratch).first?.key == Int64(i))
        }
    }
}
