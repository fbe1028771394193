#include "gelu_primitive.h"

#include <stdexcept>
#include <vector>

#include "array_access.h"
#include "openblas.h"
#include "polynomial_activations.h"
#include "worker_pool.h"

namespace rvc {

namespace {

// Values per worker below which splitting the work costs more than it saves.
constexpr int64_t minimum_values_per_worker = 1 << 16;

}  // namespace

mx::array gelu(const mx::array& x, mx::StreamOrDevice stream_or_device) {
  require_argument(x.dtype() == mx::float32, "gelu", "x must be float32");
  mx::Stream stream = mx::to_stream(stream_or_device, mx::Device::cpu);
  require_argument(stream.device == mx::Device::cpu, "gelu", "runs on the CPU only; pass a CPU stream or device");
  return mx::array(x.shape(), mx::float32, std::make_shared<Gelu>(stream), {x});
}

void Gelu::eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) {
  const mx::array& x = inputs[0];
  reuse_or_allocate(x, output);
  auto& encoder = encoder_keeping(stream(), inputs, output);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x), out = output.data<float>()]() {
    std::vector<float> packed;
    const float* source = row_major(x, packed);
    const int threads = find_openblas().get_num_threads();
    run_on_ranges(static_cast<int64_t>(x.size()), threads, minimum_values_per_worker, [&](int64_t begin, int64_t end) {
      gelu_floats(source + begin, end - begin, out + begin);
    });
  });
}

void Gelu::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("RvcGelu has no GPU implementation; run it on the CPU stream");
}

std::vector<mx::Shape> Gelu::output_shapes(const std::vector<mx::array>& inputs) {
  return {inputs[0].shape()};
}

}  // namespace rvc
