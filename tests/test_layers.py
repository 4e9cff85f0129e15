"""The package's shape: no import circles, training and Blender code off the runtime path.

Every import in `toolkit/` counts, including the ones inside functions (an import deferred to
break a circle is still a circle)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The toolkit modules (and the external top-level packages) that ``name`` imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t.startswith("toolkit") and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t if t.startswith("toolkit") else t.split(".")[0])
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_no_import_circles():
    graph = _graph()
    inner = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in inner[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in inner:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_training_and_blender_code_stay_off_the_runtime_path():
    graph = _graph()
    for mod, targets in graph.items():
        if mod.startswith("toolkit.train") or mod == "toolkit.cli":  # `viseme train` is the one way in
            continue
        assert "toolkit.train" not in {t.rpartition(".")[0] if t.startswith("toolkit.train.") else t
                                       for t in targets}, f"{mod} imports the trainer"
        assert "torch" not in targets, f"{mod} imports torch (inference is numpy only)"
        if not mod.startswith("toolkit.blender"):
            assert "bpy" not in targets and not any(t.startswith("toolkit.blender") for t in targets), \
                f"{mod} imports the Blender side (it runs in a Python with bpy, as a subprocess)"
    assert "scipy" not in {t for m, ts in graph.items() if not m.startswith("toolkit.train") for t in ts}
