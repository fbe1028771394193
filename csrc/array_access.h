// What the MLX operations here share: argument messages and reading an array's values in row-major order.
#pragma once

#include <string>
#include <vector>

#include "mlx/array.h"
#include "mlx/backend/cpu/encoder.h"

namespace rvc {

namespace mx = mlx::core;

// "(2, 3)", "(5,)": a shape as Python prints it, for error messages.
std::string shape_text(const mx::array& a);

// Throws std::invalid_argument (ValueError in Python) "<operation>: <message>" unless `condition`.
void require_argument(bool condition, const char* operation, const std::string& message);

// The float32 array's values in row-major order: its own buffer when it is already laid out so (the usual
// case), else a packed copy in `buffer`.
const float* row_major(const mx::array& a, std::vector<float>& buffer);

// Whether `output` may take over `input`'s buffer (nothing else holds it, and it is laid out row-major),
// as MLX's own elementwise operations reuse their inputs' buffers.
bool can_donate(const mx::array& input);

// Gives `output` the buffer of `input` (of the same shape) when it can be donated, else a new one.
void reuse_or_allocate(const mx::array& input, mx::array& output);

// The stream's command encoder, told about `inputs` and `output` so their buffers live until the task
// dispatched next has run.
mx::cpu::CommandEncoder& encoder_keeping(mx::Stream stream, const std::vector<mx::array>& inputs, mx::array& output);

}  // namespace rvc
