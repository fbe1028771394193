#include "worker_pool.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rvc {

namespace {

class WorkerPool {
 public:
  void run(int workers, const std::function<void(int)>& job) {
    if (workers <= 1) {
      job(0);
      return;
    }
    std::lock_guard<std::mutex> one_job_at_a_time(run_mutex_);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < workers - 1) {
        int index = static_cast<int>(threads_.size()) + 1;
        threads_.emplace_back([this, index] { serve(index); });
        threads_.back().detach();
      }
      job_ = &job;
      active_workers_ = workers;
      pending_ = workers - 1;
      failure_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    std::exception_ptr failure;
    try {
      job(0);
    } catch (...) {
      failure = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (failure == nullptr) {
      failure = failure_;
    }
    lock.unlock();
    if (failure != nullptr) {
      std::rethrow_exception(failure);
    }
  }

 private:
  void serve(int index) {
    unsigned long long seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (index >= active_workers_) {
        continue;
      }
      const std::function<void(int)>* job = job_;
      lock.unlock();
      std::exception_ptr failure;
      try {
        (*job)(index);
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      if (failure != nullptr && failure_ == nullptr) {
        failure_ = failure;
      }
      if (--pending_ == 0) {
        done_.notify_one();
      }
    }
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  int active_workers_ = 0;
  int pending_ = 0;
  unsigned long long generation_ = 0;
  std::exception_ptr failure_;
};

}  // namespace

void run_on_workers(int workers, const std::function<void(int)>& job) {
  // Never destroyed: its threads are detached and block on a condition variable until the process ends,
  // which avoids joining threads during interpreter shutdown.
  static WorkerPool* pool = new WorkerPool();
  pool->run(workers, job);
}

void run_on_ranges(int64_t count, int workers, int64_t minimum, const std::function<void(int64_t, int64_t)>& range) {
  const int64_t parts = std::clamp<int64_t>(count / std::max<int64_t>(1, minimum), 1, std::max(1, workers));
  const int64_t size = (count + parts - 1) / parts;
  run_on_workers(static_cast<int>(parts), [&](int worker) {
    const int64_t begin = std::min(count, worker * size);
    const int64_t end = std::min(count, begin + size);
    if (begin < end) {
      range(begin, end);
    }
  });
}

}  // namespace rvc
