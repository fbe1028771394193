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

// The first of the rows r = 0 .. count - 1 (reading frame first + r * step) whose frame is `frame` or later.
int64_t first_row_at_or_after(int64_t frame, int64_t first, int64_t step, int64_t count) {
  const int64_t distance = frame - first;
  const int64_t row = distance <= 0 ? 0 : (distance + step - 1) / step;
  return std::min(row, count);
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
void add_floats(const float* __restrict source, int64_t count, float* __restrict target) {
  for (int64_t c = 0; c < count; ++c) {
    target[c] += source[c];
  }
}

void copy_input_frames(const Conv1dProblem& p, int64_t b, int64_t first, int64_t count, float* target,
                       int64_t target_stride, int64_t step, int64_t channel_first, int64_t channels) {
  if (channels < 0) {
    channels = p.in_channels;
  }
  // Rows before and after the input are padding; the run in between is copied in one pass when both sides
  // are dense rows of every channel, which is the usual case.
  const int64_t begin = first_row_at_or_after(0, first, step, count);
  const int64_t end = std::max(begin, first_row_at_or_after(p.in_frames, first, step, count));
  for (int64_t r = 0; r < count; ++r) {
    if (r < begin || r >= end) {
      std::memset(target + r * target_stride, 0, channels * sizeof(float));
    }
  }
  if (end == begin) {
    return;
  }
  if (step == 1 && channels == p.in_channels && dense_rows(p.input, channels) && target_stride == channels) {
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
    const float* source = p.input.frame(b, first + r * step) + channel_first * p.input.channel_stride;
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

bool start_output_rows(const Conv1dProblem& p, int64_t b, int64_t first, int64_t rows, int64_t channel_first,
                       int64_t channels) {
  const int64_t width = channels < 0 ? p.out_channels : channels;
  const int64_t stride = p.out_channels;
  float* out = output_rows(p, b, first) + channel_first;
  const float* bias = p.bias != nullptr ? p.bias + channel_first : nullptr;
  if (p.residual_in_output) {
    if (bias != nullptr) {
      for (int64_t r = 0; r < rows; ++r) {
        add_floats(bias, width, out + r * stride);
      }
    }
    return true;
  }
  if (p.residual.data != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* source = p.residual.frame(b, first + r) + channel_first * p.residual.channel_stride;
      float* line = out + r * stride;
      if (p.residual.channel_stride == 1) {
        std::memcpy(line, source, width * sizeof(float));
      } else {
        for (int64_t o = 0; o < width; ++o) {
          line[o] = source[o * p.residual.channel_stride];
        }
      }
      if (bias != nullptr) {
        add_floats(bias, width, line);
      }
    }
    return true;
  }
  if (bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + r * stride, bias, width * sizeof(float));
    }
    return true;
  }
  return false;
}

}  // namespace rvc
