#include "conv1d_primitive.h"

#include <climits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "array_access.h"
#include "conv1d_winograd.h"
#include "openblas.h"
#include "winograd_weight_cache.h"

namespace rvc {

namespace {

void require(bool condition, const std::string& message) {
  require_argument(condition, "conv1d", message);
}

void require_float32(const mx::array& a, const char* name) {
  if (a.dtype() != mx::float32) {
    std::ostringstream text;
    text << name << " must be float32, got " << a.dtype();
    throw std::invalid_argument("conv1d: " + text.str());
  }
}

// PyTorch's (T + padding - dilation (K - 1) - 1) / stride + 1; below 1 when the kernel's span does not fit.
int64_t output_frames(int64_t in_frames, int64_t kernel_size, const Conv1dOptions& o) {
  const int64_t room = in_frames + o.pad_left + o.pad_right - static_cast<int64_t>(o.dilation) * (kernel_size - 1) - 1;
  return room < 0 ? 0 : room / o.stride + 1;
}

StridedFrames strided_frames(const mx::array& a) {
  return StridedFrames{a.data<float>(), a.strides(0), a.strides(1), a.strides(2)};
}

// sgemm wants row-major (O, K * I); anything else (a transposed or sliced weight) is packed first.
const float* row_major_weight(const mx::array& weight, std::vector<float>& packed) {
  if (weight.flags().row_contiguous) {
    return weight.data<float>();
  }
  const int64_t outs = weight.shape(0), taps = weight.shape(1), ins = weight.shape(2);
  packed.resize(outs * taps * ins);
  const float* source = weight.data<float>();
  for (int64_t o = 0; o < outs; ++o) {
    for (int64_t k = 0; k < taps; ++k) {
      for (int64_t i = 0; i < ins; ++i) {
        packed[(o * taps + k) * ins + i] =
            source[o * weight.strides(0) + k * weight.strides(1) + i * weight.strides(2)];
      }
    }
  }
  return packed.data();
}

std::vector<float> gathered_vector(const mx::array& a) {
  std::vector<float> values(a.shape(0));
  const float* source = a.data<float>();
  for (int64_t i = 0; i < a.shape(0); ++i) {
    values[i] = source[i * a.strides(0)];
  }
  return values;
}

}  // namespace

mx::array conv1d(const mx::array& x, const mx::array& weight, const std::optional<mx::array>& bias,
                 std::pair<int, int> padding, int dilation, std::optional<float> input_slope,
                 const std::optional<mx::array>& residual, const std::string& method, int stride, int groups,
                 mx::StreamOrDevice stream_or_device) {
  require(x.ndim() == 3, "x must be (batch, frames, in_channels), got shape " + shape_text(x));
  require(weight.ndim() == 3, "weight must be (out_channels, kernel_size, in_channels), got shape " +
                                  shape_text(weight));
  require_float32(x, "x");
  require_float32(weight, "weight");
  require(groups >= 1, "groups must be at least 1, got " + std::to_string(groups));
  require(static_cast<int64_t>(weight.shape(2)) * groups == x.shape(2),
          "weight " + shape_text(weight) + " in " + std::to_string(groups) + " group(s) expects " +
              std::to_string(static_cast<int64_t>(weight.shape(2)) * groups) + " input channels, x " +
              shape_text(x) + " has " + std::to_string(x.shape(2)));
  require(weight.shape(0) % groups == 0, "weight " + shape_text(weight) + " has " +
                                             std::to_string(weight.shape(0)) +
                                             " output channels, not a multiple of groups = " +
                                             std::to_string(groups));
  require(x.shape(0) >= 1 && weight.shape(0) >= 1 && weight.shape(1) >= 1 && weight.shape(2) >= 1,
          "x " + shape_text(x) + " and weight " + shape_text(weight) + " must not be empty");
  require(padding.first >= 0 && padding.second >= 0,
          "padding must be non-negative, got (" + std::to_string(padding.first) + ", " +
              std::to_string(padding.second) + ")");
  require(dilation >= 1, "dilation must be at least 1, got " + std::to_string(dilation));
  require(stride >= 1, "stride must be at least 1, got " + std::to_string(stride));
  require(static_cast<int64_t>(weight.shape(1)) * weight.shape(2) <= INT_MAX,
          "kernel_size * in_channels is too large for sgemm");

  Conv1dOptions options;
  options.pad_left = padding.first;
  options.pad_right = padding.second;
  options.dilation = dilation;
  options.stride = stride;
  options.groups = groups;
  options.input_slope = input_slope;
  if (method == "auto") {
    options.method = Conv1dMethod::automatic;
  } else if (method == "unfolded") {
    options.method = Conv1dMethod::unfolded;
  } else if (method == "winograd") {
    options.method = Conv1dMethod::winograd;
    require(weight.shape(1) >= 3, "method 'winograd' needs a kernel of 3 or more taps, got " +
                                      std::to_string(weight.shape(1)));
    require(stride == 1 && groups == 1, "method 'winograd' needs stride 1 and one group, got stride " +
                                            std::to_string(stride) + " and " + std::to_string(groups) + " groups");
  } else {
    require(false, "method must be 'auto', 'unfolded' or 'winograd', got '" + method + "'");
  }
  const int64_t frames = output_frames(x.shape(1), weight.shape(1), options);
  require(frames >= 1, "x has " + std::to_string(x.shape(1)) + " frames; with padding (" +
                           std::to_string(padding.first) + ", " + std::to_string(padding.second) +
                           ") that is shorter than the kernel's span of " +
                           std::to_string(static_cast<int64_t>(dilation) * (weight.shape(1) - 1) + 1));
  require(frames <= INT_MAX, "the output would have too many frames");
  const mx::Shape out_shape{x.shape(0), static_cast<int>(frames), weight.shape(0)};

  std::vector<mx::array> inputs{x, weight};
  if (bias) {
    require_float32(*bias, "bias");
    require(bias->ndim() == 1 && bias->shape(0) == weight.shape(0),
            "bias must be (" + std::to_string(weight.shape(0)) + ",), got shape " + shape_text(*bias));
    options.has_bias = true;
    inputs.push_back(*bias);
  }
  if (residual) {
    require_float32(*residual, "residual");
    require(residual->shape() == out_shape, "residual must have the output's shape (" +
                                                std::to_string(out_shape[0]) + ", " +
                                                std::to_string(out_shape[1]) + ", " +
                                                std::to_string(out_shape[2]) + "), got " +
                                                shape_text(*residual));
    options.has_residual = true;
    inputs.push_back(*residual);
  }
  mx::Stream stream = mx::to_stream(stream_or_device, mx::Device::cpu);
  require(stream.device == mx::Device::cpu, "runs on the CPU only; pass a CPU stream or device");
  return mx::array(out_shape, mx::float32, std::make_shared<Conv1d>(stream, options), std::move(inputs));
}

void Conv1d::eval_cpu(const std::vector<mx::array>& inputs, mx::array& output) {
  const mx::array& x = inputs[0];
  const mx::array& weight = inputs[1];
  const mx::array* bias = options_.has_bias ? &inputs[2] : nullptr;
  const mx::array* residual = options_.has_residual ? &inputs.back() : nullptr;

  // Like MLX's own elementwise ops, reuse the residual's buffer for the output when nothing else holds it
  // (the usual `x = conv(...) + x`): the kernel then adds onto it in place.
  const bool donate = residual != nullptr && can_donate(*residual);
  if (donate) {
    output.copy_shared_buffer(*residual);
  } else {
    output.set_data(mx::allocator::malloc(output.nbytes()));
  }

  Conv1dProblem problem;
  problem.batch = x.shape(0);
  problem.in_frames = x.shape(1);
  problem.in_channels = x.shape(2);
  problem.out_frames = output.shape(1);
  problem.out_channels = output.shape(2);
  problem.kernel_size = weight.shape(1);
  problem.dilation = options_.dilation;
  problem.stride = options_.stride;
  problem.groups = options_.groups;
  problem.pad_left = options_.pad_left;
  problem.input = strided_frames(x);
  problem.has_input_slope = options_.input_slope.has_value();
  problem.input_slope = options_.input_slope.value_or(0.0f);
  if (residual != nullptr && !donate) {
    problem.residual = strided_frames(*residual);
  }
  problem.residual_in_output = donate;
  problem.output = output.data<float>();

  const Conv1dMethod method = resolve_method(options_.method, problem.kernel_size, problem.stride, problem.groups);
  auto& encoder = encoder_keeping(stream(), inputs, output);
  // The encoder keeps the inputs' buffers alive until this task has run; the Winograd cache keys on (and
  // keeps) the weight's buffer.
  std::optional<mx::array> bias_view;
  if (bias != nullptr) {
    bias_view = mx::array::unsafe_weak_copy(*bias);
  }
  encoder.dispatch([problem, method, identity = WeightIdentity(weight), weight = mx::array::unsafe_weak_copy(weight),
                    bias = std::move(bias_view)]() mutable {
    std::vector<float> packed_weight;
    problem.weight = row_major_weight(weight, packed_weight);
    std::vector<float> bias_values;
    if (bias) {
      bias_values = gathered_vector(*bias);
      problem.bias = bias_values.data();
    }
    std::shared_ptr<const WinogradWeights> winograd;
    if (method == Conv1dMethod::winograd) {
      winograd = cached_winograd_weights(identity, [&] { return winograd_weights(problem); });
    }
    conv1d_tiled(problem, method, winograd.get(), find_openblas().get_num_threads());
  });
}

void Conv1d::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("RvcConv1d has no GPU implementation; run it on the CPU stream");
}

std::vector<mx::Shape> Conv1d::output_shapes(const std::vector<mx::array>& inputs) {
  const mx::array& x = inputs[0];
  const mx::array& weight = inputs[1];
  return {{x.shape(0), static_cast<int>(output_frames(x.shape(1), weight.shape(1), options_)), weight.shape(0)}};
}

bool Conv1d::is_equivalent(const mx::Primitive& other) const {
  return options_ == static_cast<const Conv1d&>(other).options_;
}

}  // namespace rvc
