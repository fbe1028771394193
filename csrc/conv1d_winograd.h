// Stride-1 convolution with Winograd's minimal filtering F(4, 3): four outputs of three taps from six
// products instead of twelve (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", with
// the interpolation points 0, +-1, +-2 and infinity).
//
// The taps are taken three at a time ("chunks"). For the output group (t, t + d, t + 2d, t + 3d), d the
// dilation, and chunk c, the six input frames x_m = x[t + (3c + m) d - pad_left] become u = B^T x and the
// chunk's taps g become v = G g; with m_j = sum over chunks and input channels of u_j v_j, one sgemm per j
// over all chunks at once, the four outputs are A^T m. A kernel with one tap over (K = 3n + 1) multiplies
// that tap directly; one with two over gets a zero tap appended. Products per output instead of K:
// 3 -> 1.5, 7 -> 4, 11 -> 6.
//
// Numerics: B^T and A^T hold small integers and G's sixths and twenty-fourths are rounded once, from
// double; the output transform's factors up to 8 amplify the products' rounding, a few ulps of the
// largest partial sums (the Swift port measured 3 dB less parity SNR than F(2, 3), well above 110 dB).
#pragma once

#include <cstdint>
#include <vector>

#include "conv1d_tiles.h"
#include "openblas.h"

namespace rvc {

struct WinogradWeights {
  static constexpr int points = 6;      // products per group and chunk
  static constexpr int group_size = 4;  // outputs per group: t, t + d, t + 2d, t + 3d

  int64_t chunks = 0;
  int64_t width = 0;  // chunks * in_channels: the inner dimension of each sgemm
  bool direct_last_tap = false;  // K = 3 * chunks + 1: the last tap is multiplied directly, not transformed
  // `points` matrices of O x width: row o of matrix j holds (G g)_j of every chunk of output channel o.
  std::vector<float> transformed;
};

WinogradWeights winograd_weights(const Conv1dProblem& p);

// Tiles are whole blocks of 4 * dilation output frames: `dilation` interleaved groups.
int64_t winograd_block_rows(const Conv1dProblem& p);

// Floats of scratch one output row of the tile needs, roughly (for choosing the tile size).
int64_t winograd_floats_per_row(const Conv1dProblem& p, const WinogradWeights& weights);

// `bias`: the problem's bias, or zeros.
void winograd_tile(const Conv1dProblem& p, const WinogradWeights& weights, const float* bias, const OpenBlas& blas,
                   int64_t b, int64_t first, int64_t rows, std::vector<float>& scratch);

}  // namespace rvc
