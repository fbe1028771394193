// Exact GELU and the softmax's exponential as multiply-adds the compiler vectorises: the C library's erff
// and expf are scalar calls. The same approximations as the MLX reference (rvc_ios_tools/hubert/model.py)
// and the Swift port (Models/ContentEncoder/PolynomialActivations.swift):
// - erf on [-4, 4] as Eigen's and XLA's float32 rational x P(x^2) / Q(x^2), within 4.5e-7 of erf
//   (outside, erf is +-1 in float32);
// - e^x for x <= 0 as 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts so r is exact), e^r
//   by its Taylor series to r^8 (below 1e-7 relative), 2^n built in the exponent bits; 0 below -87.
#pragma once

#include <cstdint>

namespace rvc {

// target[i] = x / 2 (1 + erf(x / sqrt 2)), x = source[i]; target may be source.
void gelu_floats(const float* source, int64_t count, float* target);

// Each of `rows` rows of `columns` values (`row_stride` floats apart) replaced by its softmax, the row's
// maximum subtracted first as PyTorch does; the sum is taken in 16 interleaved float32 partial sums.
void softmax_rows(float* values, int64_t rows, int64_t columns, int64_t row_stride);

}  // namespace rvc
