// Multi-head self-attention's core, softmax(q k^T) v per head, as an MLX operation that never holds more
// than a block of queries' scores: each (item, head, block of queries) is one job of two single-threaded
// sgemm calls and a row softmax in cache-resident scratch, the jobs spread over the workers. One layer's
// probabilities for every head at once would take 500 MB at T = 3300 frames (60 s of audio).
#pragma once

#include "mlx/mlx.h"
#include "mlx/primitives.h"

namespace rvc {

namespace mx = mlx::core;

// q, k, v (B, T, H) with the heads side by side along H (head h is channels h * H / heads ..< (h + 1) H /
// heads, the layout of the projections' output), q already scaled -> (B, T, H) in the same layout:
// out[b, t, head] = softmax_s(q[b, t, head] . k[b, s, head]) v[b, s, head], the softmax in float32 with the
// row's maximum subtracted first (polynomial_activations.h). Queries are taken `query_block` at a time.
mx::array attention(const mx::array& q, const mx::array& k, const mx::array& v, int heads, int query_block = 128,
                    mx::StreamOrDevice stream = {});

class Attention : public mx::UnaryPrimitive {
 public:
  Attention(mx::Stream stream, int heads, int query_block)
      : mx::UnaryPrimitive(stream), heads_(heads), query_block_(query_block) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& output) override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override;
  bool is_equivalent(const mx::Primitive& other) const override {
    const auto& that = static_cast<const Attention&>(other);
    return heads_ == that.heads_ && query_block_ == that.query_block_;
  }
  const char* name() const override {
    return "RvcAttention";
  }

 private:
  int heads_;
  int query_block_;
};

}  // namespace rvc
