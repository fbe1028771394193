"""OpenBLAS under MLX: the right kernel on every CPU, and idle threads that do not spin for long (core/blas.py).

Debian's OpenBLAS 0.3.21 falls back to a generic kernel on some newer CPUs; the package then forces the kernel
the CPU's instruction set calls for, before the library loads, unless the user chose one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rvc_ios_tools.core import blas

AVX512 = frozenset({"sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"})
AVX2 = frozenset({"sse2", "avx", "avx2", "fma"})
HAS_AVX512 = blas.AVX512_FLAGS <= blas.cpu_flags()
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenBLAS is loaded on Linux only")


@pytest.mark.parametrize(
    "core, flags, environment, expected",
    [
        ("Prescott", AVX512, {}, "SkylakeX"),
        ("Prescott", AVX2, {}, "Haswell"),
        ("Sandybridge", AVX2, {}, "Haswell"),  # AVX but no AVX2 kernels: still a miss on an AVX2 CPU
        ("Nehalem", AVX512, {}, "SkylakeX"),
        ("Haswell", AVX512, {}, "SkylakeX"),  # OpenBLAS picks SkylakeX or Cooperlake for AVX-512 CPUs it knows
        ("Prescott", frozenset({"sse2", "avx"}), {}, "Sandybridge"),
        ("Prescott", frozenset({"sse2", "sse3"}), {}, None),  # an old CPU: the fallback is right
        ("Cooperlake", AVX512, {}, None),
        ("SkylakeX", AVX512, {}, None),
        ("Zen", AVX2, {}, None),
        ("SomeFutureCore", AVX512, {}, None),  # unknown to this table: a newer OpenBLAS knows better
        ("Prescott", AVX512, {"OPENBLAS_CORETYPE": "Core2"}, None),  # the user's choice wins
    ],
)
def test_a_kernel_is_forced_only_for_a_generic_fallback_on_a_newer_cpu(core, flags, environment, expected):
    assert blas.forced_core_type(core, flags, environment) == expected


def test_cpu_flags_are_read_from_the_first_processor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: other\n")
    assert blas.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "fma"}
    assert blas.cpu_flags(tmp_path / "missing") == frozenset()


def kernel_in_child(**environment: str) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in (blas.CORETYPE_ENV, blas.PROBED_ENV, blas.ASSUME_CORE_ENV)}
    env.update(environment)
    code = "from rvc_ios_tools.core import blas; print(blas.kernel_description())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@linux_only
@pytest.mark.skipif(not HAS_AVX512, reason="this CPU has no AVX-512")
def test_on_an_avx512_cpu_the_kernel_in_use_is_not_a_generic_one():
    assert blas.openblas_loaded()
    assert blas.kernel_tier(blas.kernel_name()) == "AVX-512", blas.kernel_description()


@linux_only
@pytest.mark.skipif(not HAS_AVX512, reason="this CPU has no AVX-512")
def test_a_generic_fallback_is_replaced_by_the_skylakex_kernel_before_openblas_loads():
    line = kernel_in_child(**{blas.ASSUME_CORE_ENV: "Prescott"})
    assert line == ("OpenBLAS kernel SkylakeX (forced: OpenBLAS alone picked Prescott, a pre-AVX kernel, "
                    "on a CPU with AVX-512)"), line


@linux_only
def test_a_kernel_the_user_set_wins():
    line = kernel_in_child(**{blas.ASSUME_CORE_ENV: "Prescott", blas.CORETYPE_ENV: "Haswell"})
    assert line == "OpenBLAS kernel Haswell (set by OPENBLAS_CORETYPE)"


@linux_only
def test_verbose_names_the_kernel():
    env = {k: v for k, v in os.environ.items() if k != blas.CORETYPE_ENV}
    done = subprocess.run([sys.executable, "-m", "rvc_ios_tools.cli", "--verbose", "demo-model", "--list"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("OpenBLAS kernel "), done.stderr


def test_idle_threads_spin_briefly_only_while_openblas_initialises(monkeypatch):
    monkeypatch.delenv(blas.THREAD_TIMEOUT_ENV, raising=False)
    with blas.idle_threads_spinning_briefly():
        assert os.environ[blas.THREAD_TIMEOUT_ENV] == str(blas.IDLE_SPIN_LOG2_CYCLES)
    assert blas.THREAD_TIMEOUT_ENV not in os.environ  # child processes keep OpenBLAS's default


def test_a_thread_timeout_the_user_set_wins(monkeypatch):
    monkeypatch.setenv(blas.THREAD_TIMEOUT_ENV, "28")
    with blas.idle_threads_spinning_briefly():
        assert os.environ[blas.THREAD_TIMEOUT_ENV] == "28"
    assert os.environ[blas.THREAD_TIMEOUT_ENV] == "28"
