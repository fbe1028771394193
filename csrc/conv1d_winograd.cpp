#include "conv1d_winograd.h"

#include <algorithm>

#include "tile_steps.h"

namespace rvc {

namespace {

constexpr int points = WinogradWeights::points;
constexpr int group_size = WinogradWeights::group_size;

// u = B^T x for one chunk of one group, every channel. Separate restrict-qualified rows let the compiler
// vectorize across channels.
__attribute__((target_clones("avx512f", "avx2", "default")))
void winograd_input_rows(int64_t count, const float* __restrict x0, const float* __restrict x1,
                         const float* __restrict x2, const float* __restrict x3, const float* __restrict x4,
                         const float* __restrict x5, float* __restrict u0, float* __restrict u1,
                         float* __restrict u2, float* __restrict u3, float* __restrict u4, float* __restrict u5) {
  for (int64_t i = 0; i < count; ++i) {
    const float a = x1[i], b = x2[i], c = x3[i], e = x4[i];
    u0[i] = 4.0f * x0[i] - 5.0f * b + e;
    u1[i] = (e + c) - 4.0f * (a + b);
    u2[i] = (e - c) + 4.0f * (a - b);
    u3[i] = (e - b) + 2.0f * (c - a);
    u4[i] = (e - b) - 2.0f * (c - a);
    u5[i] = 4.0f * a - 5.0f * c + x5[i];
  }
}

// x_m is `x + m * step`, u_j goes to `u + j * u_stride`.
inline void winograd_input(const float* x, int64_t step, int64_t count, float* u, int64_t u_stride) {
  winograd_input_rows(count, x, x + step, x + 2 * step, x + 3 * step, x + 4 * step, x + 5 * step, u, u + u_stride,
                      u + 2 * u_stride, u + 3 * u_stride, u + 4 * u_stride, u + 5 * u_stride);
}

// What the output transform adds to A^T m + bias.
enum class Addend { none, output, residual };

// y_q = (A^T m)_q + bias (+ a_q, or + y_q itself) for the four outputs of a group.
template <Addend addend>
__attribute__((always_inline)) inline void winograd_output_body(
    int64_t count, const float* __restrict m0, const float* __restrict m1, const float* __restrict m2,
    const float* __restrict m3, const float* __restrict m4, const float* __restrict m5,
    const float* __restrict bias, const float* __restrict a0, const float* __restrict a1,
    const float* __restrict a2, const float* __restrict a3, float* __restrict y0, float* __restrict y1,
    float* __restrict y2, float* __restrict y3) {
  for (int64_t o = 0; o < count; ++o) {
    const float plus12 = m1[o] + m2[o], minus12 = m1[o] - m2[o];
    const float plus34 = m3[o] + m4[o], minus34 = m3[o] - m4[o];
    float v0 = m0[o] + plus12 + plus34 + bias[o];
    float v1 = minus12 + 2.0f * minus34 + bias[o];
    float v2 = plus12 + 4.0f * plus34 + bias[o];
    float v3 = minus12 + 8.0f * minus34 + m5[o] + bias[o];
    if constexpr (addend == Addend::output) {
      v0 += y0[o];
      v1 += y1[o];
      v2 += y2[o];
      v3 += y3[o];
    } else if constexpr (addend == Addend::residual) {
      v0 += a0[o];
      v1 += a1[o];
      v2 += a2[o];
      v3 += a3[o];
    }
    y0[o] = v0;
    y1[o] = v1;
    y2[o] = v2;
    y3[o] = v3;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void winograd_output_rows(Addend addend, int64_t count, const float* const* m, const float* bias,
                          const float* const* a, float* const* y) {
  switch (addend) {
    case Addend::none:
      winograd_output_body<Addend::none>(count, m[0], m[1], m[2], m[3], m[4], m[5], bias, nullptr, nullptr,
                                         nullptr, nullptr, y[0], y[1], y[2], y[3]);
      break;
    case Addend::output:
      winograd_output_body<Addend::output>(count, m[0], m[1], m[2], m[3], m[4], m[5], bias, nullptr, nullptr,
                                           nullptr, nullptr, y[0], y[1], y[2], y[3]);
      break;
    case Addend::residual:
      winograd_output_body<Addend::residual>(count, m[0], m[1], m[2], m[3], m[4], m[5], bias, a[0], a[1], a[2],
                                             a[3], y[0], y[1], y[2], y[3]);
      break;
  }
}

int64_t padded_span(const Conv1dProblem& p, const WinogradWeights& w) {
  return p.dilation * std::max(3 * w.chunks - 1, p.kernel_size - 1);
}

}  // namespace

WinogradWeights winograd_weights(const Conv1dProblem& p) {
  WinogradWeights w;
  const int64_t outs = p.out_channels, taps = p.kernel_size, ins = p.in_channels;
  // One tap over is cheaper multiplied directly (1 product per output, against 1.5 for a chunk padded with
  // two zero taps: 7 taps measured 10% faster); two taps over take a zero tap (1.5 against 2).
  w.direct_last_tap = taps % 3 == 1;
  w.chunks = w.direct_last_tap ? taps / 3 : (taps + 2) / 3;
  w.width = w.chunks * ins;
  w.transformed.assign(points * outs * w.width, 0.0f);
  for (int64_t o = 0; o < outs; ++o) {
    for (int64_t c = 0; c < w.chunks; ++c) {
      for (int64_t i = 0; i < ins; ++i) {
        auto tap = [&](int64_t k) -> double {
          return k < taps ? static_cast<double>(p.weight[(o * taps + k) * ins + i]) : 0.0;
        };
        const double g0 = tap(3 * c), g1 = tap(3 * c + 1), g2 = tap(3 * c + 2);
        const double v[points] = {g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6,
                                  (g0 + 2 * g1 + 4 * g2) / 24, (g0 - 2 * g1 + 4 * g2) / 24, g2};
        for (int j = 0; j < points; ++j) {
          w.transformed[(j * outs + o) * w.width + c * ins + i] = static_cast<float>(v[j]);
        }
      }
    }
  }
  return w;
}

int64_t winograd_block_rows(const Conv1dProblem& p) {
  return group_size * p.dilation;
}

int64_t winograd_floats_per_row(const Conv1dProblem& p, const WinogradWeights& w) {
  // Frames, then per group of four outputs six transformed inputs and six products.
  return p.in_channels + (points * (w.width + p.out_channels) + group_size - 1) / group_size;
}

void winograd_tile(const Conv1dProblem& p, const WinogradWeights& w, const float* bias, const OpenBlas& blas,
                   int64_t b, int64_t first, int64_t rows, std::vector<float>& scratch) {
  const int64_t d = p.dilation, ins = p.in_channels, outs = p.out_channels;
  const int64_t block = winograd_block_rows(p);
  const int64_t blocks = (rows + block - 1) / block;
  const int64_t groups = blocks * d;
  const int64_t frame_count = blocks * block + padded_span(p, w);
  // Spare rows stand in for output and residual rows beyond the tile's end in its last group.
  scratch.resize(frame_count * ins + points * groups * (w.width + outs) + 2 * group_size * outs);
  float* transformed_input = scratch.data();                         // points x groups x width
  float* products = transformed_input + points * groups * w.width;   // points x groups x O
  float* spare_rows = products + points * groups * outs;             // 2 * group_size x O
  // The tile's input frames, copied even without padding or leaky ReLU: the transform below then reads
  // cache-resident rows (measured faster than reading the input in place).
  float* frames = spare_rows + 2 * group_size * outs;                // frame_count x I
  copy_input_frames(p, b, first - p.pad_left, frame_count, frames, ins);

  // Group g covers the outputs offset, offset + d, offset + 2d, offset + 3d of the tile.
  auto group_offset = [&](int64_t g) { return (g / d) * block + g % d; };
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t offset = group_offset(g);
    for (int64_t c = 0; c < w.chunks; ++c) {
      winograd_input(frames + (offset + 3 * c * d) * ins, d * ins, ins,
                     transformed_input + g * w.width + c * ins, groups * w.width);
    }
  }
  for (int j = 0; j < points; ++j) {
    blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(groups), static_cast<int>(outs),
               static_cast<int>(w.width), 1.0f, transformed_input + j * groups * w.width,
               static_cast<int>(w.width), w.transformed.data() + j * outs * w.width, static_cast<int>(w.width),
               0.0f, products + j * groups * outs, static_cast<int>(outs));
  }

  Addend addend = Addend::none;
  if (p.residual_in_output) {
    addend = Addend::output;
  } else if (p.residual.data != nullptr) {
    addend = Addend::residual;
  }
  if (addend == Addend::residual && p.residual.channel_stride != 1) {
    // Gathered into the output rows first, then added in place.
    for (int64_t r = 0; r < rows; ++r) {
      const float* source = p.residual.frame(b, first + r);
      float* line = output_rows(p, b, first + r);
      for (int64_t o = 0; o < outs; ++o) {
        line[o] = source[o * p.residual.channel_stride];
      }
    }
    addend = Addend::output;
  }
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t offset = group_offset(g);
    if (offset >= rows) {
      continue;
    }
    const float* m[points];
    for (int j = 0; j < points; ++j) {
      m[j] = products + (j * groups + g) * outs;
    }
    const float* a[group_size];
    float* y[group_size];
    for (int q = 0; q < group_size; ++q) {
      const int64_t row = offset + q * d;
      const bool inside = row < rows;
      y[q] = inside ? output_rows(p, b, first + row) : spare_rows + q * outs;
      a[q] = addend == Addend::residual && inside ? p.residual.frame(b, first + row)
                                                  : spare_rows + (group_size + q) * outs;
    }
    winograd_output_rows(addend, outs, m, bias, a, y);
  }
  if (w.direct_last_tap) {
    // Frames shifted by the tap's offset times its (O, I) slice of the (O, K * I) weight, onto the rows.
    const int64_t tap = p.kernel_size - 1;
    blas.sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(outs),
               static_cast<int>(ins), 1.0f, frames + tap * d * ins, static_cast<int>(ins), p.weight + tap * ins,
               static_cast<int>(p.kernel_size * ins), 1.0f, output_rows(p, b, first), static_cast<int>(outs));
  }
}

}  // namespace rvc
