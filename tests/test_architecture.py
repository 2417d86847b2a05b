"""The package's layers: no module imports from a layer above its own, and the import graph has no circle.

The layers, lowest first, are the README's "Architecture" diagram. Every ``import``/``from`` of a
``wgangp`` module counts, also those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wgangp"

# Lowest first; a module may import from its own layer (without a circle) and from the layers below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "storage"),
    ("penalty", "losses", "__init__"),
    ("config",),
    ("distributed", "reference"),
    ("data", "models", "metrics", "pictures"),
    ("step",),
    ("trainer",),
    ("evaluation",),
    ("run",),
    ("experiments",),
    ("cli", "__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports(path: Path) -> set[str]:
    """The ``wgangp`` modules a file imports (``from wgangp.x import y`` counts ``wgangp.x.y`` if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("wgangp")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wgangp"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its top-level name to LAYERS (and the README)")


def test_every_module_is_in_a_layer() -> None:
    for module in _graph():
        _layer(module)


@pytest.mark.parametrize("module", sorted(_graph()))
def test_no_import_from_a_layer_above(module: str) -> None:
    above = sorted(m for m in _graph()[module] if _layer(m) > _layer(module))
    assert not above, f"{module} (layer {_layer(module)}) imports from higher layers: {above}"


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [module, target]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_top_level_holds_few_modules() -> None:
    flat = sorted(p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(flat) <= 10, flat
