"""The house as built: docs/architecture.rst lists every module in its layer.

A module may import modules of its own layer or of lower layers, never of a
higher one (imports inside functions count; ``TYPE_CHECKING`` blocks do not),
and the package never imports :mod:`dicomslide.testing`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dicomslide"
PAGE = ROOT / "docs" / "architecture.rst"
BESIDE = "Beside the house"


def documented_layers() -> dict[str, int]:
    """Module name → layer number (0 for the modules beside the house)."""
    layers: dict[str, int] = {}
    layer = None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"Layer (\d+):", line)
        if heading:
            layer = int(heading.group(1))
        elif line.startswith(BESIDE):
            layer = 0
        entry = re.match(r"\* ``(dicomslide[\w.]*)``", line)
        if entry and layer is not None:
            assert entry.group(1) not in layers, f"{entry.group(1)} listed twice"
            layers[entry.group(1)] = layer
    return layers


def package_modules() -> dict[str, Path]:
    """Module name → file, for every module of the package but the testing one."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        if not name.startswith("dicomslide.testing"):
            found[name] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or 0) + 1))
    return lines


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dicomslide"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("dicomslide"):
                continue
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
    return found


def test_every_module_is_on_the_architecture_page() -> None:
    layers = documented_layers()
    modules = set(package_modules()) | {"dicomslide.testing"}
    assert sorted(modules - set(layers)) == [], "modules missing from the page"
    assert sorted(set(layers) - modules) == [], "the page lists absent modules"


@pytest.mark.parametrize("name", sorted(package_modules()))
def test_imports_point_down(name: str) -> None:
    layers = documented_layers()
    modules = package_modules()
    own = layers[name]
    for target in imported_modules(modules[name], set(modules)):
        if target == name or target.startswith(f"{name}."):
            continue  # a package and its own submodules
        assert not target.startswith("dicomslide.testing"), f"{name} imports {target}"
        assert layers[target] <= own, (
            f"{name} (layer {own}) imports {target} (layer {layers[target]})"
        )
