"""The core's half of reliability III: work bounded by what a run's config says, listing that reads only
what it needs, tampered contents that give per-run messages, bounded and fair jobs, a Ray address that is
not a cluster, a killed driver's local Ray, and faults (a full disk while runs are created, safetensors'
own write error, a full export folder, the trash, a closed pipe)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from lab.cli.common import print_json
from lab.cli.main import main
from lab.reports import export
from lab.runs import contents, tensor_files
from lab.runs import io as run_io
from lab.runs import store as runstore
from lab.runs import writer as run_writer
from lab.runs.io import RunWriteError
from lab.runs.restore import load_trained
from lab.runs.store import RunStore, RunStoreError
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training import backends, jobs
from lab.training.loop import train_experiment, train_run
from tests.conftest import ROOT, run_cli
from tests.lab.runs.test_writer import fake_training  # noqa: F401 (a fixture)

OWNER = "carolsecret0003"
N, DIM, CLASSES, SUBSET, PENULTIMATE = 40, 2, 10, 10, 128  # a digits run of the default model, 2-D
TINY = {"epochs": 1, "train_limit": 64, "snapshot_points": 10}


def features(seed: int = 0, dim: int = DIM) -> dict[str, torch.Tensor]:
    """The tensors of a features file that fits a digits run of the default model in ``dim`` dimensions."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "test_features": torch.randn(N, dim, generator=generator),
        "test_labels": torch.arange(N) % CLASSES,
        "test_logits": torch.randn(N, CLASSES, generator=generator),
        "snapshot_indices": torch.arange(SUBSET),
        "penultimate": torch.randn(SUBSET, PENULTIMATE, generator=generator),
        "class_directions": torch.randn(CLASSES, dim, generator=generator),
        "snapshot_images": torch.zeros(SUBSET, 1, 8, 8, dtype=torch.uint8),
    }


def snapshots(rows: int = 3, subset: int = SUBSET, dim: int = DIM) -> dict[str, torch.Tensor]:
    return {
        "indices": torch.arange(subset),
        "features": torch.randn(rows, subset, dim),
        "epochs": torch.arange(rows),
        "test_acc": torch.rand(rows),
    }


def plant(store: RunStore, experiment: str = "exp", seed: int = 0, epochs: int = 2, **config) -> str:
    """A finished run written by the real writer, with features and snapshots that fit its config."""
    writer = store.create(RunConfig(experiment=experiment, seed=seed, epochs=epochs, **config))
    dim = writer.config.feat_dim
    writer.save_features(tensor_files.RunFeatures(**features(seed, dim)))
    writer.save_snapshots(tensor_files.RunSnapshots(**snapshots(dim=dim)))
    writer.set_status("finished", message="done", test_acc=0.5, epoch=epochs)
    return writer.run_id


def rewrite(store: RunStore, run_id: str, filename: str, tensors: dict[str, torch.Tensor]) -> None:
    """Replace a run file as someone with write access to the runs folder could: no checks."""
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(store.run_dir(run_id) / filename))


# ---------------------------------------------------------------- run files checked against the config


@pytest.mark.parametrize(
    ("filename", "change", "message"),
    [
        (
            contents.FEATURES,
            {"test_features": torch.randn(N, 3), "class_directions": torch.randn(CLASSES, 3)},
            "test_features has shape (40, 3): dimension 1 should be 2, the run's feature dimension",
        ),
        (
            contents.FEATURES,
            {"test_logits": torch.randn(N, 5), "class_directions": torch.randn(5, DIM)},
            "test_logits has shape (40, 5): dimension 1 should be 10, the classes of digits",
        ),
        (
            contents.FEATURES,
            {"snapshot_images": torch.zeros(SUBSET, 3, 8, 8, dtype=torch.uint8)},
            "snapshot_images has shape (10, 3, 8, 8): dimension 1 should be 1, the channels of digits",
        ),
        (
            contents.FEATURES,
            {"snapshot_images": torch.zeros(SUBSET, 1, 28, 28, dtype=torch.uint8)},
            "dimension 2 should be 8, as digits's images are",
        ),
        (contents.FEATURES, {"penultimate": torch.randn(SUBSET, 64)}, "should be 128, the small model's width"),
        (contents.FEATURES, {"test_features": torch.full((N, DIM), float("nan"))}, "test_features holds NaN"),
        (contents.FEATURES, {"test_logits": torch.full((N, CLASSES), float("inf"))}, "test_logits holds NaN"),
        (contents.FEATURES, {"test_features": torch.ones(N, DIM, dtype=torch.int64)}, "should hold floating"),
        (contents.SNAPSHOTS, {"features": torch.randn(0, SUBSET, DIM), "epochs": torch.arange(0)}, "holds no epochs"),
        (
            contents.SNAPSHOTS,
            {"features": torch.randn(4, SUBSET, DIM), "epochs": torch.arange(4), "test_acc": torch.rand(4)},
            "features holds 4 epochs, more than the run's 2 epochs and the one before training",
        ),
        (contents.SNAPSHOTS, {"epochs": torch.tensor([0, 1, 70000])}, "epochs must lie in 0..2"),
        (contents.SNAPSHOTS, {"features": torch.randn(3, SUBSET, 3)}, "dimension 2 should be 2, the run's feature"),
        (contents.SNAPSHOTS, {"test_acc": torch.tensor([0.1, float("nan"), 0.3])}, "test_acc holds NaN"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_run_files_that_disagree_with_their_config_are_a_per_run_message(tmp_path, filename, change, message):
    store = RunStore(tmp_path)
    good, bad = plant(store), plant(store)
    base = features() if filename == contents.FEATURES else snapshots()
    rewrite(store, bad, filename, {**base, **change})
    load = store.load_features if filename == contents.FEATURES else store.load_snapshots
    with pytest.raises(RunStoreError) as raised:
        load(bad)
    assert str(raised.value).startswith(f"run {bad}: {filename}: ") and message in str(raised.value)
    load(good)  # the other run still loads


def test_a_snapshots_file_far_beyond_its_config_is_refused_from_its_header_alone(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    run_id = plant(store)
    frames = 72_817  # the filed file: a 2-epoch run holding this many stored epochs
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=frames))
    read = []
    real = runstore.read_tensor
    monkeypatch.setattr(runstore, "read_tensor", lambda fd, header, name: read.append(name) or real(fd, header, name))
    with pytest.raises(RunStoreError, match=f"features holds {frames} epochs, more than the run's 2 epochs"):
        store.load_snapshots(run_id)
    assert read == [], "no tensor of the file was read"
    store.load_features(run_id)
    assert read, "a file that fits is read"


def test_reading_a_run_file_holds_no_copy_of_the_file_beside_its_tensors(tmp_path):
    store = RunStore(tmp_path)
    run_id = plant(store, epochs=200, snapshot_points=2000, feat_dim=16)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=201, subset=2000, dim=16))
    assert (store.run_dir(run_id) / contents.SNAPSHOTS).stat().st_size > 24 * 2**20
    for _ in range(2):  # the second time: what the first call imports is not counted
        tracemalloc.start()
        loaded = store.load_snapshots(run_id)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert loaded.features.shape == (201, 2000, 16)
    assert peak < 4 * 2**20, f"reading held {peak / 2**20:.0f} MB of Python objects (the file's bytes)"


def test_half_precision_features_read_as_float32_and_a_summary_uses_them(tmp_path, capsys):
    store = RunStore(tmp_path)
    halves = {}
    for seed, dtype in enumerate((torch.bfloat16, torch.float16)):
        run_id = plant(store, seed=seed)
        tensors = features(seed)
        for name in ("test_features", "test_logits", "penultimate", "class_directions"):
            tensors[name] = tensors[name].to(dtype)
        rewrite(store, run_id, contents.FEATURES, tensors)
        halves[run_id] = tensors
    for run_id, tensors in halves.items():
        loaded = store.load_features(run_id)
        assert loaded.test_features.dtype == torch.float32 == loaded.test_logits.dtype
        assert torch.equal(loaded.test_features, tensors["test_features"].float())
    assert main(["summary", "exp", "--runs-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["n"] == 2 and line["left_out"] == [] and "Traceback" not in captured.err


def test_nan_weights_are_refused_with_the_tensor_named(tmp_path):
    store = RunStore(tmp_path)
    record = train_run(RunConfig(**TINY), store)
    weights = store.load_weights(record.run_id)
    weights["model.feature.0.weight"] = torch.full_like(weights["model.feature.0.weight"], float("nan"))
    rewrite(store, record.run_id, contents.WEIGHTS, weights)
    with pytest.raises(RunStoreError, match="weights.safetensors: model.feature.0.weight holds NaN or infinite"):
        load_trained(store, store.load(record.run_id))
    weights["model.feature.0.weight"] = torch.zeros(2, 64)  # another model's shape
    rewrite(store, record.run_id, contents.WEIGHTS, weights)
    with pytest.raises(RunStoreError, match=r"model.feature.0.weight has shape \(2, 64\): the small model"):
        store.load_weights(record.run_id)


def test_an_export_streams_the_run_files_instead_of_holding_them(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = plant(store, epochs=200, snapshot_points=2000, feat_dim=16)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=201, subset=2000, dim=16))
    size = (store.run_dir(run_id) / contents.SNAPSHOTS).stat().st_size
    out = tmp_path / "run.zip"
    tracemalloc.start()
    assert main(["export", run_id, "--runs-dir", str(store.root), "--zip", str(out)]) == 0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 24 * 2**20 and peak < 8 * 2**20, f"exporting a {size / 2**20:.0f} MB file held {peak / 2**20:.0f} MB"
    assert out.read_bytes() == export.run_zip(store, run_id)


def test_an_export_of_a_run_whose_files_disagree_with_its_config_is_refused(tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = plant(store)
    rewrite(store, run_id, contents.SNAPSHOTS, snapshots(rows=500))
    assert main(["export", run_id, "--runs-dir", str(tmp_path), "--zip", str(tmp_path / "run.zip")]) == 2
    assert "features holds 500 epochs" in capsys.readouterr().err and not (tmp_path / "run.zip").exists()


# ---------------------------------------------------------------- listing reads config and status only


def test_listing_runs_reads_no_metrics_and_the_runs_that_need_them_read_them(tmp_path):
    store = RunStore(tmp_path)
    run_id = plant(store)
    metrics = tmp_path / run_id / contents.METRICS
    os.mkfifo(metrics)  # whoever opens it for its contents gets a per-run error, not a hang
    (record,) = store.list()
    assert record.error is None and record.summary()["epochs_done"] == 2, "the status says how far it went"
    assert record.metrics == [] and "metrics.jsonl is not a plain file" in record.error, "read when used"
    listed = run_cli("list", "--runs-dir", str(tmp_path), timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout)["message"] == "done", listed.stderr


def test_an_unchanged_config_and_status_are_not_parsed_again(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    ids = [plant(store) for _ in range(3)]
    store.list()
    parsed = []
    real = contents.parse_json
    monkeypatch.setattr(contents, "parse_json", lambda data: parsed.append(data) or real(data))
    assert [r.state for r in store.list()] == ["finished"] * 3 and parsed == []
    status = tmp_path / ids[1] / contents.STATUS
    run_io.write_json_atomic(status, {**json.loads(status.read_text()), "message": "edited"})
    assert [r.message for r in store.list()] == ["done", "edited", "done"] and len(parsed) == 1


# ---------------------------------------------------------------- tampered contents on the command line


def test_the_summary_leaves_out_tampered_runs_by_name_and_prints_only_json(tmp_path, capsys):
    store = RunStore(tmp_path)
    good = [plant(store, seed=seed) for seed in range(2)]
    nan, wider = plant(store, seed=2), plant(store, seed=3)
    rewrite(store, nan, contents.FEATURES, {**features(2), "test_features": torch.full((N, DIM), float("nan"))})
    eleven = {"test_logits": torch.randn(N, 11), "class_directions": torch.randn(11, DIM)}
    rewrite(store, wider, contents.FEATURES, {**features(3), **eleven})
    assert main(["summary", "exp", "--runs-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()

    def no_nan(value: str) -> None:
        raise AssertionError(f"{value} is not JSON")

    line = json.loads(captured.out, parse_constant=no_nan)
    assert line["n"] == 2 and line["seeds"] == [0, 1] and "Traceback" not in captured.err
    left_out = {entry["run_id"]: entry["message"] for entry in line["left_out"]}
    assert "test_features holds NaN or infinite values" in left_out[nan]
    assert "test_logits has shape (40, 11): dimension 1 should be 10, the classes of digits" in left_out[wider]
    assert set(left_out) == {nan, wider} and not set(good) & set(left_out)


def test_a_number_json_cannot_hold_is_printed_as_null_with_a_warning(capsys):
    print_json({"run_id": "r", "figures": {"angle": float("nan"), "spread": [1.0, float("inf")]}})
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"run_id": "r", "figures": {"angle": None, "spread": [1.0, None]}}
    assert captured.err.splitlines() == [
        "warning: figures.angle is not a finite number; printed as null",
        "warning: figures.spread[1] is not a finite number; printed as null",
    ]


def test_interpret_gives_each_tampered_run_its_error_line_and_scores_the_others(tmp_path):
    store = RunStore(tmp_path)
    good = train_run(RunConfig(experiment="exp", **TINY), store)
    for name in ("three-channels", "nan-weights"):
        shutil.copytree(good.run_dir, tmp_path / name)
    tensors = store.load_features("three-channels").to_tensors()
    tensors["snapshot_images"] = tensors["snapshot_images"].expand(-1, 3, -1, -1)
    rewrite(store, "three-channels", contents.FEATURES, tensors)
    weights = store.load_weights("nan-weights")
    weights["head.classifier.weight"] = torch.full_like(weights["head.classifier.weight"], float("nan"))
    rewrite(store, "nan-weights", contents.WEIGHTS, weights)
    result = run_cli("interpret", "--experiment", "exp", "--images", "2", "--runs-dir", str(tmp_path), timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert any(e.startswith("error: run three-channels: features.safetensors: snapshot_images") for e in errors)
    assert any(
        e.startswith("error: run nan-weights: weights.safetensors: head.classifier.weight holds") for e in errors
    )
    assert [json.loads(line)["run_id"] for line in result.stdout.splitlines()] == [good.run_id]


# ---------------------------------------------------------------- the size of a job, and who may queue


def test_a_job_of_300_variants_by_10_seeds_is_refused_before_anything_starts(tmp_path, fake_training):  # noqa: F811
    variants = [f"center:weight={(i + 1) / 1000:g}" for i in range(300)]
    configs = make_experiment(RunConfig(experiment="huge"), variants, seeds=list(range(10)))
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    with pytest.raises(jobs.JobLimitError, match=r"3,000 runs \(300 variants x 10 seeds\); .* at most 100"):
        manager.submit(configs, OWNER)
    long_runs = make_experiment(RunConfig(epochs=200), ["softmax", "amc"], seeds=list(range(4)))
    with pytest.raises(jobs.JobLimitError, match="1,600 run-epochs .* at most 1,200"):
        manager.submit(long_runs, OWNER)
    assert manager.queue_length() == 0 and manager.jobs_of(OWNER) == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="3,000 runs; at most 100 may train together"):
        make_experiment(RunConfig(), variants, seeds=list(range(10)), max_runs=jobs.MAX_RUNS_PER_JOB)


def test_one_owner_holds_at_most_so_many_run_epochs(tmp_path, fake_training):  # noqa: F811
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    half = make_experiment(RunConfig(epochs=100), ["softmax"], seeds=list(range(10)))  # 1,000 run-epochs
    first = manager.submit(half, OWNER)
    manager.submit(half, OWNER)
    manager.stop(first, OWNER)
    deadline = time.monotonic() + 10
    while manager.state(first) != "done":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(jobs.JobLimitError, match="come to 1,000 run-epochs and this one adds 1,200; .* 2,000"):
        manager.submit(make_experiment(RunConfig(epochs=120), ["softmax"], seeds=list(range(10))), OWNER)


def test_owners_without_a_finished_run_share_part_of_the_queue(tmp_path, fake_training):  # noqa: F811
    store = RunStore(tmp_path)
    veteran = "daveveteran0004"
    writer = store.create(RunConfig(), owner=veteran)
    writer.set_status("finished", message="done")
    manager = jobs.JobManager(store, max_running=1)
    for n in range(jobs.MAX_NEWCOMER_JOBS):
        manager.submit([RunConfig()], f"fresh{n:010d}")
    with pytest.raises(jobs.JobLimitError, match="from browsers that have not finished one here yet"):
        manager.submit([RunConfig()], "fresh-one-more")
    assert manager.submit([RunConfig()], veteran), "an owner who has trained here still gets a place"


def test_an_owners_second_job_waits_behind_everyone_elses_first(tmp_path, fake_training):  # noqa: F811
    manager = jobs.JobManager(RunStore(tmp_path), max_running=1)
    first = manager.submit([RunConfig()], "aliceowner0001")
    second = manager.submit([RunConfig()], "aliceowner0001")
    other = manager.submit([RunConfig()], "bobowner00002")
    manager.stop(first, "aliceowner0001")
    deadline = time.monotonic() + 10
    while manager.state(first) != "done" or manager.state(other) == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert manager.state(other) == "running" and manager.state(second) == "queued"


class CountedSeed(int):
    """A seed that counts how often it is compared with another."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedSeed.comparisons += 1
        return int(self) == other

    __hash__ = int.__hash__


def test_checking_seeds_for_repeats_takes_a_look_at_each_seed_not_each_pair():
    seeds = [CountedSeed(n) for n in range(2000)]
    CountedSeed.comparisons = 0
    assert len(make_experiment(RunConfig(), ["softmax"], seeds=seeds)) == 2000
    assert CountedSeed.comparisons < 10 * len(seeds), CountedSeed.comparisons


# ---------------------------------------------------------------- Ray


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (not a Ray cluster): its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


def test_a_ray_address_that_is_not_a_cluster_is_one_error_line(tmp_path, silent_server):
    pytest.importorskip("ray")
    result = run_cli(
        "train", "--backend", "ray", "--ray-address", silent_server, "--runs-dir", str(tmp_path), timeout=120
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {silent_server} is not a Ray cluster: something listens there")
    assert list(tmp_path.iterdir()) == []


def test_asking_a_ray_address_that_does_not_answer_never_holds_up_the_caller(silent_server):
    pytest.importorskip("ray")
    answers: list[str] = []

    def ask() -> None:
        try:
            backends.cluster_resources(silent_server)
        except backends.BackendError as err:
            answers.append(str(err))

    for expected in ("still asking the Ray cluster", "is not a Ray cluster"):
        deadline = time.monotonic() + 30
        while not (answers and expected in answers[-1]):
            asked = threading.Thread(target=ask, daemon=True)
            asked.start()
            asked.join(5)
            assert not asked.is_alive(), "cluster_resources kept its caller waiting"
            assert time.monotonic() < deadline, answers
            time.sleep(0.5)


def _processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid -> (parent pid, start time, name), from /proc."""
    found = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        command, fields = text[text.index(b"(") + 1 : text.rindex(b")")], text[text.rindex(b")") + 2 :].split()
        if fields[0] != b"Z":  # a zombie has ended
            found[int(name)] = (int(fields[1]), int(fields[19]), command.decode(errors="replace"))
    return found


def _below(root: int) -> dict[tuple[int, int], str]:
    """The processes below ``root``: (pid, start time) -> name."""
    processes = _processes()
    below, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start, command) in processes.items():
            if ppid == parent and (pid, start) not in below:
                below[pid, start] = command
                todo.append(pid)
    return below


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's processes through /proc")
def test_a_killed_cli_driver_leaves_no_local_ray_running(tmp_path):
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "LOSSLENS_RAY_ADDRESS"}
    args = ["train", "--backend", "ray", "--dataset", "digits", "--epochs", "50", "--runs-dir", str(tmp_path)]
    driver = subprocess.Popen(
        [sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    started: dict[tuple[int, int], str] = {}
    try:
        for line in driver.stderr:  # one line per epoch: Ray and its worker are up
            if b"epoch 1/50" in line:
                break
        started = _below(driver.pid)
        names = set(started.values())
        assert {"raylet", "gcs_server"} <= names and any(name.startswith("ray::") for name in names), names
        driver.kill()
        driver.wait(30)
        deadline = time.monotonic() + 60
        while left := {key: name for key, name in started.items() if _processes().get(key[0], (0, -1))[1] == key[1]}:
            assert time.monotonic() < deadline, f"Ray processes outlived their driver: {left}"
            time.sleep(0.5)
    finally:
        driver.kill()
        live = _processes()
        for pid, start in started:  # only on failure: stop what the test started
            if live.get(pid, (0, -1))[1] == start:
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- faults


def test_a_disk_that_fills_while_runs_are_created_leaves_no_run_training(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    real = run_io.write_atomic
    writes = []

    def fill_at_the_second_run(path: Path, data: bytes) -> None:
        writes.append(path)
        if len({p.parent for p in writes}) > 1:  # the second run's folder: the disk is full from here on
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    for module in (run_io, runstore, run_writer):
        monkeypatch.setattr(module, "write_atomic", fill_at_the_second_run)
    configs = make_experiment(RunConfig(experiment="filling", **TINY), ["softmax", "amc", "opl"])
    with pytest.raises(RunWriteError, match="disk full"):
        train_experiment(configs, store, owner=OWNER)
    monkeypatch.undo()
    assert [r.state for r in store.list() if r.state in runstore.ACTIVE_STATES] == []
    assert list(tmp_path.iterdir()) == [], "runs that never trained are removed"


def test_a_full_disk_under_safetensors_is_a_write_error_retried_once_without_a_traceback(tmp_path, monkeypatch, caplog):
    attempts = []

    def full(tensors, filename, metadata=None):  # how safetensors reports ENOSPC: its own error, the errno in text
        attempts.append(filename)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(run_io, "save_file", full)
    record = train_run(RunConfig(**TINY), RunStore(tmp_path))
    assert record.state == "failed"
    assert record.message == f"disk full at {record.run_dir}: free some space or choose a folder on another disk"
    assert len(attempts) == 2, "the write is tried once more"
    assert not [r for r in caplog.records if r.exc_info], "a full disk is logged as a message, not a traceback"


def test_an_export_into_a_full_folder_names_the_file(tmp_path, monkeypatch, capsys):
    store = RunStore(tmp_path / "runs")
    run_id = plant(store)
    out = tmp_path / "out.zip"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["export", run_id, "--runs-dir", str(store.root), "--zip", str(out)]) == 2
    assert capsys.readouterr().err == f"error: disk full at {out}: free some space or choose a folder on another disk\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"], "no partial file is left"


def test_the_trash_is_emptied_when_the_runs_folder_is_first_opened(tmp_path):
    leftover = tmp_path / ".trash-killed"
    (leftover / "old-run").mkdir(parents=True)
    (leftover / "old-run" / contents.FEATURES).write_bytes(b"x" * 1000)
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    RunStore(tmp_path)
    assert not leftover.exists()


def test_a_delete_whose_files_cannot_be_removed_says_so(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create(RunConfig(experiment="exp"), owner=OWNER)
    writer.set_status("finished", message="done")
    unlink = os.unlink

    def refuse_status(path, *args, **kwargs):
        if os.fspath(path) == contents.STATUS:
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_status)
    with pytest.raises(
        RunStoreError, match=r"could not all be removed \(.*status.json: Operation not permitted\).*\.trash-"
    ):
        store.delete_experiment("exp", OWNER)
    monkeypatch.undo()
    assert store.list() == []
    assert RunStore(tmp_path).empty_trash(older_than=0) == [] and list(tmp_path.iterdir()) == []


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
