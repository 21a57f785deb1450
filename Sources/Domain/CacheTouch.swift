import Synchronization

/// Plain loads that start cache misses early. A decision reads a few lines of each of its
/// ~600 candidates' ads, scattered over the heap. Read one candidate at a time, each miss waits
/// behind the reference-count updates around the candidate before it (a locked instruction
/// waits for every earlier load), so the misses queue one after another. Touched first in a
/// pass of plain loads, they overlap, and the later reads find the lines in cache.
public enum CacheTouch {
    /// Loads a word every 64 bytes from `start` and the last word of the `bytes` (so that a
    /// region that does not start on a line boundary has its last line touched too) and sums
    /// them; nothing when `bytes` is under 8.
    @inline(__always)
    public static func lines(_ start: UnsafeRawPointer, bytes: Int) -> UInt64 {
        guard bytes >= 8 else { return 0 }
        var folded = start.loadUnaligned(fromByteOffset: bytes &- 8, as: UInt64.self)
        var offset = 0
        while offset + 8 <= bytes {
            folded &+= start.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset &+= 64
        }
        return folded
    }

    /// Keeps what was touched observable, so that the optimizer cannot drop the loads: a
    /// relaxed store (a plain move, though every decision's thread stores to the same line),
    /// once per touching function.
    public static func keep(_ folded: UInt64) {
        sink.store(folded, ordering: .relaxed)
    }

    private static let sink = Atomic<UInt64>(0)
}
