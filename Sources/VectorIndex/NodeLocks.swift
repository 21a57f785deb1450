import Synchronization

/// One lock per node (a 4-byte `Mutex`: an atomic word, with the kernel's futex to sleep on
/// when contended), owned by a multi-threaded `HNSWIndex.build` and dropped when it ends.
/// Holding node `i`'s lock is what entitles a builder thread to read or write any of node `i`'s
/// neighbour lists. Critical sections are a list copy or a list update (a prune at most), so
/// contention is rare; a waiter sleeps rather than spins, which matters on a busy machine where
/// the holder may be preempted.
final class NodeLocks: Sendable {
    private nonisolated(unsafe) let locks: UnsafeMutablePointer<Mutex<Void>>
    private let count: Int

    init(count: Int) {
        self.count = max(count, 1)
        locks = UnsafeMutablePointer<Mutex<Void>>.allocate(capacity: self.count)
        for i in 0..<self.count { (locks + i).initialize(to: Mutex(())) }
    }

    deinit {
        locks.deinitialize(count: count)
        locks.deallocate()
    }

    /// Runs `body` holding the lock of `node`.
    @inline(__always)
    func withLock<Result>(_ node: Int32, _ body: () -> Result) -> Result {
        locks[Int(node)].withLock { _ in body() }
    }
}

extension Optional where Wrapped == NodeLocks {
    /// Runs `body` holding the lock of `node` when there are locks (a multi-threaded build),
    /// or just runs it when there are none (a single writer).
    @inline(__always)
    func withLock<Result>(_ node: Int32, _ body: () -> Result) -> Result {
        switch self {
        case .some(let locks): locks.withLock(node, body)
        case .none: body()
        }
    }
}
