"""The import rules ARCHITECTURE.md states, checked against the code, so the two cannot drift.

The "depends on" column of ARCHITECTURE.md's package table is the declaration: a folder may import
the project packages (and Streamlit) named there and no others. bench/ also never reaches into
tests/ or private names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"app", "pages", "ui", "lab", "losses", "models", "bench", "tests"}
CHECKED = PROJECT | {"streamlit"}


def declared_dependencies() -> dict[str, set[str]]:
    """``{"lab": {"losses", "models"}, ...}`` from the table under "## Packages" in ARCHITECTURE.md."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    table = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    rules = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)(?:/|\.py)`", cells[0]) if len(cells) == 3 else None
        if match:
            rules[match.group(1)] = {word for word in re.findall(r"[\w.]+", cells[2]) if word in CHECKED}
    return rules


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


def test_bench_uses_no_private_names():
    wrong = [
        f"{path.relative_to(ROOT)}: {module} {names}"
        for path in files_of("bench")
        for module, names in imports_of(path)
        if module.split(".")[0] in PROJECT
        and (any(part.startswith("_") for part in module.split(".")) or any(n.startswith("_") for n in names))
    ]
    assert not wrong, "bench/ must use public names only: " + "; ".join(wrong)


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
        "import sys\nfrom lab import cli\ncli.make_parser()\n"
        "print(sorted(m for m in ('pytorch_grad_cam', 'torchvision', 'cv2', 'lab.gradcam') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "[]"
