#!/usr/bin/env bash
# Fuzzing of every reader of files that come from strangers: the Swift readers with libFuzzer (Demos/Fuzz/,
# one instrumented binary holding every target) and the Python readers with atheris (fuzz/python/run.py).
#   bash scripts/fuzz.sh TARGET SECONDS [LIBFUZZER_ARGS...]   one target; SECONDS 0 = no time limit (e.g. -runs=1000000)
#   bash scripts/fuzz.sh all SECONDS                          every Swift target, then every Python target
#   bash scripts/fuzz.sh swift|python SECONDS                 every target of one language
#   bash scripts/fuzz.sh list                                 the target names
# TARGET names beginning with py- are Python targets. The Swift binary is built (into Demos/.build-fuzz/, ignored
# by git) when missing or older than the library's or the targets' sources. Each Swift target's corpus grows in
# Demos/.build-fuzz/corpus/TARGET, seeded from the committed fixtures on every run (Demos/Fuzz/seed_corpora.py).
# A crash, a hang, an out-of-memory or a reader throwing anything but the library's errors exits non-zero
# and keeps the input in Demos/.build-fuzz/crashes/TARGET/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="$repo/Demos/.build-fuzz"
binary="$out/rvc-fuzz"
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3

usage() { echo "usage: bash scripts/fuzz.sh TARGET|all SECONDS [LIBFUZZER_ARGS...] | list" >&2; exit 2; }

build_swift() {
  if [ -x "$binary" ] && [ -z "$(find Demos/Sources/RVCNative Demos/Fuzz -name '*.swift' -newer "$binary" -print -quit)" ] \
      && [ ! scripts/fuzz.sh -nt "$binary" ]; then
    return
  fi
  echo "==> building $binary (swiftc -sanitize=fuzzer,address, library + Demos/Fuzz in one module)" >&2
  # Compiled from a snapshot: the sources may be edited while a build of several minutes runs.
  rm -rf "$out/src" && mkdir -p "$out/src"
  cp -R Demos/Sources/RVCNative Demos/Fuzz "$out/src/"
  local files=()
  while IFS= read -r -d '' file; do files+=("$file"); done < <(find "$out/src" -name '*.swift' -print0 | sort -z)
  # As Package.swift builds the library on Linux: OpenBLAS through the COpenBLAS module map, Swift 5 mode.
  # -O keeps Swift's overflow and bounds checks (only -Ounchecked drops them).
  swiftc -swift-version 5 -parse-as-library -module-name RVCNativeFuzz -O -g \
    -sanitize=fuzzer,address \
    -I Demos/Sources/COpenBLAS $(pkg-config --cflags openblas | sed 's/-I/-Xcc -I/g') \
    $(pkg-config --libs openblas) \
    "${files[@]}" -o "$binary.tmp" 2> >(grep -v "Cannot export local symbol '__asan" >&2)
  mv "$binary.tmp" "$binary"
}

# The seeds, fresh from the committed fixtures; strict weight loading's from micro models exported once by the
# Python toolchain (Demos/Fuzz/micro_models.py), or from the fixtures when it cannot run.
write_seeds() {
  local micro="$out/micro-models"
  if [ ! -f "$micro/.complete" ]; then
    rm -rf "$micro"
    if "$python" Demos/Fuzz/micro_models.py "$micro" >/dev/null 2>"$out/micro-models.log"; then
      touch "$micro/.complete"
    else
      echo "note: no micro models (see $out/micro-models.log); the weights target is seeded from the fixtures" >&2
    fi
  fi
  "$python" Demos/Fuzz/seed_corpora.py "$out/seeds" $([ -f "$micro/.complete" ] && echo "$micro") >/dev/null
}

swift_targets() { RVC_FUZZ_TARGET=list "$binary"; }
python_targets() { "$python" fuzz/python/run.py --list; }

run_swift() {
  local target="$1" seconds="$2"
  shift 2
  local corpus="$out/corpus/$target" seeds="$out/seeds" crashes="$out/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  echo "==> fuzz $target for ${seconds}s (corpus $corpus, crashes kept in $crashes)" >&2
  # -malloc_limit_mb: a reader allocating a claimed size before checking it against the file is a finding.
  # -timeout: any one input taking seconds is a hang. libFuzzer's leak check stays on: an input whose run
  # leaves memory allocated is a finding too.
  # malloc_context_size=0: recording every allocation's stack is a fifth of an input's time; a crash input is
  # replayed with full stacks by running the binary on it (printed below). SWIFT_BACKTRACE: the Swift
  # runtime's own crash backtracer would take minutes reading memory under ASan; libFuzzer's report suffices.
  local dictionary="Demos/Fuzz/json.dict"
  [ "$target" = wav ] && dictionary="Demos/Fuzz/wav.dict"
  local status=0
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-malloc_context_size=0}" RVC_FUZZ_TARGET="$target" "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$crashes/" -dict="$dictionary" \
    "$@" "$corpus" "$seeds/$target" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "fuzz $target FAILED (exit $status); inputs kept in $crashes:" >&2
    ls -1 "$crashes" >&2
    echo "replay one: SWIFT_BACKTRACE=enable=no RVC_FUZZ_TARGET=$target $binary $crashes/<file>" >&2
  fi
  return "$status"
}

[ $# -ge 1 ] || usage
target="$1"
case "$target" in
  list)
    build_swift
    swift_targets
    python_targets
    ;;
  py-*)
    [ $# -eq 2 ] || usage
    exec "$python" fuzz/python/run.py "$target" "$2"
    ;;
  all|swift|python)
    [ $# -eq 2 ] || usage
    failed=()
    if [ "$target" != python ]; then
      build_swift
      write_seeds
      for name in $(swift_targets); do run_swift "$name" "$2" || failed+=("$name"); done
    fi
    if [ "$target" != swift ]; then
      for name in $(python_targets); do "$python" fuzz/python/run.py "$name" "$2" || failed+=("$name"); done
    fi
    if [ "${#failed[@]}" -gt 0 ]; then
      echo "fuzz targets that failed: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  *)
    [ $# -ge 2 ] || usage
    build_swift
    swift_targets | grep -qx "$target" || { echo "no fuzz target \`$target\`; see \`bash scripts/fuzz.sh list\`" >&2; exit 2; }
    write_seeds
    run_swift "$@"
    ;;
esac
