#include "conv1d_tiles.h"

#include <algorithm>
#include <vector>

#include "blas_jobs.h"
#include "conv1d_unfolded.h"
#include "conv1d_winograd.h"
#include "openblas.h"

namespace rvc {

namespace {

// Output frames a tile aims for: enough rows (a quarter of them for Winograd) for an efficient sgemm.
// Measured on 2 Zen 4 cores over 32 to 256 channels: 512 and 2048 rows were up to 10% slower.
constexpr int64_t tile_row_target = 1024;
// Upper bound on one tile's scratch (16 MB), for very wide layers; the largest decoder layer (256
// channels, 11 taps, Winograd) needs 9 MB for 1024 rows, and capping it at 4 MB cost 10%.
constexpr int64_t tile_float_limit = int64_t(1) << 22;

struct TileLayout {
  int64_t rows = 0;  // output frames per tile (the last tile of each batch item may be shorter)
  int64_t per_item = 0;
  int64_t groups = 1;  // tiles per frame range: one per group of a grouped convolution
  int64_t count = 0;
};

TileLayout tile_layout(const Conv1dProblem& p, int64_t floats_per_row, int64_t alignment, int threads) {
  int64_t rows = std::min(tile_row_target, tile_float_limit / std::max<int64_t>(1, floats_per_row));
  // Enough tiles to keep every worker busy (the groups of a grouped convolution are tiles too).
  const int64_t rows_per_worker = (p.batch * p.out_frames * p.groups + threads - 1) / threads;
  rows = std::min(rows, std::max<int64_t>(64, rows_per_worker));
  rows = std::max(alignment, rows / alignment * alignment);
  TileLayout layout;
  layout.rows = rows;
  layout.per_item = (p.out_frames + rows - 1) / rows;
  layout.groups = p.groups;
  layout.count = p.batch * layout.per_item * layout.groups;
  return layout;
}

// Runs `tile(b, first, rows, group, scratch)` on every tile, on `threads` workers.
template <class Tile>
void run_tiles(const OpenBlas& blas, const TileLayout& layout, const Conv1dProblem& p, int threads, Tile tile) {
  run_blas_jobs(blas, layout.count, threads, [&](int64_t index, std::vector<float>& scratch) {
    const int64_t group = index % layout.groups;
    const int64_t range = index / layout.groups;
    const int64_t b = range / layout.per_item;
    const int64_t first = (range % layout.per_item) * layout.rows;
    tile(b, first, std::min(layout.rows, p.out_frames - first), group, scratch);
  });
}

}  // namespace

Conv1dMethod resolve_method(Conv1dMethod method, int64_t kernel_size, int64_t stride, int64_t groups) {
  if (method != Conv1dMethod::automatic) {
    return method;
  }
  return kernel_size >= 3 && stride == 1 && groups == 1 ? Conv1dMethod::winograd : Conv1dMethod::unfolded;
}

void conv1d_tiled(const Conv1dProblem& p, Conv1dMethod method, const WinogradWeights* winograd, int threads) {
  const OpenBlas& blas = find_openblas();
  threads = std::max(1, threads);
  if (method == Conv1dMethod::winograd) {
    const std::vector<float> zeros(p.bias == nullptr ? p.out_channels : 0, 0.0f);
    const float* bias = p.bias != nullptr ? p.bias : zeros.data();
    const TileLayout layout =
        tile_layout(p, winograd_floats_per_row(p, *winograd), winograd_block_rows(p), threads);
    run_tiles(blas, layout, p, threads,
              [&](int64_t b, int64_t first, int64_t rows, int64_t, std::vector<float>& scratch) {
                winograd_tile(p, *winograd, bias, blas, b, first, rows, scratch);
              });
    return;
  }
  const TileLayout layout = tile_layout(p, unfolded_floats_per_row(p), 1, threads);
  run_tiles(blas, layout, p, threads,
            [&](int64_t b, int64_t first, int64_t rows, int64_t group, std::vector<float>& scratch) {
              unfolded_tile(p, blas, b, first, rows, group, scratch);
            });
}

}  // namespace rvc
