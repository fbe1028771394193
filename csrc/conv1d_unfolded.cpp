#include "conv1d_unfolded.h"

#include <climits>

#include "tile_steps.h"

namespace rvc {

namespace {

// The unpadded pointwise convolution multiplies the input frames themselves, without a copy.
bool reads_input_in_place(const Conv1dProblem& p) {
  return p.kernel_size == 1 && p.pad_left == 0 && !p.has_input_slope && p.input.channel_stride == 1 &&
         p.input.frame_stride >= p.in_channels && p.input.frame_stride <= INT_MAX;
}

}  // namespace

int64_t unfolded_floats_per_row(const Conv1dProblem& p) {
  return reads_input_in_place(p) ? 0 : p.kernel_size * p.in_channels;
}

void unfolded_tile(const Conv1dProblem& p, const OpenBlas& blas, int64_t b, int64_t first, int64_t rows,
                   std::vector<float>& scratch) {
  const int64_t width = p.kernel_size * p.in_channels;
  const float beta = start_output_rows(p, b, first, rows) ? 1.0f : 0.0f;
  const float* a;
  int64_t lda;
  if (reads_input_in_place(p)) {
    a = p.input.frame(b, first);
    lda = p.input.frame_stride;
  } else {
    // Row r holds the frames first + r - pad_left + k * dilation, k = 0 .. K - 1, side by side: the order of
    // the (O, K, I) weight flattened to (O, K * I).
    scratch.resize(rows * width);
    for (int64_t k = 0; k < p.kernel_size; ++k) {
      copy_input_frames(p, b, first - p.pad_left + k * p.dilation, rows, scratch.data() + k * p.in_channels, width);
    }
    a = scratch.data();
    lda = width;
  }
  blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(p.out_channels),
             static_cast<int>(width), 1.0f, a, static_cast<int>(lda), p.weight, static_cast<int>(width), beta,
             output_rows(p, b, first), static_cast<int>(p.out_channels));
}

}  // namespace rvc
