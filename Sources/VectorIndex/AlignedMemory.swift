#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Allocation of the index's flat arrays: 64-byte aligned (a cache line, and enough for
/// `SIMD8<Float>` loads), and on Linux large arrays are 2 MiB aligned and advised to use
/// transparent huge pages, which cuts TLB misses when a search hops across a big index.
/// Whoever holds a pointer from `allocate` owns it and gives it back with `free`.
enum AlignedMemory {
    private static let hugePageBytes = 2 << 20

    /// Uninitialized memory for `count` values of `T` (trivial types only).
    static func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        let huge = bytes >= hugePageBytes
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, huge ? hugePageBytes : 64, bytes) == 0, let raw else {
            fatalError("VectorIndex: cannot allocate \(bytes) bytes")
        }
        #if os(Linux)
        if huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        #endif
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// Zero-filled memory for `count` values of `T` (trivial types only).
    static func allocateZeroed<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let pointer = allocate(type, count: count)
        UnsafeMutableRawPointer(pointer).initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1) * MemoryLayout<T>.stride)
        return pointer
    }

    /// A larger allocation holding the first `keeping` values of `old`, which is freed.
    static func grow<T>(_ old: UnsafeMutablePointer<T>, keeping: Int, to count: Int) -> UnsafeMutablePointer<T> {
        let new = allocate(T.self, count: count)
        new.initialize(from: old, count: keeping)
        free(old)
        return new
    }

    static func free<T>(_ pointer: UnsafeMutablePointer<T>) {
        #if canImport(Glibc)
        Glibc.free(pointer)
        #else
        Darwin.free(pointer)
        #endif
    }
}
