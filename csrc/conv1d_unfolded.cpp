#include "conv1d_unfolded.h"

#include <climits>

#include "tile_steps.h"

namespace rvc {

namespace {

// The unpadded pointwise convolution multiplies the input frames themselves, without a copy.
bool reads_input_in_place(const Conv1dProblem& p) {
  return p.kernel_size == 1 && p.pad_left == 0 && !p.has_input_slope && p.input.channel_stride == 1 &&
         p.input.frame_stride >= p.in_channels && p.input.frame_stride * p.stride <= INT_MAX;
}

}  // namespace

int64_t unfolded_floats_per_row(const Conv1dProblem& p) {
  return reads_input_in_place(p) ? 0 : p.kernel_size * p.in_channels / p.groups;
}

void unfolded_tile(const Conv1dProblem& p, const OpenBlas& blas, int64_t b, int64_t first, int64_t rows,
                   int64_t group, std::vector<float>& scratch) {
  const int64_t ins = p.in_channels / p.groups, outs = p.out_channels / p.groups;
  const int64_t width = p.kernel_size * ins;
  const float beta = start_output_rows(p, b, first, rows, group * outs, outs) ? 1.0f : 0.0f;
  const float* a;
  int64_t lda;
  if (reads_input_in_place(p)) {
    a = p.input.frame(b, first * p.stride) + group * ins;
    lda = p.input.frame_stride * p.stride;
  } else {
    // Row r holds the frames (first + r) * stride - pad_left + k * dilation, k = 0 .. K - 1, of the group's
    // channels, side by side: the order of the group's (O / G, K, I / G) weight flattened to (O / G, K * I / G).
    scratch.resize(rows * width);
    for (int64_t k = 0; k < p.kernel_size; ++k) {
      copy_input_frames(p, b, first * p.stride - p.pad_left + k * p.dilation, rows, scratch.data() + k * ins, width,
                        p.stride, group * ins, ins);
    }
    a = scratch.data();
    lda = width;
  }
  blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(outs),
             static_cast<int>(width), 1.0f, a, static_cast<int>(lda), p.weight + group * outs * width,
             static_cast<int>(width), beta, output_rows(p, b, first) + group * outs,
             static_cast<int>(p.out_channels));
}

}  // namespace rvc
