// One direction of a PyTorch GRU layer's recurrence as an MLX operation: the per-frame Python loop (about
// ten MLX operations per frame) becomes one primitive that steps through the frames in C++, one OpenBLAS
// matrix-vector product per frame.
#pragma once

#include "mlx/mlx.h"
#include "mlx/primitives.h"

namespace rvc {

namespace mx = mlx::core;

// input_gates (B, T, 3H) = W_i x + b_i for every frame (gate order r, z, n), weight_hh (3H, H),
// bias_hh (3H,) -> (B, T, H), from h = 0, with PyTorch's formula:
//   r = sigmoid(x_r + W_hr h + b_hr), z = sigmoid(x_z + W_hz h + b_hz),
//   n = tanh(x_n + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
// `reverse` steps from the last frame to the first; outputs stay in frame order.
mx::array gru_recurrence(const mx::array& input_gates, const mx::array& weight_hh, const mx::array& bias_hh,
                         bool reverse, mx::StreamOrDevice stream = {});

class GruRecurrence : public mx::UnaryPrimitive {
 public:
  GruRecurrence(mx::Stream stream, bool reverse) : mx::UnaryPrimitive(stream), reverse_(reverse) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override;
  const char* name() const override {
    return "RvcGruRecurrence";
  }

 private:
  bool reverse_;
};

}  // namespace rvc
