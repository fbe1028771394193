#include "group_norm_primitive.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "array_access.h"
#include "openblas.h"
#include "worker_pool.h"

namespace rvc {

namespace {

constexpr const char* operation = "group_norm_over_time";
// Frames per worker below which splitting the work costs more than it saves.
constexpr int64_t minimum_frames_per_worker = 256;

// sums[c] += x[t][c] and squares[c] += x[t][c]^2 over `frames` rows of `channels` values, in double.
__attribute__((target_clones("avx512f", "avx2", "default")))
void accumulate_moments(const float* x, int64_t frames, int64_t channels, double* sums, double* squares) {
  for (int64_t t = 0; t < frames; ++t) {
    const float* row = x + t * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const double value = row[c];
      sums[c] += value;
      squares[c] += value * value;
    }
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void scale_and_shift(const float* x, int64_t frames, int64_t channels, const float* scales, const float* shifts,
                     float* y) {
  for (int64_t t = 0; t < frames; ++t) {
    for (int64_t c = 0; c < channels; ++c) {
      y[t * channels + c] = x[t * channels + c] * scales[c] + shifts[c];
    }
  }
}

}  // namespace

mx::array group_norm_over_time(const mx::array& x, const mx::array& weight, const mx::array& bias, float eps,
                               mx::StreamOrDevice stream_or_device) {
  require_argument(x.ndim() == 3, operation, "x must be (batch, frames, channels), got shape " + shape_text(x));
  const int channels = x.shape(2);
  require_argument(weight.ndim() == 1 && weight.shape(0) == channels && bias.ndim() == 1 && bias.shape(0) == channels,
                   operation, "weight and bias must be (" + std::to_string(channels) + ",), got " +
                                  shape_text(weight) + " and " + shape_text(bias));
  require_argument(x.dtype() == mx::float32 && weight.dtype() == mx::float32 && bias.dtype() == mx::float32,
                   operation, "every input must be float32");
  require_argument(x.shape(1) >= 1, operation, "x has no frames");
  mx::Stream stream = mx::to_stream(stream_or_device, mx::Device::cpu);
  require_argument(stream.device == mx::Device::cpu, operation, "runs on the CPU only; pass a CPU stream or device");
  return mx::array(x.shape(), mx::float32, std::make_shared<GroupNormOverTime>(stream, eps), {x, weight, bias});
}

void GroupNormOverTime::eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) {
  const mx::array& x = inputs[0];
  reuse_or_allocate(x, output);
  auto& encoder = encoder_keeping(stream(), inputs, output);
  encoder.dispatch([x = mx::array::unsafe_weak_copy(x), weight_array = mx::array::unsafe_weak_copy(inputs[1]),
                    bias_array = mx::array::unsafe_weak_copy(inputs[2]), out = output.data<float>(), eps = eps_]() {
    const int64_t batch = x.shape(0), frames = x.shape(1), channels = x.shape(2);
    std::vector<float> packed, weight_buffer, bias_buffer;
    const float* source = row_major(x, packed);
    const float* weight = row_major(weight_array, weight_buffer);
    const float* bias = row_major(bias_array, bias_buffer);
    const int threads = find_openblas().get_num_threads();
    const int64_t parts = std::clamp<int64_t>(frames / minimum_frames_per_worker, 1, threads);
    const int64_t part_frames = (frames + parts - 1) / parts;
    std::vector<double> sums(parts * channels), squares(parts * channels);
    std::vector<float> scales(channels), shifts(channels);
    for (int64_t b = 0; b < batch; ++b) {
      const float* item = source + b * frames * channels;
      std::fill(sums.begin(), sums.end(), 0.0);
      std::fill(squares.begin(), squares.end(), 0.0);
      run_on_workers(static_cast<int>(parts), [&](int part) {
        const int64_t begin = std::min(frames, part * part_frames), end = std::min(frames, begin + part_frames);
        accumulate_moments(item + begin * channels, end - begin, channels, sums.data() + part * channels,
                           squares.data() + part * channels);
      });
      for (int64_t c = 0; c < channels; ++c) {
        double sum = 0.0, square = 0.0;
        for (int64_t part = 0; part < parts; ++part) {
          sum += sums[part * channels + c];
          square += squares[part * channels + c];
        }
        // One-pass variance E[x^2] - E[x]^2, in double: nothing is lost at these magnitudes.
        const double mean = sum / frames;
        const double variance = std::max(0.0, square / frames - mean * mean);
        const double inverse = 1.0 / std::sqrt(variance + static_cast<double>(eps));
        scales[c] = static_cast<float>(inverse) * weight[c];
        shifts[c] = bias[c] - static_cast<float>(mean * inverse) * weight[c];
      }
      run_on_ranges(frames, threads, minimum_frames_per_worker, [&](int64_t begin, int64_t end) {
        scale_and_shift(item + begin * channels, end - begin, channels, scales.data(), shifts.data(),
                        out + (b * frames + begin) * channels);
      });
    }
  });
}

void GroupNormOverTime::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("RvcGroupNormOverTime has no GPU implementation; run it on the CPU stream");
}

std::vector<mx::Shape> GroupNormOverTime::output_shapes(const std::vector<mx::array>& inputs) {
  return {inputs[0].shape()};
}

}  // namespace rvc
