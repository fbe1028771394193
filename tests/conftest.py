"""Shared fixtures: demo voices built once per session from the upstream RVC model code."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvc_ios_tools.voice.demo import write_demo_voice


@pytest.fixture(scope="session")
def voice_file(tmp_path_factory):
    """`voice_file(preset, flavor="rvc-webui", seed=0)` -> path of a cached demo voice."""
    cache: dict[tuple[str, str, int], Path] = {}
    folder = tmp_path_factory.mktemp("voices")

    def make(preset: str, flavor: str = "rvc-webui", seed: int = 0) -> Path:
        key = (preset, flavor, seed)
        if key not in cache:
            path = folder / f"{preset}-{flavor}-{seed}.pth"
            write_demo_voice(path, preset, seed, flavor)
            cache[key] = path
        return cache[key]

    return make
