#include "winograd_weight_cache.h"

#include <list>
#include <mutex>

namespace rvc {

namespace {

// Enough for every transformed weight of a full-size decoder (about 100 MB).
constexpr size_t budget_bytes = size_t(512) << 20;

struct Entry {
  WeightIdentity weight;
  std::shared_ptr<const WinogradWeights> weights;

  size_t bytes() const {
    return weights->transformed.size() * sizeof(float);
  }
};

std::mutex cache_mutex;
std::list<Entry>& entries() {
  static auto* list = new std::list<Entry>();  // most recently used first; never destroyed (see worker_pool)
  return *list;
}

}  // namespace

std::shared_ptr<const WinogradWeights> cached_winograd_weights(
    const WeightIdentity& weight, const std::function<WinogradWeights()>& make) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto& list = entries();
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->weight == weight) {
      list.splice(list.begin(), list, it);
      return list.front().weights;
    }
  }
  Entry entry{weight, std::make_shared<const WinogradWeights>(make())};
  list.push_front(std::move(entry));
  size_t total = list.front().bytes();
  for (auto it = std::next(list.begin()); it != list.end();) {
    if (total + it->bytes() > budget_bytes) {
      it = list.erase(it);
    } else {
      total += it->bytes();
      ++it;
    }
  }
  return list.front().weights;
}

void clear_winograd_weight_cache() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  entries().clear();
}

}  // namespace rvc
