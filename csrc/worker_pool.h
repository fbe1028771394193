// A few persistent threads that run one job at a time, so a convolution's tiles can run in parallel
// without starting threads on every call.
#pragma once

#include <cstdint>
#include <functional>

namespace rvc {

// Runs `job(worker)` for worker = 0 .. workers - 1 concurrently (worker 0 on the calling thread) and
// returns when all are done. Calls from different threads take turns. The first exception a worker
// throws is rethrown here.
void run_on_workers(int workers, const std::function<void(int)>& job);

// Splits [0, count) into one contiguous range per worker (at most `workers`, at least `minimum` items each)
// and runs `range(begin, end)` on each concurrently.
void run_on_ranges(int64_t count, int workers, int64_t minimum, const std::function<void(int64_t, int64_t)>& range);

}  // namespace rvc
