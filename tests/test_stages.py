"""The package's stages stack: value types at the bottom, no circle anywhere, and the lowest
stages (media/, live/) reach nothing above them. Read from the sources' imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "shelfsight"
# What each low stage may import of shelfsight's (besides itself).
MAY_USE = {
    "core": {"errors"},
    "media": {"core", "errors"},
    "live": {"core", "errors"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """The shelfsight modules `path` imports, at any depth in the file (types-only too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {name for name in out if name in known}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle in `graph`, if there is any (depth-first search)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph = {m: {d for d in deps if d != "shelfsight"} for m, deps in _graph().items()}
    assert _cycle(graph) is None


def test_no_circle_between_stages() -> None:
    stages: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        stages.setdefault(_stage(module), set()).update(
            _stage(d) for d in deps if _stage(d) not in ("", _stage(module))
        )
    assert _cycle(stages) is None, stages


def test_the_lowest_stages_reach_nothing_above_them() -> None:
    for module, deps in _graph().items():
        stage = _stage(module)
        if stage in MAY_USE:
            above = {d for d in deps if _stage(d) not in MAY_USE[stage] | {stage, ""}}
            assert not above, f"{module} imports {sorted(above)}"


def test_the_link_loads_without_opencv() -> None:
    """The value types the link shares with media live at the bottom, free of OpenCV."""
    code = "import sys, shelfsight.live.link; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
