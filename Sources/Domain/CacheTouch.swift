import Synchronization

/// Plain loads that start cache misses early. A decision reads a few lines of each of its
/// ~600 candidates' ads, scattered over the heap. Read one candidate at a time, each miss waits
/// behind the reference-count updates around the candidate before it (a locked instruction
/// waits for every earlier load), so the misses queue one after another. Touched first in a
/// pass of plain loads, they overlap, and the later reads find the lines in cache.
public enum CacheTouch {
    /// One word from each 64-byte line of `bytes` bytes at `start`, XOR-ed together.
    @inline(__always)
    public static func lines(_ start: UnsafeRawPointer, bytes: Int) -> UInt64 {
        var folded: UInt64 = 0
        var offset = 0
        while offset + 8 <= bytes {
            folded ^= start.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset &+= 64
        }
        return folded
    }

    /// Keeps what a pass touched observable, so that the optimizer cannot drop its loads (a
    /// relaxed store: a plain move, once per pass).
    public static func keep(_ folded: UInt64) {
        sink.store(folded, ordering: .relaxed)
    }

    private static let sink = Atomic<UInt64>(0)
}
