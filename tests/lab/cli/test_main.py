"""``python -m lab`` as a user runs it: real training on digits, JSON lines out, one-line errors (a runs folder
that is a file, a full disk, an unreadable folder), and output piped into ``head`` that ends quietly."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.cli.main import main
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from tests.conftest import ROOT, run_cli
from tests.lab.runs.planting import full_disk


def test_train_prints_one_json_line_per_run_and_learns(tmp_path):
    result = run_cli(
        "train",
        "--dataset",
        "digits",
        "--model",
        "small",
        "--feat-dim",
        "2",
        "--losses",
        "softmax",
        "--epochs",
        "6",
        "--runs-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1
    run = lines[0]
    required = {
        "run_id",
        "run_dir",
        "loss",
        "dataset",
        "model",
        "feat_dim",
        "epochs",
        "status",
        "test_acc",
        "train_seconds",
        "images_per_second",
    }
    assert required <= run.keys()
    assert run["status"] == "finished" and run["test_acc"] > 0.85
    assert (run["loss"], run["dataset"], run["feat_dim"], run["epochs"]) == ("softmax", "digits", 2, 6)
    assert Path(run["run_dir"]).is_dir() and "epoch 6/6" in result.stderr

    listed = run_cli("list", "--runs-dir", str(tmp_path))
    assert listed.returncode == 0
    assert [json.loads(line)["run_id"] for line in listed.stdout.splitlines()] == [run["run_id"]]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("train --feat-dim 0", "feat_dim: must be an integer from 2"),
        ("train --epochs abc", "epochs: 'abc' is not a number: type the digits 0-9"),
        ("train --lr nan", "lr: 'nan' is not a number"),
        ("train --losses softmax,nope", "loss: must be one of"),
        ("train --losses softmax,softmax", "softmax named more than once with the same settings"),
        ("train --losses lsoftmax,lsoftmax:margin=2", "lsoftmax named more than once with the same settings"),
        ("train --losses lsoftmax:margin", "write a variant as NAME or NAME:key=value:key=value"),
        ("train --losses lsoftmax:margin=7", "lsoftmax.margin: must be"),
        ("train --seeds 0,one", "seeds: 'one' is not a number"),
        ("train --seeds 1,1", "seeds: 1 named more than once"),
        ("train --ray-address 10.0.0.5:6379", "--ray-address needs --backend ray"),
        ("train --backend spark", "argument --backend: invalid choice: 'spark'"),
        ("preset", "name a preset"),
        ("summary", "required: experiment"),
        ("train --hparam margin=3", "write it as LOSS.NAME=VALUE"),
        ("train --hparam amc.margin=3", "loss 'amc' is not in --losses"),
        ("train --hparam softmax.margin=3", "softmax: unknown hyperparameter margin"),
        ("train --device cuda9", "device: must be one of"),
        ("train --dataset mnist --data-root /nonexistent/folder", "not a folder"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("", "required: command"),
    ],
)
def test_bad_arguments_exit_2_with_one_readable_line(command, message, tmp_path):
    args = command.split()
    result = run_cli(*args, "--runs-dir", str(tmp_path)) if args[:1] == ["train"] else run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_variants_train_once_per_seed_and_the_summary_averages_them(tmp_path):
    result = run_cli(
        "train", "--dataset", "digits", "--epochs", "1", "--losses", "softmax,lsoftmax:margin=2,lsoftmax:margin=4",
        "--hparam", "lsoftmax.lambda_min=0", "--seeds", "0,1", "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["variant"], line["seed"]) for line in lines] == [
        ("Softmax cross-entropy", 0),
        ("L-Softmax m=2", 0),
        ("L-Softmax m=4", 0),
        ("Softmax cross-entropy", 1),
        ("L-Softmax m=2", 1),
        ("L-Softmax m=4", 1),
    ]
    assert "L-Softmax m=4 seed 1" in result.stderr, "the progress names the variant and seed"
    experiment = lines[0]["experiment"]
    summary = run_cli("summary", experiment, "--runs-dir", str(tmp_path))
    assert summary.returncode == 0, summary.stderr
    variants = [json.loads(line) for line in summary.stdout.splitlines()]
    assert [(v["variant"], v["n"], v["seeds"]) for v in variants] == [
        ("Softmax cross-entropy", 2, [0, 1]),
        ("L-Softmax m=2", 2, [0, 1]),
        ("L-Softmax m=4", 2, [0, 1]),
    ]
    accuracies = {(line["variant"], line["seed"]): line["test_acc"] for line in lines}

    def mean_acc(variant: str) -> float:
        return (accuracies[variant, 0] + accuracies[variant, 1]) / 2

    for variant in variants:
        mean = mean_acc(variant["variant"])
        acc = variant["test_acc"]
        assert acc["mean"] == pytest.approx(mean, abs=1e-6) and acc["ci_low"] < mean < acc["ci_high"]
        for metric in ("mean_within_class_angle", "min_between_class_angle"):
            assert 0 <= variant[metric]["mean"] <= 180
    assert variants[0]["vs_baseline"] is None
    difference = variants[2]["vs_baseline"]
    assert difference["variant"] == "Softmax cross-entropy" and difference["seeds"] == [0, 1]
    expected = mean_acc("L-Softmax m=4") - mean_acc("Softmax cross-entropy")
    assert difference["test_acc"]["mean"] == pytest.approx(expected, abs=1e-6)


def test_a_margin_the_feature_dimension_cannot_meet_is_warned_about_before_training(tmp_path):
    result = run_cli(
        "train", "--losses", "cosface,softmax", "--hparam", "cosface.margin=0.35", "--epochs", "1",
        "--runs-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert all(line.startswith("warning: cosface: ") for line in warnings), warnings  # softmax has none
    (margin,) = [line for line in warnings if "Margin 0.35 cannot be met" in line]
    assert "0.191" in margin
    assert result.stderr.index("warning: ") < result.stderr.index("epoch 1/1"), "warned before training"
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["finished", "finished"]


def test_help_lists_every_declared_setting_with_its_range_and_default(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    flags = (
        "--dataset --data-root --model --feat-dim --losses --hparam --epochs --batch-size --optimizer --lr "
        "--weight-decay --train-limit --seed --seeds --device --no-channels-last --runs-dir --experiment --backend "
        "--ray-address --cpus-per-run --gpus-per-run"
    )
    for flag in flags.split():
        assert f"{flag} " in text, flag
    assert "--epochs N passes over the training images (an integer from 1 to 200; default: 12)" in text
    assert "(a number from 0 to 0.1; default: 0.0005)" in text


def test_a_listing_piped_into_head_ends_quietly(tmp_path):
    store = RunStore(tmp_path)
    for _ in range(400):  # more lines than a pipe holds, so the listing still writes when head has gone
        store.create(RunConfig(experiment="many")).set_status("finished", message="done")
    listing = subprocess.Popen(
        [sys.executable, "-m", "lab", "list", "--runs-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = listing.stdout.readline()
    listing.stdout.close()  # what head does after one line
    assert listing.wait(120) == 0 and json.loads(first)["status"] == "finished"
    assert listing.stderr.read() == b""


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_a_runs_folder_that_is_a_file_is_one_error_line(tmp_path, capsys):
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("")
    assert main(["list", "--runs-dir", str(not_a_folder)]) == 2
    assert f"{not_a_folder} is not a folder" in _one_error_line(capsys)
    args = ["train", "--epochs", "1", "--train-limit", "64", "--runs-dir", str(not_a_folder)]
    assert main(args) == 2
    assert f"cannot create a run: {not_a_folder} is not a folder" in _one_error_line(capsys)


def test_a_full_disk_at_the_start_of_training_is_one_error_line(tmp_path, monkeypatch, capsys):
    full_disk(monkeypatch)
    assert main(["train", "--epochs", "1", "--train-limit", "64", "--runs-dir", str(tmp_path)]) == 2
    assert f"disk full at {tmp_path}" in _one_error_line(capsys)


def test_an_unreadable_data_folder_or_runs_folder_is_one_error_line(tmp_path, monkeypatch, capsys):
    import lab.training.loop

    def unreadable(name, data_root=None):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/data/mnist")

    monkeypatch.setattr(lab.training.loop, "load_dataset", unreadable)
    assert main(["train", "--epochs", "1", "--runs-dir", str(tmp_path)]) == 2
    assert "no permission to use /srv/data/mnist" in _one_error_line(capsys)

    def unlistable(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", unlistable)
    assert main(["list", "--runs-dir", str(tmp_path)]) == 2
    assert f"cannot list the runs folder: no permission to use {tmp_path}" in _one_error_line(capsys)


def test_one_training_image_is_refused_with_the_bound(tmp_path, capsys):
    assert main(["train", "--train-limit", "1", "--runs-dir", str(tmp_path)]) == 2
    assert "train_limit: must be an integer from 0 to 1000000: 0 or at least 2, got 1" in _one_error_line(capsys)
    assert RunConfig(train_limit=2).validate() and RunConfig(train_limit=0).validate()
