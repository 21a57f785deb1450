import ArgumentParser
import Domain
import Foundation
import VectorIndex

struct ANNBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ann-bench",
        abstract: "Build the ANN index over a base set and measure recall@k, queries/s and latency over a sweep of search efforts (build with -c release).",
        discussion: """
            Files are raw little-endian: --base N×D float32, --queries Q×D float32, --truth Q×k int32 exact neighbour \
            ids by inner product, best first (scripts/ann/make_data.py writes all three; scripts/ann/reference.py runs \
            hnswlib and faiss on the same files). Queries run one per call on one thread.
            """
    )

    @Option(help: "Base vectors, N×D float32.") var base: String
    @Option(help: "Query vectors, Q×D float32.") var queries: String
    @Option(help: "Exact neighbour ids, Q×k int32.") var truth: String
    @Option(help: "Neighbours per query (recall@k).") var k = 100
    @Option(help: "Floats per vector.") var dim: Int
    @Option(help: "Graph degree (level 0 keeps 2·M).") var m = 16
    @Option(help: "Search effort while building.") var efConstruction = 200
    @Option(help: "Search efforts to sweep, comma-separated.") var ef = "100,150,200,300"
    @Option(help: "Threads that build the index.") var threads = 2
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard dim > 0 else { throw ValidationError("--dim must be positive") }
        guard k > 0 else { throw ValidationError("--k must be positive") }
        guard (2...1024).contains(m) else { throw ValidationError("--m must be in 2...1024") }
        guard efConstruction > 0, threads > 0 else { throw ValidationError("--ef-construction and --threads must be positive") }
        guard !efs.isEmpty, efs.allSatisfy({ $0 > 0 }) else { throw ValidationError("--ef must list positive integers, e.g. 100,150,200") }
    }

    var efs: [Int] { ef.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        let inputs = try Self.checked { () throws(RawMatrixFile.Failure) in
            try IndexBenchmark.Inputs.read(base: base, queries: queries, truth: truth, dimension: dim, k: k)
        }
        var benchmark = IndexBenchmark(dimension: dim, k: k)
        benchmark.m = m
        benchmark.efConstruction = efConstruction
        benchmark.efs = efs
        benchmark.buildThreads = threads
        let progress = Progress()
        benchmark.progress = { progress.step($0) }
        progress.step("read \(inputs.baseRows) base vectors and \(inputs.queryRows) queries of \(dim) dimensions")
        let report = benchmark.run(base: inputs.base, queries: inputs.queries, truth: inputs.truth, truthColumns: k)
        if json {
            print(try JSONFormat.string(report))
            return
        }
        print("HNSW over \(report.count) × \(dim), M \(m), ef_construction \(efConstruction): built in \(TextTable.fixed(report.build_s, 1)) s on \(threads) thread(s), \(TextTable.fixed(report.memory_mb, 1)) MB")
        print("\(report.queries) queries, one per call, one thread, recall@\(k):")
        let rows = report.results.map { r in
            [String(r.params.ef), TextTable.fixed(r.recall, 4), TextTable.fixed(r.qps, 0), TextTable.fixed(r.p50_us, 1), TextTable.fixed(r.p99_us, 1)]
        }
        print(TextTable.render([["ef", "recall", "queries/s", "p50 µs", "p99 µs"]] + rows))
    }

    static func checked<T>(_ read: () throws(RawMatrixFile.Failure) -> T) throws -> T {
        do { return try read() } catch { throw ValidationError(error.description) }
    }
}
