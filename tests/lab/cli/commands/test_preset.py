"""``python -m lab preset``: the list of presets as JSON lines, and an unknown name as one error line."""

from __future__ import annotations

import json
from pathlib import Path

from lab.cli.main import main
from lab.settings import presets
from tests.conftest import run_cli, write_idx_dataset


def test_preset_list_prints_one_line_per_preset_and_an_unknown_name_is_an_error():
    listed = run_cli("preset", "--list", timeout=300)
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["name"] for line in lines] == presets.names()
    assert all(line["seconds"] > 0 and line["about"] and line["dataset"] for line in lines)
    unknown = run_cli("preset", "nope", timeout=300)
    assert unknown.returncode == 2 and "no preset called 'nope' (choose from: lsoftmax-fig2" in unknown.stderr


def test_preset_trains_on_a_local_mnist_with_the_seeds_and_schedule_asked_for(tmp_path):
    data = tmp_path / "mnist"
    write_idx_dataset(data / "MNIST" / "raw", n_train=60, n_test=20)
    argv = ["preset", "amc-gradcam", "--dataset", "mnist", "--data-root", str(data), "--seeds", "3,4"]
    argv += ["--epochs", "1", "--train-limit", "40", "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"]
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4 and {line["dataset"] for line in lines} == {"mnist"}
    assert sorted(line["seed"] for line in lines) == [3, 3, 4, 4] and {line["epochs"] for line in lines} == {1}
    assert {line["status"] for line in lines} == {"finished"}
    assert "4 runs on mnist" in result.stderr


def test_preset_names_its_datasets_for_another_and_says_when_bare_idx_files_could_be_either(tmp_path, capsys):
    assert main(["preset", "amc-gradcam", "--dataset", "cifar10", "--runs-dir", str(tmp_path)]) == 2
    assert "trains on mnist, fashion-mnist, not 'cifar10'" in capsys.readouterr().err
    write_idx_dataset(tmp_path / "bare")
    line = json.loads(
        next(
            line
            for line in _preset_list(tmp_path / "bare", capsys).splitlines()
            if json.loads(line)["name"] == "amc-gradcam"
        )
    )
    assert line["dataset"] == "mnist" and "--dataset fashion-mnist" in line["dataset_note"]


def _preset_list(data_root: Path, capsys) -> str:
    assert main(["preset", "--list", "--data-root", str(data_root)]) == 0
    return capsys.readouterr().out
