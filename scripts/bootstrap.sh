#!/usr/bin/env bash
# One entry point for a fresh machine: install everything, then run the main job or the whole test suite.
#   bash scripts/bootstrap.sh demo   # set up, then `rvc-ios parity` on the embedded full-size demo voice
#   bash scripts/bootstrap.sh test   # set up, then pytest (default + full-size set), swift build/test, fuzz smoke
#                                    # runs and the end-to-end parity
#   bash scripts/bootstrap.sh sanitize  # set up, then the sanitizer jobs: swift test under ASan and TSan, the
#                                    # native MLX extension under ASan + UBSan (about 10 minutes more)
set -euo pipefail

mode="${1:-}"
case "$mode" in
  demo|test|sanitize|setup) ;;
  *) echo "usage: bash scripts/bootstrap.sh demo|test|sanitize|setup" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$repo/.venv"

say() { printf '\n==> %s\n' "$*"; }

# --- Debian packages: OpenBLAS for the MLX reference (loaded before mlx) and for the Swift package; g++ for
# the MLX reference's native Conv1d kernel (csrc/, built by pip); espeak-ng and sox for the content encoder's
# test speech. -------------------------------------------------------------------------------------------------
need_apt=()
for pkg in libopenblas-dev libopenblas0-pthread g++ espeak-ng sox; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- Python environment. torch==2.13.0 exactly: its CPU wheel is on these machines. ------------------------
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.rvc-ios-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ -n "$(find csrc -newer "$stamp" -print -quit)" ]; then
  say "pip install -e .[test,coreml] (torch==2.13.0 CPU, mlx, the native Conv1d kernel, coremltools 9.0, ...)"
  # Here the kernel must build: a failed build stops the set-up with the compiler's message.
  RVC_IOS_REQUIRE_NATIVE=1 "$venv/bin/pip" install -q -e ".[test,coreml]"
  # The upstream RVC-Project code is the ground truth in tests and builds the demo voices. Its own
  # dependency list is the whole training UI, so it is installed without dependencies.
  "$venv/bin/pip" install -q --no-deps "rvc==0.3.5"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"

# --- Swift package. -----------------------------------------------------------------------------------------
build_swift() {
  say "swift build -c release (Demos)"
  (cd Demos && swift build -c release --product RVCNativeMac 2>&1 | tail -n 3)
}

case "$mode" in
  setup)
    build_swift
    ;;
  sanitize)
    # Kept out of `test` so that stays well under 20 minutes; each job exits non-zero on any report.
    say "swift test under AddressSanitizer"
    bash scripts/sanitize_swift.sh address
    say "swift test under ThreadSanitizer"
    bash scripts/sanitize_swift.sh thread
    say "the native MLX extension under AddressSanitizer + UndefinedBehaviorSanitizer"
    bash scripts/sanitize_native.sh
    ;;
  demo)
    build_swift
    say "rvc-ios parity (embedded full-size demo voice: export, golden, Swift chained + teacher-forced, diff)"
    rvc-ios parity
    # A conversion with the same voice and seeded full-size RMVPE, content encoder and index, laid out where RVC
    # WebUI keeps them, on speech espeak-ng reads; then upstream's own pipeline on it, replayed and diffed.
    out="$repo/demo-out"
    mkdir -p "$out"
    [ -f assets/rmvpe/rmvpe.pt ] || rvc-ios demo-model --rmvpe --output-dir assets/rmvpe
    [ -d assets/hubert/rvc-ios-demo-hubert ] || rvc-ios demo-model --hubert huggingface --output-dir assets/hubert --name rvc-ios-demo-hubert
    ls assets/weights/added_*_rvc-ios-demo_v2.index >/dev/null 2>&1 || rvc-ios demo-model --index-for rvc-ios-demo --output-dir assets/weights
    espeak-ng -v en-us -s 160 -w "$out/speech.wav" "Voice conversion on a phone: every stage of the port is held to the original, one layer at a time."
    say "rvc-ios convert (speech -> the demo voice; every stage as a golden set)"
    rvc-ios convert --model-name rvc-ios-demo --input "$out/speech.wav" --output "$out/out.wav" \
      --hubert assets/hubert/rvc-ios-demo-hubert --golden "$out/golden"
    say "upstream's own pipeline (rvc 0.3.5) on the same speech, its draws replayed into the reference, diffed"
    rvc-ios capture-upstream --model-name rvc-ios-demo --input "$out/speech.wav" --hubert assets/hubert/rvc-ios-demo-hubert \
      --rmvpe assets/rmvpe/rmvpe.pt --index "$(ls assets/weights/added_*_rvc-ios-demo_v2.index)" --output "$out/upstream"
    rvc-ios convert --model-name rvc-ios-demo --input "$out/speech.wav" --output "$out/out-replay.wav" \
      --hubert assets/hubert/rvc-ios-demo-hubert --noise "$out/upstream/noise.safetensors" --golden "$out/golden-replay" -q
    # int16 is held to equality and lands a few LSB apart (README, "Known gaps"), so a failing table is shown, not fatal.
    rvc-ios golden diff "$out/golden-replay" "$out/upstream/upstream.safetensors" || true
    echo "converted: $out/out.wav"
    ;;
  test)
    # The release binary first: the corrupt-input matrix (tests/test_corrupt_input_matrix.py) drives it.
    build_swift
    say "pytest (default set)"
    python -m pytest
    say "pytest -m slow (full-size voices)"
    python -m pytest -m slow || [ $? -eq 5 ]
    say "swift build + swift test (Demos)"
    (cd Demos && swift build && swift test)
    # Hostile input: a short smoke run of every fuzz target (Swift with libFuzzer, Python with atheris); the
    # long runs are in the README. Then the sanitizer jobs.
    say "fuzz smoke: every Swift and Python target, ${RVC_IOS_FUZZ_SMOKE_SECONDS:-5} s each"
    bash scripts/fuzz.sh all "${RVC_IOS_FUZZ_SMOKE_SECONDS:-5}"
    # The main job end to end: the full-size demo voice through export, golden, the release Swift build
    # (chained and teacher-forced) and the diff; exits non-zero if any stage is below its floor.
    say "rvc-ios parity (end to end, full-size demo voice)"
    rvc-ios parity --work-dir "$repo/parity-out" > "$repo/parity-out.log" 2>&1 || { cat "$repo/parity-out.log"; exit 1; }
    grep -E "^(chained|teacher-forced):" "$repo/parity-out.log"
    ;;
esac
