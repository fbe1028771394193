#include "tile_steps.h"

#include <algorithm>
#include <cstring>

namespace rvc {

namespace {

// PyTorch's F.leaky_relu: x if x > 0 else slope * x. Cloned per instruction set, like the other loops
// here: this copy touches every input frame once per tile, a noticeable share of a small-channel layer.
__attribute__((target_clones("avx512f", "avx2", "default")))
void copy_activated(const float* __restrict source, int64_t count, float slope, float* __restrict target) {
  for (int64_t c = 0; c < count; ++c) {
    float value = source[c];
    target[c] = value > 0.0f ? value : value * slope;
  }
}

bool dense_rows(const StridedFrames& frames, int64_t channels) {
  return frames.channel_stride == 1 && frames.frame_stride == channels;
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
void add_floats(const float* __restrict source, int64_t count, float* __restrict target) {
  for (int64_t c = 0; c < count; ++c) {
    target[c] += source[c];
  }
}

void copy_input_frames(const Conv1dProblem& p, int64_t b, int64_t first, int64_t count, float* target,
                       int64_t target_stride) {
  const int64_t channels = p.in_channels;
  // Rows before and after the input are padding; the run in between is copied in one pass when both sides
  // are dense rows, which is the usual case.
  const int64_t begin = std::clamp<int64_t>(-first, 0, count);
  const int64_t end = std::clamp<int64_t>(p.in_frames - first, begin, count);
  for (int64_t r = 0; r < count; ++r) {
    if (r < begin || r >= end) {
      std::memset(target + r * target_stride, 0, channels * sizeof(float));
    }
  }
  if (end == begin) {
    return;
  }
  if (dense_rows(p.input, channels) && target_stride == channels) {
    const float* source = p.input.frame(b, first + begin);
    float* rows = target + begin * target_stride;
    if (p.has_input_slope) {
      copy_activated(source, (end - begin) * channels, p.input_slope, rows);
    } else {
      std::memcpy(rows, source, (end - begin) * channels * sizeof(float));
    }
    return;
  }
  for (int64_t r = begin; r < end; ++r) {
    const float* source = p.input.frame(b, first + r);
    float* row = target + r * target_stride;
    if (p.input.channel_stride == 1) {
      if (p.has_input_slope) {
        copy_activated(source, channels, p.input_slope, row);
      } else {
        std::memcpy(row, source, channels * sizeof(float));
      }
      continue;
    }
    for (int64_t c = 0; c < channels; ++c) {
      float value = source[c * p.input.channel_stride];
      row[c] = (!p.has_input_slope || value > 0.0f) ? value : value * p.input_slope;
    }
  }
}

bool start_output_rows(const Conv1dProblem& p, int64_t b, int64_t first, int64_t rows) {
  const int64_t width = p.out_channels;
  float* out = output_rows(p, b, first);
  if (p.residual_in_output) {
    if (p.bias != nullptr) {
      for (int64_t r = 0; r < rows; ++r) {
        add_floats(p.bias, width, out + r * width);
      }
    }
    return true;
  }
  if (p.residual.data != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* source = p.residual.frame(b, first + r);
      float* line = out + r * width;
      if (p.residual.channel_stride == 1) {
        std::memcpy(line, source, width * sizeof(float));
      } else {
        for (int64_t o = 0; o < width; ++o) {
          line[o] = source[o * p.residual.channel_stride];
        }
      }
      if (p.bias != nullptr) {
        add_floats(p.bias, width, line);
      }
    }
    return true;
  }
  if (p.bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + r * width, p.bias, width * sizeof(float));
    }
    return true;
  }
  return false;
}

}  // namespace rvc
