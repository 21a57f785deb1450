import Foundation

/// OpenBLAS, loaded when the process first needs it (`libopenblas.so.0`, Debian's
/// `libopenblas0`): its `cblas_sgemm` runs the encoders' matrix products on runtime-dispatched
/// AVX2/AVX-512 kernels with FMA. Loaded, not linked, so AdServe builds and runs where it is
/// missing; the encoders then use their own SIMD loops (`MatrixKernel.swift`).
enum BLAS {
    typealias SGEMM = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias SetThreads = @convention(c) (Int32) -> Void

    static let rowMajor: Int32 = 101
    static let noTranspose: Int32 = 111
    static let transpose: Int32 = 112

    /// `cblas_sgemm`, or nil where no OpenBLAS can be loaded. One thread: the server runs
    /// requests concurrently itself.
    static let sgemm: SGEMM? = {
        for name in ["libopenblas.so.0", "libopenblas.so"] {
            guard let library = dlopen(name, RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(library, "cblas_sgemm") else { continue }
            if let threads = dlsym(library, "openblas_set_num_threads") { unsafeBitCast(threads, to: SetThreads.self)(1) }
            return unsafeBitCast(symbol, to: SGEMM.self)
        }
        return nil
    }()

    static var isAvailable: Bool { sgemm != nil }

    /// C = alpha · op(A) · op(B) + beta · C, row-major; `transposeB` multiplies by Bᵀ.
    static func multiply(
        m: Int, n: Int, k: Int, alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard let sgemm else { preconditionFailure("OpenBLAS is not loaded; use MatrixKernel.swift") }
        sgemm(
            rowMajor, noTranspose, transposeB ? transpose : noTranspose, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta,
            c, Int32(ldc))
    }
}
