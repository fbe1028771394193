"""The package's layout as the README states it: a core, one subpackage per network, no import circles.

Every import counts, the lazy ones inside functions too: a circle through a lazy import still ties two modules
together, and a network importing another network still makes one depend on the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rvc_ios_tools"
NETWORKS = ("voice", "rmvpe", "hubert", "index")
# Top-level modules that compose networks (the CLI and the kind -> stage table map).
COMPOSITION_ROOTS = ("rvc_ios_tools.cli", "rvc_ios_tools.kinds")
# Subpackages that compose networks (the conversion and the Core ML export run several): they may import any
# network; neither a network nor the core imports them.
COMPOSING_PACKAGES = ("coreml", "pipeline")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Package modules `path` imports anywhere in its body (relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rvc_ios_tools"):
                continue
            for alias in node.names:  # `from . import blas` names a module; `from .x import f` names a symbol
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("rvc_ios_tools"))
    return {name for name in found if name in MODULES}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def network_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in NETWORKS else None


def test_every_network_is_a_subpackage_of_the_same_shape():
    for network in NETWORKS:
        folder = PACKAGE / network
        assert (folder / "__init__.py").is_file()
        for concern in ("convert.py", "reference.py", "golden.py", "upstream.py", "demo.py", "stages.py"):
            assert (folder / concern).is_file(), f"{network}/ lacks {concern}"


def test_no_module_is_left_flat_beside_the_subpackages():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "cli.py", "kinds.py"]


def test_the_core_imports_no_network():
    for name, imports in GRAPH.items():
        if name == "rvc_ios_tools.core" or name.startswith("rvc_ios_tools.core."):
            assert not {network_of(m) for m in imports} - {None}, f"{name} imports a network: {sorted(imports)}"


def test_a_network_imports_the_core_and_itself_only():
    for name, imports in GRAPH.items():
        network = network_of(name)
        if network is None:
            continue
        others = {m for m in imports if network_of(m) not in (None, network)}
        assert not others, f"{name} imports another network: {sorted(others)}"
        roots = {m for m in imports if m in COMPOSITION_ROOTS}
        assert not roots, f"{name} imports a composition root: {sorted(roots)}"


def test_no_network_or_core_module_imports_a_composing_package():
    for name, imports in GRAPH.items():
        if network_of(name) is None and not (name == "rvc_ios_tools.core" or name.startswith("rvc_ios_tools.core.")):
            continue
        composing = {m for m in imports if m.split(".")[1:2] and m.split(".")[1] in COMPOSING_PACKAGES}
        assert not composing, f"{name} imports a composing package: {sorted(composing)}"


def test_there_are_no_import_circles():
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, "import circle: " + " -> ".join(visiting[visiting.index(name):] + [name])
        visiting.append(name)
        for dependency in sorted(GRAPH[name]):
            if dependency != "rvc_ios_tools":  # the package root only loads OpenBLAS (core.blas)
                visit(dependency)
        visiting.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)
