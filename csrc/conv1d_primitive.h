// `conv1d` as an MLX operation: argument checks and the output shape at graph-building time, then a
// `Conv1d` primitive that runs the tiled kernel (conv1d_tiles.h) when MLX evaluates it on the CPU.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "mlx/mlx.h"
#include "mlx/primitives.h"

#include "conv1d_tiles.h"

namespace rvc {

namespace mx = mlx::core;

struct Conv1dOptions {
  int pad_left = 0;
  int pad_right = 0;
  int dilation = 1;
  int stride = 1;
  int groups = 1;
  std::optional<float> input_slope;
  bool has_bias = false;
  bool has_residual = false;
  Conv1dMethod method = Conv1dMethod::automatic;

  bool operator==(const Conv1dOptions&) const = default;
};

// PyTorch Conv1d on channels-last input: x (B, T, I), weight (O, K, I / groups), bias (O,) ->
// (B, T_out, O) = conv(leaky_relu(x, input_slope) or x) + bias (+ residual, shaped like the output).
// `method` is "auto", "unfolded" or "winograd" (see Conv1dMethod). Throws std::invalid_argument
// (ValueError in Python) for inputs it does not accept.
mx::array conv1d(const mx::array& x, const mx::array& weight, const std::optional<mx::array>& bias,
                 std::pair<int, int> padding, int dilation, std::optional<float> input_slope,
                 const std::optional<mx::array>& residual, const std::string& method = "auto", int stride = 1,
                 int groups = 1, mx::StreamOrDevice stream = {});

class Conv1d : public mx::UnaryPrimitive {
 public:
  Conv1d(mx::Stream stream, Conv1dOptions options) : mx::UnaryPrimitive(stream), options_(options) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override;
  const char* name() const override {
    return "RvcConv1d";
  }

 private:
  Conv1dOptions options_;
};

}  // namespace rvc
