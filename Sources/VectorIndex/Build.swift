import Synchronization

extension HNSWIndex {
    /// Builds an index over `vectors`: `vectors.count / dimension` vectors given row after row,
    /// whose ids are their row numbers. Node 0 is inserted first; the rest are inserted in id
    /// order by one thread (a deterministic graph for a given seed), or taken in id order from a
    /// shared counter by `threads` threads that insert concurrently (see `HNSWIndex` for the
    /// locking). The calling thread is one of the workers.
    public static func build(
        vectors: [Float], dimension: Int, m: Int = 16, efConstruction: Int = 200, threads: Int = 1, seed: UInt64 = 1
    ) -> HNSWIndex {
        precondition(dimension > 0 && vectors.count % dimension == 0, "vectors.count must be a multiple of dimension")
        let count = vectors.count / dimension
        precondition(count <= Int(Int32.max), "at most Int32.max vectors")
        let index = HNSWIndex(dimension: dimension, m: m, efConstruction: efConstruction, seed: seed, capacity: count)
        vectors.withUnsafeBufferPointer { all in
            for row in 0..<count {
                index.vectors.append(UnsafeBufferPointer(rebasing: all[(row * dimension)..<((row + 1) * dimension)]))
                index.graph.append(level: drawLevel(node: row, seed: seed, m: m))
            }
        }
        guard count > 0 else { return index }

        let threads = max(1, min(threads, count / 64 + 1))
        if threads == 1 {
            let scratch = InsertionScratch(m: m, efConstruction: index.efConstruction)
            for node in 0..<count { index.insert(Int32(node), scratch: scratch, locks: nil) }
            return index
        }
        index.insert(0, scratch: InsertionScratch(m: m, efConstruction: index.efConstruction), locks: nil)
        let locks = NodeLocks(count: count)
        let cursor = BuildCursor(next: 1)
        runWorkers(threads) { _ in
            let scratch = InsertionScratch(m: m, efConstruction: index.efConstruction)
            while true {
                let node = cursor.take()
                if node >= count { break }
                index.insert(Int32(node), scratch: scratch, locks: locks)
            }
        }
        return index
    }
}

/// The next node id to insert, shared by the builder threads.
private final class BuildCursor: Sendable {
    private let next: Atomic<Int>

    init(next: Int) {
        self.next = Atomic(next)
    }

    /// Claims the next id.
    func take() -> Int {
        next.wrappingAdd(1, ordering: .relaxed).oldValue
    }
}
