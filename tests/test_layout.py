"""The shape of the package, checked: small modules, no import cycle, layers that import only downwards.

These are the rules of docs/architecture.md; a change that breaks one fails here instead of being
discovered a year later as a tangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vlmkit"
MAX_LINES = 400
UPPER_LAYERS = ("tasks", "training", "evaluation", "search", "serving", "arena", "bench", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """vlmkit modules ``path`` imports at module level (not inside functions: those are deliberate lazy
    imports, e.g. the CLI's, and cannot form a cycle at import time). ``from package import submodule``
    depends on the submodule; ``from package import name`` on the package's ``__init__``."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlmkit"):
            targets = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(targets & modules)
            if targets - modules:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("vlmkit"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, set(modules)) if m in modules and m != name} for name, path in modules.items()
    }


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [name, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_layers_import_only_downwards():
    for name, targets in _graph().items():
        layer = name.split(".")[1] if "." in name else ""
        if layer in ("models", "nn", "config", "processing", "documents", "checkpoints", "data"):
            upward = sorted(t for t in targets if t.split(".")[1:2] and t.split(".")[1] in UPPER_LAYERS)
            assert not upward, f"{name} imports from a layer above it: {upward}"
        if name != "vlmkit" and layer not in UPPER_LAYERS:
            assert "vlmkit" not in targets, f"{name} imports the package root (an arrow back up)"


def test_test_modules_have_unique_names():
    """Test modules are imported by basename (no __init__.py, pytest's rootdir mode): two test_x.py anywhere under
    tests/ break collection of the whole suite, though either runs alone."""
    names: dict[str, list[str]] = {}
    for path in (PACKAGE.parents[1] / "tests").rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(PACKAGE.parents[1])))
    clashes = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
