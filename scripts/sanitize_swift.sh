#!/usr/bin/env bash
# The Swift package's tests under a sanitizer: AddressSanitizer (out-of-bounds reads and writes, use after
# free) or ThreadSanitizer (data races in the parallel convolutions, searches and checksums of ParallelWork).
#   bash scripts/sanitize_swift.sh address|thread
# Builds into Demos/.build-sanitize-<sanitizer>/ (ignored by git; SANITIZE_SCRATCH_PATH overrides it), so it
# never disturbs the plain build in Demos/.build/. Exits non-zero on a failing test or a sanitizer report.
set -euo pipefail

sanitizer="${1:-}"
case "$sanitizer" in
  address|thread) ;;
  *) echo "usage: bash scripts/sanitize_swift.sh address|thread" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/Demos"
scratch="${SANITIZE_SCRATCH_PATH:-$repo/Demos/.build-sanitize-$sanitizer}"

# A report fails the run (halt_on_error) instead of scrolling past. ASan's leak check is off: at exit it
# reports what the test process keeps for its whole life, none of it the library's own: XCTest's runner's
# suite objects, a weak reference inside Foundation's Process, a test's static GoldenSet. (The fuzz targets,
# which run the readers alone, keep libFuzzer's leak check on and are clean.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

# Under a sanitizer each whole conversion of a tiny golden takes a minute or more, so the tests that run the
# whole pipeline again and again are left out: every reader, layer, model and stage runner is still run,
# parallel code included (every voice's stages in GoldenParityTests, RMVPE, the content encoder, the index
# search, the manifest checksums). What is left out composes those parts: Converter's end-to-end conversions,
# the chunked synthesis and the pipeline golden's chained and teacher-forced stage tables.
skipped=(
  'ConverterTests/withTheReferencesNoiseFile'
  'ConverterTests/aDrawTheNoiseFileLacksComesFromTheSeed'
  'ConverterTests/theSameSeedGivesTheSameAudio'
  'ConverterTests/retrievalReplacesTheFeatures'
  'ConverterTests/otherRatesAreResampled'
  'GoldenParityTests/chunkedSynthesis'
  'PipelineStageRunnerTests/chainedEveryStage'
  'PipelineStageRunnerTests/teacherForcedEveryStage'
)
skip_pattern="$(IFS='|'; echo "${skipped[*]}")"

swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"
swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" --skip "$skip_pattern"
