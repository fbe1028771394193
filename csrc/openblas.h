// The OpenBLAS entry points the convolution uses, found at run time in the library rvc_ios_tools.blas
// loaded into the process, so the kernel and MLX's own matmuls share one OpenBLAS and one thread setting.
#pragma once

#include <string>

namespace rvc {

enum CblasOrder { CblasRowMajor = 101 };
enum CblasTranspose { CblasNoTrans = 111, CblasTrans = 112 };

// Debian's libopenblas0-pthread uses 32-bit integers (not the USE64BITINT build); `find_openblas` checks.
using CblasSgemm = void (*)(
    int order, int transpose_a, int transpose_b, int m, int n, int k, float alpha,
    const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
using OpenblasGetNumThreads = int (*)();
using OpenblasSetNumThreads = void (*)(int);

struct OpenBlas {
  CblasSgemm sgemm = nullptr;
  OpenblasGetNumThreads get_num_threads = nullptr;
  OpenblasSetNumThreads set_num_threads = nullptr;
};

// Resolves the entry points once; throws std::runtime_error saying what is missing.
const OpenBlas& find_openblas();

}  // namespace rvc
