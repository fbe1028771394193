#include "array_access.h"

#include <sstream>
#include <stdexcept>

namespace rvc {

std::string shape_text(const mx::array& a) {
  std::ostringstream text;
  text << "(";
  for (size_t i = 0; i < a.ndim(); ++i) {
    text << (i ? ", " : "") << a.shape(i);
  }
  text << (a.ndim() == 1 ? ",)" : ")");
  return text.str();
}

void require_argument(bool condition, const char* operation, const std::string& message) {
  if (!condition) {
    throw std::invalid_argument(std::string(operation) + ": " + message);
  }
}

const float* row_major(const mx::array& a, std::vector<float>& buffer) {
  const float* source = a.data<float>();
  if (a.flags().row_contiguous) {
    return source;
  }
  buffer.resize(a.size());
  std::vector<int64_t> index(a.ndim(), 0);
  for (size_t flat = 0; flat < a.size(); ++flat) {
    int64_t offset = 0;
    for (size_t d = 0; d < a.ndim(); ++d) {
      offset += index[d] * a.strides(d);
    }
    buffer[flat] = source[offset];
    for (int d = static_cast<int>(a.ndim()) - 1; d >= 0; --d) {
      if (++index[d] < a.shape(d)) {
        break;
      }
      index[d] = 0;
    }
  }
  return buffer.data();
}

bool can_donate(const mx::array& input) {
  return input.is_donatable() && input.flags().row_contiguous;
}

void reuse_or_allocate(const mx::array& input, mx::array& output) {
  if (can_donate(input)) {
    output.copy_shared_buffer(input);
  } else {
    output.set_data(mx::allocator::malloc(output.nbytes()));
  }
}

mx::cpu::CommandEncoder& encoder_keeping(mx::Stream stream, const std::vector<mx::array>& inputs, mx::array& output) {
  auto& encoder = mx::cpu::get_command_encoder(stream);
  for (const auto& input : inputs) {
    encoder.set_input_array(input);
  }
  encoder.set_output_array(output);
  return encoder;
}

}  // namespace rvc
