#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
#endif

/// Row-major single-precision matrix products: Accelerate on Apple platforms, OpenBLAS elsewhere.
///
/// Callers parallelise over independent products (`ParallelWork`), so OpenBLAS is kept to one thread:
/// its own pool would compete with ours for the same cores and, on a busy machine, stall small products
/// waiting for threads to wake.
enum BLAS {
    #if !canImport(Accelerate)
    private static let singleThreaded: Void = openblas_set_num_threads(1)
    #endif

    /// `C = alpha * op(A) * op(B) + beta * C` for row-major matrices, `op(A)` m x k and `op(B)` k x n.
    ///
    /// `lda`, `ldb`, `ldc` are the row strides of the matrices as stored (before `op`), so a column slice of a
    /// wider channels-last matrix is passed as a pointer to its first column and the full row width.
    @inline(__always)
    static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // BLAS leaves C alone for k == 0 only when beta == 1; make the empty product explicit.
            for row in 0..<m {
                let line = c + row * ldc
                for column in 0..<n { line[column] = beta == 0 ? 0 : line[column] * beta }
            }
            return
        }
        #if !canImport(Accelerate)
        _ = singleThreaded
        #endif
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc)
        )
    }
}
