#include "blas_jobs.h"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "worker_pool.h"

namespace rvc {

void run_blas_jobs(const OpenBlas& blas, int64_t count, int threads,
                   const std::function<void(int64_t, std::vector<float>&)>& job) {
  if (threads <= 1 || count <= 1) {
    thread_local std::vector<float> scratch;
    for (int64_t index = 0; index < count; ++index) {
      job(index, scratch);
    }
    return;
  }
  // OpenBLAS's thread count is process-wide and two threaded sgemm calls at once would queue on its one
  // thread server, so it is lowered for the duration and put back; the mutex keeps two callers from
  // interleaving that.
  static std::mutex blas_threads_mutex;
  std::lock_guard<std::mutex> lock(blas_threads_mutex);
  const int workers = static_cast<int>(std::min<int64_t>(threads, count));
  const int saved_blas_threads = blas.get_num_threads();
  blas.set_num_threads(1);
  std::atomic<int64_t> next{0};
  try {
    run_on_workers(workers, [&](int) {
      thread_local std::vector<float> scratch;
      for (int64_t index = next++; index < count; index = next++) {
        job(index, scratch);
      }
    });
  } catch (...) {
    blas.set_num_threads(saved_blas_threads);
    throw;
  }
  blas.set_num_threads(saved_blas_threads);
}

}  // namespace rvc
