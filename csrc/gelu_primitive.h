// Exact GELU as an MLX operation, vectorised and on every worker: MLX's CPU erf is a scalar library call
// on one thread, and the content encoder applies GELU to about 150 M values on 30 s of audio.
#pragma once

#include "mlx/mlx.h"
#include "mlx/primitives.h"

namespace rvc {

namespace mx = mlx::core;

// x / 2 (1 + erf(x / sqrt 2)) of every value of the float32 array x (polynomial_activations.h), as
// `nn.GELU()` in PyTorch (not the tanh form). The result takes over x's buffer when nothing else holds it.
mx::array gelu(const mx::array& x, mx::StreamOrDevice stream = {});

class Gelu : public mx::UnaryPrimitive {
 public:
  explicit Gelu(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive&) const override {
    return true;
  }
  const char* name() const override {
    return "RvcGelu";
  }
};

}  // namespace rvc
