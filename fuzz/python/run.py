#!/usr/bin/env python3
"""Run one Python fuzz target with atheris (libFuzzer): `run.py TARGET SECONDS [LIBFUZZER_FLAG ...]`.

`run.py --list` prints the target names, one a line. Each target's work folder is build/fuzz/TARGET/ (ignored
by git): `seeds/` (written once by the target from committed fixtures and the demo builders), `corpus/` (what
the fuzzer found interesting, kept between runs), `findings/` (the input of every crash, timeout or
out-of-memory) and `last-run.log` (libFuzzer's full output). The exit status is non-zero when the run found
anything; the inputs are kept in findings/ and their paths printed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = Path(os.environ.get("RVC_FUZZ_WORK", REPO / "build" / "fuzz"))

# target name -> the file in fuzz/python/ that fuzzes it
TARGETS = {
    "py-voice-checkpoint": "voice_checkpoint.py",
    "py-rmvpe-checkpoint": "rmvpe_checkpoint.py",
    "py-hubert-fairseq": "hubert_fairseq.py",
    "py-hubert-transformers": "hubert_transformers.py",
    "py-faiss": "faiss_index.py",
    "py-wav": "wav.py",
    "py-inputs-file": "inputs_file.py",
    "py-golden-set": "golden_set.py",
}

# Per-input limits: a reader that takes longer than this on one input, or grows the process past the RSS
# limit, is a finding. (harness.py caps single allocations separately; see its docstring.)
TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 2048
MALLOC_LIMIT_MB = 1024

STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.MULTILINE)


def write_seeds(target: str, seeds: Path) -> None:
    if seeds.is_dir() and any(seeds.iterdir()):
        return
    print(f"{target}: writing seeds to {seeds}", flush=True)
    subprocess.run([sys.executable, str(HERE / TARGETS[target]), "--write-seeds", str(seeds)], check=True)


def run_target(target: str, seconds: int, extra_flags: list[str]) -> int:
    work = WORK / target
    seeds, corpus, findings = work / "seeds", work / "corpus", work / "findings"
    write_seeds(target, seeds)
    for folder in (corpus, findings):
        folder.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    command = [
        sys.executable, str(HERE / TARGETS[target]), str(corpus), str(seeds),
        f"-max_total_time={seconds}", f"-timeout={TIMEOUT_SECONDS}", f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-malloc_limit_mb={MALLOC_LIMIT_MB}", f"-artifact_prefix={findings}/", "-print_final_stats=1",
        *extra_flags,
    ]
    log = work / "last-run.log"
    started = time.monotonic()
    with open(log, "w") as output:
        status = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, cwd=work).returncode
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    stats = {name: int(value) for name, value in STAT.findall(text)}
    new_findings = sorted(set(findings.iterdir()) - before)
    executions = stats.get("number_of_executed_units", 0)
    print(f"{target}: {executions} executions in {elapsed:.0f} s ({stats.get('average_exec_per_sec', 0)} exec/s), "
          f"peak RSS {stats.get('peak_rss_mb', 0)} MB, corpus {len(list(corpus.iterdir()))} inputs, "
          f"{len(new_findings)} finding(s); log {log}")
    if status != 0 or new_findings:
        # The traceback or libFuzzer's report ends the log, before the final stats.
        report = [line for line in text.splitlines() if not line.startswith("stat::")][-60:]
        print("\n".join(report), file=sys.stderr)
        for path in new_findings:
            print(f"{target}: finding kept in {path}", file=sys.stderr)
        return status or 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the target names, one a line")
    parser.add_argument("target", nargs="?", choices=sorted(TARGETS), metavar="TARGET")
    parser.add_argument("seconds", nargs="?", type=int, metavar="SECONDS")
    parser.add_argument("libfuzzer_flags", nargs=argparse.REMAINDER, metavar="LIBFUZZER_FLAG",
                        help="passed on, e.g. -runs=1000000 (then SECONDS only bounds it)")
    args = parser.parse_args()
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.target is None or args.seconds is None:
        parser.error("give TARGET and SECONDS, or --list")
    return run_target(args.target, args.seconds, args.libfuzzer_flags)


if __name__ == "__main__":
    sys.exit(main())
