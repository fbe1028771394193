// Python module rvc_ios_tools._native_conv; rvc_ios_tools/native_conv.py is its public face.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>

#include "attention_primitive.h"
#include "conv1d_primitive.h"
#include "gelu_primitive.h"
#include "group_norm_primitive.h"
#include "gru_primitive.h"
#include "openblas.h"
#include "winograd_weight_cache.h"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_native_conv, m) {
  m.doc() = "CPU kernels for MLX on OpenBLAS: Conv1d (tiled im2col or Winograd products), the GRU recurrence, "
            "exact GELU, GroupNorm over time and blocked self-attention.";
  try {
    rvc::find_openblas();
  } catch (const std::exception& error) {
    throw nb::import_error(error.what());
  }
  m.def("clear_weight_cache", &rvc::clear_winograd_weight_cache,
        "Forget the Winograd-transformed weights kept per weight array (and the references to their buffers).");
  m.def("conv1d", &rvc::conv1d, "x"_a, "weight"_a, "bias"_a = nb::none(), nb::kw_only(),
        "padding"_a = std::pair<int, int>(0, 0), "dilation"_a = 1, "input_slope"_a = nb::none(),
        "residual"_a = nb::none(), "method"_a = "auto", "stride"_a = 1, "groups"_a = 1, "stream"_a = nb::none(),
        "Conv1d on channels-last float32 input: x (B, T, I), weight (O, K, I / groups), bias (O,) -> "
        "(B, T_out, O) = conv(leaky_relu(x, input_slope) if input_slope is not None else x) + bias "
        "(+ residual, shaped like the output). method: 'auto' (Winograd F(4, 3) for 3 or more taps at "
        "stride 1 in one group), 'unfolded' (im2col and one sgemm per tile) or 'winograd'.");
  m.def("gru_recurrence", &rvc::gru_recurrence, "input_gates"_a, "weight_hh"_a, "bias_hh"_a, nb::kw_only(),
        "reverse"_a = false, "stream"_a = nb::none(),
        "One direction of PyTorch's GRU recurrence from h = 0: input_gates (B, T, 3H) = W_i x + b_i (gates r, "
        "z, n), weight_hh (3H, H), bias_hh (3H,) -> (B, T, H), b_hn inside the reset gate as PyTorch has it. "
        "reverse steps from the last frame; outputs keep frame order.");
  m.def("gelu", &rvc::gelu, "x"_a, nb::kw_only(), "stream"_a = nb::none(),
        "Exact (erf) GELU of every value of the float32 array x, vectorised, on OpenBLAS's thread count of "
        "workers.");
  m.def("group_norm_over_time", &rvc::group_norm_over_time, "x"_a, "weight"_a, "bias"_a, nb::kw_only(), "eps"_a,
        "stream"_a = nb::none(),
        "fairseq's Fp32GroupNorm(C, C) on channels-last x (B, T, C): each channel normalised over the T frames "
        "(statistics in double, biased variance), then y = x * weight / sqrt(var + eps) + shift per channel.");
  m.def("attention", &rvc::attention, "q"_a, "k"_a, "v"_a, nb::kw_only(), "heads"_a, "query_block"_a = 128,
        "stream"_a = nb::none(),
        "softmax(q k^T) v per head for q, k, v (B, T, H) with the heads side by side along H (q already "
        "scaled) -> (B, T, H), query_block queries at a time.");
}
