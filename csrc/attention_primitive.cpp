#include "attention_primitive.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "array_access.h"
#include "blas_jobs.h"
#include "openblas.h"
#include "polynomial_activations.h"

namespace rvc {

namespace {

constexpr const char* operation = "attention";

}  // namespace

mx::array attention(const mx::array& q, const mx::array& k, const mx::array& v, int heads, int query_block,
                    mx::StreamOrDevice stream_or_device) {
  require_argument(q.ndim() == 3, operation, "q must be (batch, frames, hidden), got shape " + shape_text(q));
  require_argument(k.shape() == q.shape() && v.shape() == q.shape(), operation,
                   "q, k and v must have one shape, got " + shape_text(q) + ", " + shape_text(k) + " and " +
                       shape_text(v));
  require_argument(q.dtype() == mx::float32 && k.dtype() == mx::float32 && v.dtype() == mx::float32, operation,
                   "q, k and v must be float32");
  require_argument(heads >= 1 && q.shape(2) % heads == 0, operation,
                   "heads must divide the hidden size " + std::to_string(q.shape(2)) + ", got " +
                       std::to_string(heads));
  require_argument(query_block >= 1, operation, "query_block must be at least 1, got " + std::to_string(query_block));
  require_argument(q.shape(0) >= 1 && q.shape(1) >= 1, operation, "q must not be empty");
  mx::Stream stream = mx::to_stream(stream_or_device, mx::Device::cpu);
  require_argument(stream.device == mx::Device::cpu, operation, "runs on the CPU only; pass a CPU stream or device");
  return mx::array(q.shape(), mx::float32, std::make_shared<Attention>(stream, heads, query_block), {q, k, v});
}

void Attention::eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) {
  output.set_data(mx::allocator::malloc(output.nbytes()));
  auto& encoder = encoder_keeping(stream(), inputs, output);
  encoder.dispatch([q_array = mx::array::unsafe_weak_copy(inputs[0]), k_array = mx::array::unsafe_weak_copy(inputs[1]),
                    v_array = mx::array::unsafe_weak_copy(inputs[2]), out = output.data<float>(), heads = heads_,
                    query_block = query_block_]() {
    const int64_t batch = q_array.shape(0), frames = q_array.shape(1), hidden = q_array.shape(2);
    const int64_t dim = hidden / heads;
    std::vector<float> q_buffer, k_buffer, v_buffer;
    const float* q = row_major(q_array, q_buffer);
    const float* k = row_major(k_array, k_buffer);
    const float* v = row_major(v_array, v_buffer);
    const int64_t rows_per_block = std::min<int64_t>(query_block, frames);
    const int64_t blocks = (frames + rows_per_block - 1) / rows_per_block;
    const OpenBlas& blas = find_openblas();
    run_blas_jobs(blas, batch * heads * blocks, blas.get_num_threads(), [&](int64_t job, std::vector<float>& scores) {
      const int64_t block = job % blocks, head = (job / blocks) % heads, b = job / (blocks * heads);
      const int64_t first = block * rows_per_block;
      const int64_t rows = std::min(rows_per_block, frames - first);
      const int64_t offset = b * frames * hidden + head * dim;
      scores.resize(rows * frames);
      blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(frames),
                 static_cast<int>(dim), 1.0f, q + offset + first * hidden, static_cast<int>(hidden), k + offset,
                 static_cast<int>(hidden), 0.0f, scores.data(), static_cast<int>(frames));
      softmax_rows(scores.data(), rows, frames, frames);
      blas.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(dim),
                 static_cast<int>(frames), 1.0f, scores.data(), static_cast<int>(frames), v + offset,
                 static_cast<int>(hidden), 0.0f, out + offset + first * hidden, static_cast<int>(hidden));
    });
  });
}

void Attention::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("RvcAttention has no GPU implementation; run it on the CPU stream");
}

std::vector<mx::Shape> Attention::output_shapes(const std::vector<mx::array>& inputs) {
  return {inputs[0].shape()};
}

}  // namespace rvc
