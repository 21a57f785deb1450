/// Everything a search needs besides the index, kept from call to call so that a search does
/// not allocate once the scratch has grown to fit the index, `ef` and `k` it is used with:
/// the visited marks, the candidate and result heaps, the neighbours being scored, the padded
/// query, and the last search's hits, which the caller reads from `ids` and `scores`.
///
/// Not thread-safe: each thread that searches needs its own (a task may carry one across
/// threads, but two searches must never use one at the same time). One scratch works with any
/// index; using it with a bigger one grows it once. Sendable so that a pool can hand one to
/// whichever thread needs it next: the pool, not the type, keeps two searches from sharing one.
public final class SearchScratch: @unchecked Sendable {
    /// Node `i` has been visited by the current search iff bit `i % 64` of `visited[i / 64]`
    /// is set: one bit a node, so the marks of a million nodes (128 KB) stay in the core's own
    /// cache while the search's rows stream past. A search logs the nodes it marks
    /// (`logMarks`), and the next one clears only their words — or every word, once it has
    /// marked more nodes than there are words (the log then stops: it never outgrows them).
    private(set) var visited: UnsafeMutablePointer<UInt64>
    private var visitedWords = 0
    /// The nodes marked since the marks were last cleared (room for `visitedWords`); the first
    /// `markedCount` are valid, and `markedCount == visitedWords` means "clear every word".
    private var marked: UnsafeMutablePointer<Int32>
    private var markedCount = 0

    /// Nodes reached but not yet expanded, best on top.
    var candidates: ScoreHeap<BestOnTop>
    /// The best `ef` nodes found that pass the filter, worst on top.
    var results: ScoreHeap<WorstOnTop>

    /// The not-yet-visited neighbours of the node being expanded, and their scores.
    private(set) var fresh: UnsafeMutablePointer<Int32>
    private(set) var freshScores: UnsafeMutablePointer<Float>
    /// The filter's verdicts on the neighbours that could enter the results.
    private(set) var allowed: UnsafeMutablePointer<Bool>
    private var freshCapacity = 0

    /// Where a search leaves the XOR of the words it touched to start loading rows early, so
    /// that the compiler keeps those loads. Never read.
    var touched: UInt32 = 0

    /// The query copied and zero-padded to the index's row stride.
    private(set) var query: UnsafeMutablePointer<Float>
    private var queryCapacity = 0

    private var hitIDs: UnsafeMutablePointer<Int32>
    private var hitScores: UnsafeMutablePointer<Float>
    private var hitCapacity = 0

    /// Hits of the last search: at most `k`, fewer when fewer nodes exist or pass the filter.
    public private(set) var count = 0

    /// Ids of the last search's hits, best first. Valid until the next search with this scratch.
    public var ids: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: hitIDs, count: count) }

    /// Inner products of the last search's hits with the query, in the order of `ids`.
    public var scores: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: hitScores, count: count) }

    /// An empty scratch; the first search sizes it.
    public init() {
        visited = AlignedMemory.allocateZeroed(UInt64.self, count: 1)
        marked = AlignedMemory.allocate(Int32.self, count: 1)
        candidates = ScoreHeap(capacity: 256)
        results = ScoreHeap(capacity: 256)
        fresh = AlignedMemory.allocate(Int32.self, count: 1)
        freshScores = AlignedMemory.allocate(Float.self, count: 1)
        allowed = AlignedMemory.allocate(Bool.self, count: 1)
        query = AlignedMemory.allocate(Float.self, count: 1)
        hitIDs = AlignedMemory.allocate(Int32.self, count: 1)
        hitScores = AlignedMemory.allocate(Float.self, count: 1)
    }

    deinit {
        AlignedMemory.free(visited)
        AlignedMemory.free(marked)
        candidates.release()
        results.release()
        AlignedMemory.free(fresh)
        AlignedMemory.free(freshScores)
        AlignedMemory.free(allowed)
        AlignedMemory.free(query)
        AlignedMemory.free(hitIDs)
        AlignedMemory.free(hitScores)
    }

    /// Grows whatever is too small for a search over `nodes` nodes with lists of up to
    /// `maxDegree` neighbours, rows of `stride` floats, a result set of `ef` and `k` hits.
    /// Allocates only when something grows.
    func prepare(nodes: Int, maxDegree: Int, stride: Int, ef: Int, k: Int) {
        let words = (nodes + 63) / 64
        if words > visitedWords {
            let capacity = max(words, visitedWords * 3 / 2)
            AlignedMemory.free(visited)
            visited = AlignedMemory.allocateZeroed(UInt64.self, count: capacity)
            AlignedMemory.free(marked)
            marked = AlignedMemory.allocate(Int32.self, count: capacity)
            visitedWords = capacity
            markedCount = 0
        }
        if maxDegree > freshCapacity {
            AlignedMemory.free(fresh)
            AlignedMemory.free(freshScores)
            AlignedMemory.free(allowed)
            fresh = AlignedMemory.allocate(Int32.self, count: maxDegree)
            freshScores = AlignedMemory.allocate(Float.self, count: maxDegree)
            allowed = AlignedMemory.allocate(Bool.self, count: maxDegree)
            freshCapacity = maxDegree
        }
        if stride > queryCapacity {
            AlignedMemory.free(query)
            query = AlignedMemory.allocate(Float.self, count: stride)
            queryCapacity = stride
        }
        if k > hitCapacity {
            AlignedMemory.free(hitIDs)
            AlignedMemory.free(hitScores)
            hitIDs = AlignedMemory.allocate(Int32.self, count: k)
            hitScores = AlignedMemory.allocate(Float.self, count: k)
            hitCapacity = k
        }
        results.reserveCapacity(ef)
        candidates.reserveCapacity(ef)
    }

    /// Clears the last search's visited marks: the words of the nodes it logged, or all of
    /// them when that is less work.
    func clearVisited() {
        if markedCount >= visitedWords {
            visited.update(repeating: 0, count: visitedWords)
        } else {
            for j in 0..<markedCount { visited[Int(marked[j]) &>> 6] = 0 }
        }
        markedCount = 0
    }

    /// Logs `count` nodes just marked, so that the next search clears only their words; past
    /// `visitedWords` nodes it stops logging, and the next search clears every word.
    @inline(__always)
    func logMarks(_ nodes: UnsafePointer<Int32>, count: Int) {
        guard markedCount &+ count <= visitedWords else {
            markedCount = visitedWords
            return
        }
        (marked + markedCount).update(from: nodes, count: count)
        markedCount &+= count
    }

    /// Moves the best `k` of `results` into the hits, best first, and empties `results`.
    func takeHits(k: Int) {
        while results.count > k { _ = results.pop() }
        count = results.count
        var slot = count
        while slot > 0 {
            slot -= 1
            let hit = results.pop()
            hitIDs[slot] = hit.id
            hitScores[slot] = hit.score
        }
    }

    /// Forgets the last search's hits (a search that found nothing).
    func clearHits() {
        count = 0
    }
}
