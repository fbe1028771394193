// The general method: a tile's input windows unfolded into a (rows x K*I/G) matrix (im2col), then one sgemm
// by the (O/G x K*I/G) weight of the tile's group.
#pragma once

#include <cstdint>
#include <vector>

#include "conv1d_tiles.h"
#include "openblas.h"

namespace rvc {

// Floats of scratch one output row of the tile needs.
int64_t unfolded_floats_per_row(const Conv1dProblem& p);

void unfolded_tile(const Conv1dProblem& p, const OpenBlas& blas, int64_t b, int64_t first, int64_t rows,
                   int64_t group, std::vector<float>& scratch);

}  // namespace rvc
