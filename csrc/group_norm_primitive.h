// fairseq's `Fp32GroupNorm(C, C)` (one group per channel) on channels-last frames as an MLX operation: each
// channel normalised over the whole time axis, the statistics summed in double on every worker.
#pragma once

#include "mlx/mlx.h"
#include "mlx/primitives.h"

namespace rvc {

namespace mx = mlx::core;

// x (B, T, C), weight and bias (C,) -> (B, T, C): each (item, channel) normalised over its T frames
// (biased variance) and then scaled and shifted per channel, as PyTorch applies it: y = x * s + t with
// s = weight / sqrt(variance + eps), t = bias - mean * s. The result takes over x's buffer when nothing
// else holds it.
mx::array group_norm_over_time(const mx::array& x, const mx::array& weight, const mx::array& bias, float eps,
                               mx::StreamOrDevice stream = {});

class GroupNormOverTime : public mx::UnaryPrimitive {
 public:
  GroupNormOverTime(mx::Stream stream, float eps) : mx::UnaryPrimitive(stream), eps_(eps) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override {
    return eps_ == static_cast<const GroupNormOverTime&>(other).eps_;
  }
  const char* name() const override {
    return "RvcGroupNormOverTime";
  }

 private:
  float eps_;
};

}  // namespace rvc
