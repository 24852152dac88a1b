"""The layering of shared/DESIGN.md, checked on the source: no upward import, no import circle.

Every `import` of a meshsim module counts, at module level or inside a function (a lazy import is still a
dependency). Layers run from the bottom up; a module may import its own layer and the layers below it. A new
top-level module or package must be given its place in LAYERS. Run as a script to print the import graph's
violations: `python tests/project/test_layers.py`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where each installed package's source lives (pyproject.toml package-dir).
SOURCES = {"meshsim": ROOT / "meshsim", "meshsim.kernels": ROOT / "kernels", "meshsim.viewer": ROOT / "viewer",
           "meshsim.data": ROOT / "data"}
# Bottom to top; names are the first component under `meshsim.` ("" is the root package: __version__ only).
LAYERS = [
    ("", "errors"),
    ("config", "outputs", "progress", "threads"),
    ("kernels",),  # Warp ops as torch ops
    ("mesh",),
    ("datasets",),
    ("physics",),
    ("scenarios",),
    ("graph",),
    ("models",),  # networks, LearnedSimulator, the checkpoint module, the rollout loop
    ("metrics",),  # measures on arrays and rollout files (datasets, mesh only); training validation uses them
    ("train",),
    ("rollout", "viewer"),  # file-level rollout command; playback and exports
    ("demo",),
    ("study", "demo_nclaw"),
    ("commands",),
    ("cli",),
    ("__main__", "data"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> meshsim modules it imports (a name imported from a module resolves to that module)."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == "meshsim" else None
                if target and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if RANK[layer(target)] > RANK[layer(module)]:
                out.append(f"{module} imports {target} (layer {layer(target)!r} sits above {layer(module)!r})")
    return out


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(group)
    return found


def test_every_module_has_a_layer():
    unplaced = sorted({layer(m) for m in modules()} - set(RANK))
    assert not unplaced, f"give {unplaced} a place in LAYERS (tests/project/test_layers.py, shared/DESIGN.md)"


def test_no_upward_import():
    mods = modules()
    assert not upward_imports(import_graph(mods))


def test_no_import_circle():
    found = circles(import_graph(modules()))
    assert not found, [sorted(c) for c in found]


def test_the_checks_see_violations():
    graph = {"meshsim.train.a": {"meshsim.rollout"}, "meshsim.rollout": {"meshsim.train.a"},
             "meshsim.mesh.b": {"meshsim.errors"}}
    assert upward_imports(graph) == [
        "meshsim.train.a imports meshsim.rollout (layer 'rollout' sits above 'train')"]
    assert circles(graph) == [{"meshsim.train.a", "meshsim.rollout"}]


if __name__ == "__main__":
    g = import_graph(modules())
    problems = upward_imports(g) + [f"circle: {sorted(c)}" for c in circles(g)]
    print("\n".join(problems) or "no upward import, no import circle")
    sys.exit(1 if problems else 0)
