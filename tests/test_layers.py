"""The package's layers: a subpackage imports only itself and the layers below it."""

import ast
from pathlib import Path

import memscan

PACKAGE = Path(memscan.__file__).parent
# lowest first; the base modules (errors, io, cache, tables, plotting, _core) sit under all
LAYERS = ["scan", "model", "attack", "unlearn", "eval", "experiment", "cli"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("memscan.")}


def layer_of(module: str) -> int:
    part = module.split(".")[1]
    return LAYERS.index(part) if part in LAYERS else -1


def test_no_layer_imports_a_higher_one():
    offences = []
    for layer, name in enumerate(LAYERS):
        for path in sorted((PACKAGE / name).rglob("*.py")):
            for module in imported_modules(path):
                if layer_of(module) > layer:
                    offences.append(f"{path.relative_to(PACKAGE)} imports {module}")
    for path in PACKAGE.glob("*.py"):
        if path.name != "__init__.py":
            offences += [f"{path.name} imports {m}" for m in imported_modules(path) if layer_of(m) >= 0]
    assert not offences, "\n".join(offences)
