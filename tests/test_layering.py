"""The import rules ARCHITECTURE.md states, checked against the code, so the two cannot drift.

The "depends on" column of ARCHITECTURE.md's package table is the declaration: a folder may import
the project packages (and Streamlit) named there and no others; the "may import" column of its table of
lab/'s subpackages does the same inside lab/. Imports inside functions count everywhere. No two modules
import each other, directly or around a longer cycle; no module imports another module's private name;
bench/ never reaches into tests/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"app", "pages", "ui", "lab", "losses", "models", "bench", "tests"}
CHECKED = PROJECT | {"streamlit"}


def table_rows(heading: str, first_cell: str) -> dict[str, str]:
    """``{name: last cell}`` of the rows under ``## heading`` in ARCHITECTURE.md whose first cell matches
    ``first_cell`` (its group 1 is the name)."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    table = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(first_cell, cells[0]) if len(cells) == 3 else None
        if match:
            rows[match.group(1)] = cells[2]
    return rows


def declared_dependencies() -> dict[str, set[str]]:
    """``{"lab": {"losses", "models"}, ...}`` from the table under "## Packages" in ARCHITECTURE.md."""
    rows = table_rows("Packages", r"`(\w+)(?:/|\.py)`")
    return {name: {word for word in re.findall(r"[\w.]+", cell) if word in CHECKED} for name, cell in rows.items()}


def files_of(unit: str) -> list[Path]:
    return [ROOT / "app.py"] if unit == "app" else sorted((ROOT / unit).rglob("*.py"))


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """Every import in a file (top level and inside functions): (module, imported names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


RULES = declared_dependencies()
LAB_SHARED = {"progress", "logs", "shown_text"}  # lab/'s own modules beside the subpackages, for every subpackage


def declared_lab_layers() -> dict[str, set[str]]:
    """``{"runs": {"datasets", "settings"}, ...}`` from the table under "## Inside lab/" in ARCHITECTURE.md."""
    return {name: set(re.findall(r"lab\.(\w+)", cell)) for name, cell in table_rows("Inside lab/", r"`(\w+)/`").items()}


LAB_RULES = declared_lab_layers()
CODE = ("app", "pages", "ui", "lab", "losses", "models", "bench")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for unit in CODE for path in files_of(unit)}


MODULES = project_modules()


def imported_modules(path: Path) -> set[str]:
    """The project modules a file imports: ``from lab.runs import store`` names lab.runs.store, ``from
    lab.runs.store import RunStore`` names lab.runs.store."""
    found = set()
    for module, names in imports_of(path):
        targets = [f"{module}.{name}" for name in names if f"{module}.{name}" in MODULES]
        found.update(targets or ([module] if module in MODULES else []))
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_table_names_every_project_folder():
    assert PROJECT - {"tests"} <= set(RULES), "ARCHITECTURE.md's package table lacks a row"


@pytest.mark.parametrize("unit", sorted(RULES))
def test_imports_follow_the_documented_layers(unit: str):
    allowed = RULES[unit] | {unit}
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files_of(unit)
        for module, _ in imports_of(path)
        if module.split(".")[0] in CHECKED and module.split(".")[0] not in allowed
    ]
    assert not wrong, f"{unit} may import only {sorted(RULES[unit])} (ARCHITECTURE.md): " + "; ".join(wrong)


def test_lab_has_a_row_for_every_subpackage():
    subpackages = {path.parent.name for path in (ROOT / "lab").glob("*/__init__.py")}
    assert subpackages == set(LAB_RULES), "ARCHITECTURE.md's table of lab/'s subpackages differs from lab/"
    loose = sorted(path.name for path in (ROOT / "lab").glob("*.py") if path.stem not in ("__init__", "__main__"))
    assert loose == sorted(f"{name}.py" for name in LAB_SHARED)


@pytest.mark.parametrize("subpackage", sorted(LAB_RULES))
def test_lab_subpackages_import_only_the_layers_below(subpackage: str):
    allowed = LAB_RULES[subpackage] | LAB_SHARED | {subpackage}
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files_of(f"lab/{subpackage}")
        for module in imported_modules(path)
        if module.startswith("lab.") and module.split(".")[1] not in allowed
    )
    assert not wrong, (
        f"lab/{subpackage} may import only {sorted(LAB_RULES[subpackage])} (ARCHITECTURE.md): " + "; ".join(wrong)
    )


def test_no_modules_import_each_other():
    graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    cycles = import_cycles(graph)
    assert not cycles, "import cycles (imports inside functions count): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name():
    wrong = [
        f"{path.relative_to(ROOT)}: from {module} import {name}"
        for unit in (*CODE, "tests")
        for path in files_of(unit)
        for module, names in imports_of(path)
        if module.split(".")[0] in PROJECT
        for name in names or [module.rsplit(".", 1)[-1]]
        if name.startswith("_") and name != "__version__"
    ]
    assert not wrong, "private names stay in their module: " + "; ".join(wrong)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path: Path):
    module = tmp_path / "b.py"
    module.write_text("def f():\n    from lab.runs import store\n")
    assert "lab.runs.store" in imported_modules(module)
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_rules_catch_a_violation(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit\nfrom ui import state\n\ndef f():\n    from tests.browser import x\n")
    assert [module for module, _ in imports_of(bad)] == ["streamlit", "ui", "tests.browser"]
    assert "streamlit" not in RULES["lab"] and "ui" not in RULES["lab"]


def test_the_command_line_parser_does_not_import_the_grad_cam_library():
    # Every command builds every subcommand's parser; pytorch-grad-cam's import chain took seconds of each.
    import subprocess
    import sys

    code = (
        "import sys\nfrom lab.cli.main import make_parser\nmake_parser()\n"
        "heavy = ('pytorch_grad_cam', 'torchvision', 'cv2', 'lab.interpret.gradcam')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "[]"
