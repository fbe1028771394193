"""Builds the optional C++ Conv1d kernel (`csrc/`) as `rvc_ios_tools.core._native_conv`; all other metadata is in
pyproject.toml.

The kernel is a custom MLX primitive, compiled with CMake against the headers and libmlx.so of the mlx and
mlx-cpu wheels (pinned in [build-system] to the runtime version) and bound with nanobind 3.1.0, the release
whose internals ABI matches the one mlx 0.32.4 was built with, so `mx.array` passes between the modules.

Linux only (the kernel calls OpenBLAS; macOS has Metal). If the build fails, for instance without a C++20
compiler, installation goes on without it and `rvc_ios_tools.core.native_conv.available()` is False; set
RVC_IOS_REQUIRE_NATIVE=1 to make a failed build an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"


REQUIRE_NATIVE = os.environ.get("RVC_IOS_REQUIRE_NATIVE") == "1"


class CMakeExtension(Extension):
    def __init__(self, name: str, source_dir: Path):
        # Optional: setuptools then installs the package even when the module file was not produced.
        super().__init__(name, sources=[], optional=not REQUIRE_NATIVE)
        self.source_dir = source_dir


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            super().build_extension(ext)
            return
        try:
            self.build_with_cmake(ext)
        except (OSError, subprocess.CalledProcessError, ImportError) as error:
            if REQUIRE_NATIVE:
                raise
            print(
                f"warning: the native Conv1d kernel was not built ({error}); rvc_ios_tools works without it, "
                "more slowly. Set RVC_IOS_REQUIRE_NATIVE=1 to see this as an error.",
                file=sys.stderr,
            )

    def build_with_cmake(self, ext: CMakeExtension) -> None:
        import mlx  # the build environment's, pinned like the runtime one

        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ext.source_dir), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DMLX_DIR={Path(mlx.__path__[0]) / 'share' / 'cmake' / 'MLX'}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={build_dir / 'lib'}",
        ]
        if shutil.which("ninja") and "CMAKE_GENERATOR" not in os.environ:
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 1)], check=True)
        # nanobind names the file for the interpreter (or abi3 under the stable ABI); setuptools expects
        # its own name for the extension.
        built = [path for path in (build_dir / "lib").iterdir() if path.name.startswith("_native_conv.")]
        if len(built) != 1:
            raise OSError(f"expected one _native_conv library in {build_dir / 'lib'}, found {built}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(
    ext_modules=[CMakeExtension("rvc_ios_tools.core._native_conv", SOURCE_DIR)] if sys.platform.startswith("linux") else [],
    cmdclass={"build_ext": CMakeBuild},
)
