#include "openblas.h"

#include <dlfcn.h>

#include <cstring>
#include <stdexcept>

namespace rvc {

namespace {

OpenBlas resolve_openblas() {
  // rvc_ios_tools.blas loads OpenBLAS with RTLD_GLOBAL before mlx, so its symbols are in the global scope.
  // cblas_sgemm is taken from the very library that defines openblas_set_num_threads: the global scope
  // may also hold other BLAS libraries, and MLX's wheel bundles a reference BLAS of its own.
  void* set_threads = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (set_threads == nullptr) {
    throw std::runtime_error(
        "OpenBLAS is not loaded in this process: import rvc_ios_tools.blas before mlx, and install the "
        "Debian package libopenblas0-pthread");
  }
  Dl_info info{};
  if (dladdr(set_threads, &info) == 0 || info.dli_fname == nullptr) {
    throw std::runtime_error("cannot tell which library provides openblas_set_num_threads");
  }
  void* library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) {
    throw std::runtime_error(std::string("cannot reopen ") + info.dli_fname);
  }
  OpenBlas blas;
  blas.sgemm = reinterpret_cast<CblasSgemm>(dlsym(library, "cblas_sgemm"));
  blas.get_num_threads = reinterpret_cast<OpenblasGetNumThreads>(dlsym(library, "openblas_get_num_threads"));
  blas.set_num_threads = reinterpret_cast<OpenblasSetNumThreads>(set_threads);
  auto get_config = reinterpret_cast<const char* (*)()>(dlsym(library, "openblas_get_config"));
  if (blas.sgemm == nullptr || blas.get_num_threads == nullptr) {
    throw std::runtime_error(std::string(info.dli_fname) + " lacks cblas_sgemm or openblas_get_num_threads");
  }
  if (get_config != nullptr && std::strstr(get_config(), "USE64BITINT") != nullptr) {
    throw std::runtime_error(std::string(info.dli_fname) + " is a 64-bit-integer OpenBLAS build; the kernel "
                             "expects the 32-bit interface of libopenblas0-pthread");
  }
  return blas;
}

}  // namespace

const OpenBlas& find_openblas() {
  static const OpenBlas blas = resolve_openblas();
  return blas;
}

}  // namespace rvc
