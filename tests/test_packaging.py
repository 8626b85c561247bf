"""`pip install .` builds a wheel that carries the app, its pages, the shipped examples and its
Streamlit settings, and the `losslens` command hands those settings to `streamlit run`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from lab.cli import launch

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_app_pages_examples_and_settings(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("losslens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "app.py",
        "pages/train.py",
        "lab/cli/main.py",
        "losses/amc.py",
        "losses/about.toml",
        "models/small.py",
        "ui/sidebar.py",
    ):
        assert expected in names
    assert any(n.startswith("assets/example-runs/") and n.endswith("config.json") for n in names)
    assert any(n.endswith("share/losslens/.streamlit/config.toml") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "losslens = lab.cli.launch:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_launcher_passes_the_app_settings_to_streamlit():
    cmd = launch.command(["--server.port=8600"])
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(ROOT / "app.py")
    assert "--server.fileWatcherType=none" in cmd and "--runner.postScriptGC=false" in cmd
    assert cmd[-1] == "--server.port=8600"  # the user's flags come last, so they win
