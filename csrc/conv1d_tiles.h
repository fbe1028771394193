// Conv1d over channels-last frames, a tile of output frames at a time (the algorithms of the Swift port's
// Tensor/Convolution.swift and Tensor/WinogradConvolution.swift). Tiles own disjoint output frames (and,
// in a grouped convolution, one group's output channels), so they run in parallel, each with its own
// cache-resident scratch.
#pragma once

#include <cstdint>

namespace rvc {

// A (batch, frames, channels) tensor read through element strides, so slices and transposes of MLX
// arrays are read in place.
struct StridedFrames {
  const float* data = nullptr;
  int64_t batch_stride = 0;
  int64_t frame_stride = 0;
  int64_t channel_stride = 1;

  const float* frame(int64_t b, int64_t t) const {
    return data + b * batch_stride + t * frame_stride;
  }
};

struct Conv1dProblem {
  int64_t batch = 0;
  int64_t in_frames = 0;
  int64_t in_channels = 0;
  int64_t out_frames = 0;
  int64_t out_channels = 0;
  int64_t kernel_size = 0;
  int64_t dilation = 1;
  int64_t stride = 1;
  int64_t groups = 1;    // each in_channels / groups inputs feed out_channels / groups outputs
  int64_t pad_left = 0;  // the right padding is implied by out_frames

  StridedFrames input;
  const float* weight = nullptr;  // (O, K * I / G) row-major: the (O, K, I / G) layout flattened
  const float* bias = nullptr;    // (O,) or null
  bool has_input_slope = false;
  float input_slope = 0.0f;         // leaky ReLU slope applied to the input, when has_input_slope
  StridedFrames residual;           // (B, T_out, O) added to the result; data null for none
  bool residual_in_output = false;  // the output buffer already holds the residual (donated buffer)
  float* output = nullptr;          // (B, T_out, O) row-major
};

enum class Conv1dMethod {
  automatic,  // Winograd for ungrouped stride-1 kernels of 3 or more taps, unfolded otherwise
  unfolded,   // im2col and one sgemm over K * I / G per tile (and group)
  winograd,   // F(4, 3) Winograd products (kernel_size >= 3, stride 1, one group)
};

struct WinogradWeights;

// `automatic` resolved for a kernel of `kernel_size` taps with `stride` and `groups`.
Conv1dMethod resolve_method(Conv1dMethod method, int64_t kernel_size, int64_t stride, int64_t groups);

// Computes the convolution with `threads` workers (1 runs on the calling thread only). `method` must be
// resolved; the Winograd method takes the weights transformed by `winograd_weights` (conv1d_winograd.h).
void conv1d_tiled(const Conv1dProblem& problem, Conv1dMethod method, const WinogradWeights* winograd,
                  int threads);

}  // namespace rvc
