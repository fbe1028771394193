// Transformed Winograd weights kept per weight array, so a model's layers transform their weights once
// rather than on every call (for a short input the transform costs more than the convolution).
#pragma once

#include <functional>
#include <memory>

#include "mlx/array.h"

#include "conv1d_winograd.h"

namespace rvc {

namespace mx = mlx::core;

// Which weight: its buffer and the view of it. Holding the buffer keeps it alive and unchanged: MLX arrays
// are immutable and a buffer referenced elsewhere is never donated to another op's output.
struct WeightIdentity {
  std::shared_ptr<mx::array::Data> buffer;
  int64_t offset = 0;
  mx::Shape shape;
  mx::Strides strides;

  explicit WeightIdentity(const mx::array& weight)
      : buffer(weight.data_shared_ptr()), offset(weight.offset()), shape(weight.shape()),
        strides(weight.strides()) {}
  bool operator==(const WeightIdentity&) const = default;
};

// The entry for `weight`, made with `make` on a miss. Least recently used entries go beyond a total size
// budget.
std::shared_ptr<const WinogradWeights> cached_winograd_weights(
    const WeightIdentity& weight, const std::function<WinogradWeights()>& make);

// Drops every entry (and the references to weight buffers).
void clear_winograd_weight_cache();

}  // namespace rvc
