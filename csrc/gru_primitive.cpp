#include "gru_primitive.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "array_access.h"
#include "openblas.h"

namespace rvc {

namespace {

void require(bool condition, const std::string& message) {
  require_argument(condition, "gru_recurrence", message);
}

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}

}  // namespace

mx::array gru_recurrence(const mx::array& input_gates, const mx::array& weight_hh, const mx::array& bias_hh,
                         bool reverse, mx::StreamOrDevice stream_or_device) {
  require(input_gates.ndim() == 3 && input_gates.shape(2) % 3 == 0 && input_gates.shape(2) > 0,
          "input_gates must be (batch, frames, 3 * hidden)");
  const int hidden = input_gates.shape(2) / 3;
  require(weight_hh.ndim() == 2 && weight_hh.shape(0) == 3 * hidden && weight_hh.shape(1) == hidden,
          "weight_hh must be (3 * hidden, hidden) = (" + std::to_string(3 * hidden) + ", " +
              std::to_string(hidden) + ")");
  require(bias_hh.ndim() == 1 && bias_hh.shape(0) == 3 * hidden,
          "bias_hh must be (" + std::to_string(3 * hidden) + ",)");
  require(input_gates.dtype() == mx::float32 && weight_hh.dtype() == mx::float32 && bias_hh.dtype() == mx::float32,
          "every input must be float32");
  require(input_gates.shape(0) >= 1 && input_gates.shape(1) >= 1, "input_gates must not be empty");
  mx::Stream stream = mx::to_stream(stream_or_device, mx::Device::cpu);
  require(stream.device == mx::Device::cpu, "runs on the CPU only; pass a CPU stream or device");
  const mx::Shape out_shape{input_gates.shape(0), input_gates.shape(1), hidden};
  return mx::array(out_shape, mx::float32, std::make_shared<GruRecurrence>(stream, reverse),
                   {input_gates, weight_hh, bias_hh});
}

void GruRecurrence::eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) {
  output.set_data(mx::allocator::malloc(output.nbytes()));
  auto& encoder = encoder_keeping(stream(), inputs, output);
  encoder.dispatch([gates_array = mx::array::unsafe_weak_copy(inputs[0]),
                    weight_array = mx::array::unsafe_weak_copy(inputs[1]),
                    bias_array = mx::array::unsafe_weak_copy(inputs[2]), out = output.data<float>(),
                    reverse = reverse_]() {
    const int64_t batch = gates_array.shape(0), frames = gates_array.shape(1);
    const int hidden = gates_array.shape(2) / 3;
    std::vector<float> gates_buffer, weight_buffer, bias_buffer;
    const float* gates = row_major(gates_array, gates_buffer);
    const float* weight = row_major(weight_array, weight_buffer);
    const float* bias = row_major(bias_array, bias_buffer);
    const OpenBlas& blas = find_openblas();
    std::vector<float> h(hidden), hidden_gates(3 * hidden);
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(h.begin(), h.end(), 0.0f);
      for (int64_t step = 0; step < frames; ++step) {
        const int64_t t = reverse ? frames - 1 - step : step;
        // hidden_gates = W_hh h + b_hh: a (3H x H) by (H x 1) product.
        std::copy(bias, bias + 3 * hidden, hidden_gates.begin());
        blas.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 3 * hidden, 1, hidden, 1.0f, weight, hidden,
                   h.data(), 1, 1.0f, hidden_gates.data(), 1);
        const float* x = gates + (b * frames + t) * 3 * hidden;
        float* y = out + (b * frames + t) * hidden;
        for (int j = 0; j < hidden; ++j) {
          const float r = sigmoid(x[j] + hidden_gates[j]);
          const float z = sigmoid(x[hidden + j] + hidden_gates[hidden + j]);
          const float n = std::tanh(x[2 * hidden + j] + r * hidden_gates[2 * hidden + j]);
          h[j] = (1.0f - z) * n + z * h[j];
          y[j] = h[j];
        }
      }
    }
  });
}

void GruRecurrence::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("RvcGruRecurrence has no GPU implementation; run it on the CPU stream");
}

std::vector<mx::Shape> GruRecurrence::output_shapes(const std::vector<mx::array>& inputs) {
  return {{inputs[0].shape(0), inputs[0].shape(1), inputs[0].shape(2) / 3}};
}

bool GruRecurrence::is_equivalent(const mx::Primitive& other) const {
  return reverse_ == static_cast<const GruRecurrence&>(other).reverse_;
}

}  // namespace rvc
