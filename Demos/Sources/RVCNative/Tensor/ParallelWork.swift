import Dispatch
import Foundation

/// Data-parallel loops over the machine's cores.
///
/// The convolutions split their output into tiles and run the tiles here, each with a single-threaded
/// matrix product (see `BLAS`), so unfolding, products and overlap-adds all run in parallel and no two
/// thread pools compete for the cores.
enum ParallelWork {
    static var workerCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `body(worker, workers)` for worker = 0 ..< workers, concurrently.
    static func run(workers: Int, _ body: (Int, Int) -> Void) {
        if workers <= 1 {
            body(0, 1)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { body($0, workers) }
        }
    }

    /// Elements below this are not worth waking a second thread for.
    static let minimumElementsPerWorker = 1 << 16

    /// `body(range)` over disjoint ranges covering 0 ..< count, in parallel when count is large: for
    /// element-wise passes over decoder-sized buffers, which are memory-bound.
    static func forEachRange(count: Int, _ body: (Range<Int>) -> Void) {
        let workers = min(workerCount, max(1, count / minimumElementsPerWorker))
        let size = (count + workers - 1) / max(workers, 1)
        run(workers: workers) { worker, _ in
            let start = worker * size
            if start < count { body(start..<min(count, start + size)) }
        }
    }
}
