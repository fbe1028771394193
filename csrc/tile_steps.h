// Steps the tiles of conv1d_unfolded.cpp and conv1d_winograd.cpp share: reading input frames (padding and
// leaky ReLU applied) and starting output rows from bias and residual.
#pragma once

#include <cstdint>

#include "conv1d_tiles.h"

namespace rvc {

// Frames first, first + step, ..., first + (count - 1) * step of batch item `b` as `count` rows of its
// channels [channel_first, channel_first + channels) (every channel when `channels` is -1), `target_stride`
// floats apart, written to `target`: zeros outside the input (the convolution's padding), through the
// leaky ReLU when the problem has one.
void copy_input_frames(const Conv1dProblem& p, int64_t b, int64_t first, int64_t count, float* target,
                       int64_t target_stride, int64_t step = 1, int64_t channel_first = 0, int64_t channels = -1);

// Sets output rows [first, first + rows) of item `b`, channels [channel_first, channel_first + channels)
// (every channel when `channels` is -1), to residual + bias (or bias, or adds the bias to the donated
// residual). Returns false when there is nothing to start from, so the rows are to be overwritten.
bool start_output_rows(const Conv1dProblem& p, int64_t b, int64_t first, int64_t rows, int64_t channel_first = 0,
                       int64_t channels = -1);

// target[i] += source[i]
void add_floats(const float* source, int64_t count, float* target);

inline float* output_rows(const Conv1dProblem& p, int64_t b, int64_t first) {
  return p.output + (b * p.out_frames + first) * p.out_channels;
}

}  // namespace rvc
