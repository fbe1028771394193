#include "polynomial_activations.h"

#include <bit>

namespace rvc {

namespace {

// Highest power first, as Horner's rule takes them (model.py's ERF_NUMERATOR and ERF_DENOMINATOR reversed).
constexpr float erf_numerator[] = {-2.72614225801306e-10f, 2.77068142495902e-08f, -2.10102402082508e-06f,
                                   -5.69250639462346e-05f, -7.34990630326855e-04f, -2.95459980854025e-03f,
                                   -1.60960333262415e-02f};
constexpr float erf_denominator[] = {-1.45660718464996e-05f, -2.13374055278905e-04f, -1.68282697438203e-03f,
                                     -7.37332916720468e-03f, -1.42647390514189e-02f};

inline float gelu(float x) {
  float z = x * 0.7071067811865476f;
  z = z < -4.0f ? -4.0f : z;
  z = z > 4.0f ? 4.0f : z;
  const float z2 = z * z;
  float p = erf_numerator[0];
  for (int i = 1; i < 7; ++i) {
    p = p * z2 + erf_numerator[i];
  }
  float q = erf_denominator[0];
  for (int i = 1; i < 5; ++i) {
    q = q * z2 + erf_denominator[i];
  }
  return 0.5f * x * (1.0f + z * p / q);
}

// Adding 1.5 * 2^23 to a float of magnitude below 2^22 rounds it to an integer (to nearest, ties to even,
// as MLX's round) held in the low mantissa bits: the rounding and the integer without a conversion.
constexpr float rounding_magic = 12582912.0f;
constexpr int32_t rounding_magic_bits = 0x4B400000;

inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float shifted = x * 1.4426950408889634f + rounding_magic;
  const float n = shifted - rounding_magic;
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float series = 1.0f / 40320;
  series = series * r + 1.0f / 5040;
  series = series * r + 1.0f / 720;
  series = series * r + 1.0f / 120;
  series = series * r + 1.0f / 24;
  series = series * r + 1.0f / 6;
  series = series * r + 0.5f;
  series = series * r + 1.0f;
  series = series * r + 1.0f;
  const int32_t power = ((std::bit_cast<int32_t>(shifted) - rounding_magic_bits) + 127) << 23;
  return series * std::bit_cast<float>(power);
}

constexpr int lanes = 16;

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
void gelu_floats(const float* source, int64_t count, float* target) {
  for (int64_t i = 0; i < count; ++i) {
    target[i] = gelu(source[i]);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_rows(float* values, int64_t rows, int64_t columns, int64_t row_stride) {
  const int64_t whole = columns - columns % lanes;
  for (int64_t row = 0; row < rows; ++row) {
    float* line = values + row * row_stride;
    float maxima[lanes];
    for (int j = 0; j < lanes; ++j) {
      maxima[j] = -__builtin_inff();
    }
    for (int64_t c = 0; c < whole; c += lanes) {
      for (int j = 0; j < lanes; ++j) {
        maxima[j] = line[c + j] > maxima[j] ? line[c + j] : maxima[j];
      }
    }
    float maximum = -__builtin_inff();
    for (int j = 0; j < lanes; ++j) {
      maximum = maxima[j] > maximum ? maxima[j] : maximum;
    }
    for (int64_t c = whole; c < columns; ++c) {
      maximum = line[c] > maximum ? line[c] : maximum;
    }
    float sums[lanes] = {};
    for (int64_t c = 0; c < whole; c += lanes) {
      for (int j = 0; j < lanes; ++j) {
        const float e = exp_nonpositive(line[c + j] - maximum);
        line[c + j] = e;
        sums[j] += e;
      }
    }
    float sum = 0.0f;
    for (int j = 0; j < lanes; ++j) {
      sum += sums[j];
    }
    for (int64_t c = whole; c < columns; ++c) {
      line[c] = exp_nonpositive(line[c] - maximum);
      sum += line[c];
    }
    const float inverse = 1.0f / sum;
    for (int64_t c = 0; c < columns; ++c) {
      line[c] *= inverse;
    }
  }
}

}  // namespace rvc
