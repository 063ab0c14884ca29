"""The layer table in docs/architecture.md is true: no import in src/fnet climbs it (at the top of a
module or inside a function), except the upward imports the doc names; every module has a layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "fnet"
DOC = REPO / "docs" / "architecture.md"


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:end if end != -1 else len(text)]


def layer_table() -> list[tuple[str, list[str]]]:
    """(layer name, module paths relative to src/fnet) from bottom to top."""
    rows = []
    for line in _section(DOC.read_text(encoding="utf-8"), "## The layers, bottom to top").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("layer", "") or set(cells[0]) <= set("-"):
            continue
        rows.append((cells[0], re.findall(r"`([\w/.]+)`", cells[1])))
    return rows


def named_exceptions() -> set[tuple[str, str]]:
    """(importing module, imported module) pairs the doc allows to climb."""
    pairs = set()
    for line in _section(DOC.read_text(encoding="utf-8"), "## Upward imports, named").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            pairs.add((cells[0].strip("`"), cells[1].strip("`")))
    return pairs


def layer_of(relative: str, table: list[tuple[str, list[str]]]) -> int | None:
    """The layer index of a module path (``tasks/folder.py``): an exact entry wins over a folder entry."""
    best, best_len = None, -1
    for index, (_, entries) in enumerate(table):
        for entry in entries:
            hit = relative == entry or (entry.endswith("/") and relative.startswith(entry))
            if hit and len(entry) > best_len:
                best, best_len = index, len(entry)
    return best


def module_file(name: str) -> str | None:
    """``fnet.a.b`` -> ``a/b.py`` or ``a/b/__init__.py`` (relative to src/fnet), None when not fnet's."""
    if name != "fnet" and not name.startswith("fnet."):
        return None
    parts = name.split(".")[1:]
    if not parts:
        return "__init__.py"
    path = "/".join(parts)
    if (SRC / f"{path}.py").is_file():
        return f"{path}.py"
    if (SRC / path / "__init__.py").is_file():
        return f"{path}/__init__.py"
    return None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module file) of every fnet import that runs: top level and inside functions,
    not under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, module_file(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from fnet import run_folder` imports a module, not a name
                target = module_file(f"{node.module}.{alias.name}") or module_file(node.module)
                found.append((node.lineno, target))
    return [(line, target) for line, target in found if target]


def test_every_module_has_a_layer_and_no_import_climbs_except_those_named():
    table = layer_table()
    assert len(table) >= 10, "the layer table was not found in docs/architecture.md"
    allowed = named_exceptions()
    unplaced, climbs, used = [], [], set()
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative == "__init__.py":  # the public API: names re-exported lazily, by string
            continue
        mine = layer_of(relative, table)
        if mine is None:
            unplaced.append(relative)
            continue
        for line, target in imports_of(path):
            theirs = layer_of(target, table)
            if target == "__init__.py" or theirs is None or theirs <= mine:
                continue
            if (relative, target) in allowed:
                used.add((relative, target))
                continue
            climbs.append(f"{relative}:{line} imports {target} ({table[mine][0]} -> {table[theirs][0]})")
    assert not unplaced, f"modules missing from the layer table in docs/architecture.md: {unplaced}"
    assert not climbs, "imports that climb the layer table:\n" + "\n".join(climbs)
    assert used == allowed, f"named upward imports that no longer happen (remove them from the doc): {allowed - used}"


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    """The test itself: a function-level import is found, a TYPE_CHECKING one is not."""
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fnet.cli import main\n"
                      "def f():\n    from fnet.training import loop\n    import fnet.apps.predict\n")
    assert imports_of(module) == [(5, "training/loop.py"), (6, "apps/predict.py")]
    table = layer_table()
    assert layer_of("training/loop.py", table) > layer_of("modeling.py", table)
    assert layer_of("training/distributed.py", table) < layer_of("training/loop.py", table)
