#!/usr/bin/env bash
# The native C++ MLX extension (csrc/) under AddressSanitizer and UndefinedBehaviorSanitizer (issue 15, part 3).
#
# Builds csrc/ as setup.py does (same CMakeLists.txt, mlx and nanobind), with -fsanitize=address,undefined, into
# build/sanitize/ (ignored by git; the installed rvc_ios_tools/core/_native_conv*.so is left alone), then runs the
# tests that go through the kernels with that build loaded (RVC_IOS_NATIVE_MODULE_PATH, read by
# rvc_ios_tools/core/native_conv.py) and libasan preloaded into Python. Any ASan or UBSan report stops the run
# with a non-zero exit.
#
# Usage: scripts/sanitize_native.sh [PYTEST_ARGS...]   (default: the tests in SANITIZED_TESTS below)
# Environment: PYTHON (default .venv/bin/python, else python3), JOBS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
BUILD=build/sanitize
TOOLS=$BUILD/tools
JOBS=${JOBS:-$(nproc)}
# The kernels' own tests, and parity tests whose models run on them: the synthesizer's decoder (Conv1d tiles,
# Winograd), RMVPE (the BiGRU recurrence) and the content encoder (strided and grouped Conv1d, GELU,
# GroupNorm, attention). The full-size networks' parity tests are left out: under ASan they take 3.5 of the
# 5.5 minutes and run the same kernels at larger sizes, which test_native_conv.py covers shape by shape.
# Give test paths (and `-k` ...) as arguments to run others, e.g. those four files unfiltered.
SANITIZED_TESTS=(tests/test_native_conv.py tests/test_rmvpe_parity.py tests/test_hubert_parity.py
                 tests/test_models_parity.py -k "not full")

started=$(date +%s)

# cmake, ninja and the nanobind setup.py builds with (pyproject's [build-system]), in a folder of their own
# rather than the project's environment.
if [ ! -x "$TOOLS/bin/cmake" ] || ! PYTHONPATH=$TOOLS "$PYTHON" -c "import nanobind" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet --target "$TOOLS" "cmake>=3.24" ninja nanobind==3.1.0
fi

SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
MLX_DIR=$("$PYTHON" -c "import mlx, pathlib; print(pathlib.Path(mlx.__path__[0]) / 'share' / 'cmake' / 'MLX')")
PYTHONPATH=$TOOLS "$TOOLS/bin/cmake" -S csrc -B "$BUILD/cmake" -G Ninja \
    -DCMAKE_MAKE_PROGRAM="$PWD/$TOOLS/bin/ninja" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$SANITIZE" \
    -DCMAKE_MODULE_LINKER_FLAGS="$SANITIZE" \
    -DCMAKE_SHARED_LINKER_FLAGS="$SANITIZE" \
    -DPython_EXECUTABLE="$(command -v "$PYTHON" || echo "$PYTHON")" \
    -DMLX_DIR="$MLX_DIR" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/$BUILD/lib" >"$BUILD/configure.log"
PYTHONPATH=$TOOLS "$TOOLS/bin/cmake" --build "$BUILD/cmake" --parallel "$JOBS" >"$BUILD/build.log" \
    || { tail -40 "$BUILD/build.log"; exit 1; }
module=$(ls "$BUILD"/lib/_native_conv.*.so)
built=$(date +%s)

# ASan's runtime must come first in the process, before Python loads the instrumented module; libstdc++ right
# after it, or ASan's `__cxa_throw` interceptor finds no real one to call (Python itself does not link it) and
# the first C++ exception (a ValueError for bad arguments) stops the run.
export LD_PRELOAD
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
# CPython and torch keep their allocations until exit by design: leak reports would be theirs, not the kernels'.
# Reports go to files: pytest captures the test process's stderr, and a report that halts it would go with it.
reports=$BUILD/reports
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:log_path=$PWD/$reports/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$PWD/$reports/ubsan
export RVC_IOS_NATIVE_MODULE_PATH=$PWD/$module

# The tests skip when the kernels are unavailable; here that would pass without checking anything.
"$PYTHON" -c "
from rvc_ios_tools.core import native_conv
assert native_conv.available(), native_conv.unavailable_reason()
assert native_conv._native_conv.__file__ == '$PWD/$module', native_conv._native_conv.__file__
"
[ $# -gt 0 ] || set -- "${SANITIZED_TESTS[@]}"
status=0
# LD_PRELOAD is dropped once Python has started with it: the tests' own subprocesses (espeak-ng and sox make
# the content encoder's test speech) are not under test, and espeak-ng hangs with ASan preloaded.
"$PYTHON" -c 'import os, sys, pytest; os.environ.pop("LD_PRELOAD"); sys.exit(pytest.main(sys.argv[1:]))' \
    -q -p no:cacheprovider --durations=5 "$@" || status=$?
finished=$(date +%s)
if compgen -G "$reports/*" >/dev/null; then
    echo "sanitize_native: sanitizer reports (kept in $reports):"
    cat "$reports"/*
    status=${status/#0/1}
fi
echo "sanitize_native: built $module in $((built - started)) s; tests $((finished - built)) s; exit $status"
exit $status
