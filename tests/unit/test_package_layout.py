"""The package's shape: no import cycles, one file name per kind of job.

Every ``import`` statement counts, at module level, inside functions and under ``TYPE_CHECKING``
alike: a cycle hidden in a function is still a cycle a reader has to untangle. Registries that
import their registrants by name (`ocrserve.registry.Registry`) are not import statements, and are
how the registrants may import their registry without a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ocrserve"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: Iterable[str]) -> set[str]:
    """The ocrserve modules ``path`` imports anywhere in its body."""
    known = set(known)
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported_modules(path, mods) for name, path in mods.items()}


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    graph = import_graph()
    # A function-level import (the loader builds MMOCR predictors only when asked).
    assert "ocrserve.mmocr.mmocr_predictor" in graph["ocrserve.archives.loader"]
    assert "ocrserve.errors" in graph["ocrserve.registry"]


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _is_network_and_its_decoding(paths: list[Path]) -> bool:
    """An architecture's network (``mmocr/models/...``) and its decoding
    (``mmocr/pipelines/postprocess``) may share the architecture's name."""
    places = sorted(str(p.parent.relative_to(PACKAGE)) for p in paths)
    return (
        len(places) == 2
        and places[0].startswith("mmocr/models")
        and places[1] == "mmocr/pipelines/postprocess"
    )


def test_no_two_modules_share_a_file_name() -> None:
    files = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    counts = Counter(p.name for p in files)
    shared = {
        name: [p for p in files if p.name == name] for name, count in counts.items() if count > 1
    }
    clashes = {
        name: sorted(str(p.relative_to(PACKAGE)) for p in paths)
        for name, paths in shared.items()
        if not _is_network_and_its_decoding(paths)
    }
    assert not clashes, f"file names used for different jobs: {clashes}"


def test_feature_packages_exist() -> None:
    """The rooms the architecture names (docs/architecture.md)."""
    for package in ("server", "archives", "mmocr", "ppocr", "compare", "client"):
        assert (PACKAGE / package / "__init__.py").is_file(), package
    loose = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert loose == [
        "__init__",
        "__main__",
        "cli",
        "errors",
        "imaging",
        "ocrmypdf",
        "onnx_session",
        "options",
        "predictor",
        "registry",
        "settings",
        "torchserve_handler",
        "version",
    ]


def test_python_imports_the_package_from_a_clones_parent(tmp_path: Path) -> None:
    """``from ocrserve import Client`` beside a folder named ``ocrserve`` (a clone's parent).

    With the package at the repository root, the clone's folder was taken as a namespace package
    ahead of the editable install ("cannot import name 'Client' from 'ocrserve' (unknown
    location)"); under ``src/`` the install's path entry finds the real package first.
    """
    clone = tmp_path / "ocrserve"
    (clone / "src").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("[project]\nname = 'ocrserve'\n")
    code = "import ocrserve; from ocrserve import Client; print(ocrserve.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).name == "__init__.py", done.stdout
