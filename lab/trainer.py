"""The trainer: a RunConfig in, a finished run directory out.

``train_run`` trains one model + loss head with the whole dataset held on the device as tensors
(no DataLoader, no per-sample decoding), SGD with Nesterov momentum and a one-cycle schedule by
default, and writes everything the app needs into the run directory. ``train_experiment`` trains
several configs in turn on one loaded dataset. :class:`TrainingJob` does the same on a background
thread, reporting :class:`Progress` and stoppable between steps.

Divergence (a non-finite loss or weights) stops a run at once and marks it ``diverged``; an
unexpected error marks it ``failed``; either way the next run of the experiment still trains.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import torch

import losses
import models
from lab.config import RunConfig
from lab.data import Dataset, Split, load_dataset
from lab.device import resolve_device
from lab.runstore import RunRecord, RunStore, RunWriter

EVAL_BATCH = 2048
SNAPSHOT_SEED = 1234


@dataclasses.dataclass
class Progress:
    """One progress report. ``metrics`` and ``snapshot`` come at the end of each epoch; ``status``
    once the run has ended."""

    run_id: str
    loss: str
    run_index: int
    n_runs: int
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    metrics: dict[str, Any] | None = None
    snapshot: torch.Tensor | None = None
    snapshot_labels: torch.Tensor | None = None
    status: str | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """How much of this run is done, from 0 to 1."""
        if self.status is not None:
            return 1.0
        total = self.epochs * max(self.steps_per_epoch, 1)
        return min(1.0, ((self.epoch - 1) * self.steps_per_epoch + self.step) / total)


ProgressCallback = Callable[[Progress], None]


class Diverged(Exception):
    """Training produced a non-finite loss or weights."""


def build_model_and_head(config: RunConfig, dataset: Dataset) -> tuple[models.FeatureNet, losses.LossHead]:
    """Fresh model and loss head for ``config``, initialised from its seed."""
    torch.manual_seed(config.seed)
    model = models.build(config.model, dataset.in_channels, dataset.image_size, config.feat_dim)
    head = losses.build(config.loss, config.feat_dim, dataset.n_classes, **config.loss_params)
    return model, head


def snapshot_indices(n_test: int, points: int) -> torch.Tensor:
    """The fixed test subset whose features are stored every epoch (the same for every run)."""
    generator = torch.Generator().manual_seed(SNAPSHOT_SEED)
    return torch.randperm(n_test, generator=generator)[: min(points, n_test)].sort().values


@torch.inference_mode()
def embed(
    model: models.FeatureNet, head: losses.LossHead, images: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """Features, penultimate activations and inference logits of normalised ``images``, in large batches."""
    model.eval()
    head.eval()
    parts: dict[str, list[torch.Tensor]] = {"penultimate": [], "features": [], "logits": []}
    for start in range(0, len(images), EVAL_BATCH):
        batch = images[start : start + EVAL_BATCH].to(device, non_blocking=True)
        penultimate, features = model.forward_with_penultimate(batch)
        parts["penultimate"].append(penultimate.float().cpu())
        parts["features"].append(features.float().cpu())
        parts["logits"].append(head.logits(features).float().cpu())
    return {k: torch.cat(v) if v else torch.empty(0) for k, v in parts.items()}


def _make_optimizer(
    config: RunConfig, params: list[torch.nn.Parameter], total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    if config.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    return optimizer, schedule


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch as index batches; a last batch of one sample is dropped (BatchNorm needs two)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    return batches


def _training_tensors(split: Split, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images and labels, or a fixed random subset of ``limit`` of them."""
    if 0 < limit < len(split):
        keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(SNAPSHOT_SEED))[:limit]
        return split.normalised[keep], split.labels[keep]
    return split.normalised, split.labels


def _all_finite(modules: Sequence[torch.nn.Module]) -> bool:
    return all(bool(torch.isfinite(t).all()) for m in modules for t in m.state_dict().values() if t.is_floating_point())


class _RunTrainer:
    """Trains one config; kept as an object so the loop body stays readable."""

    def __init__(
        self,
        config: RunConfig,
        dataset: Dataset,
        writer: RunWriter,
        device: torch.device,
        on_progress: ProgressCallback | None,
        stop: threading.Event | None,
        run_index: int,
        n_runs: int,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.writer = writer
        self.device = device
        self.on_progress = on_progress or (lambda progress: None)
        self.stop = stop or threading.Event()
        self.run_index = run_index
        self.n_runs = n_runs
        self.metrics: list[dict[str, Any]] = []
        self.snapshots: list[torch.Tensor] = []

    def _report(self, epoch: int, step: int, steps: int, **extra: Any) -> None:
        self.on_progress(
            Progress(
                self.writer.run_id,
                self.config.loss,
                self.run_index,
                self.n_runs,
                epoch,
                self.config.epochs,
                step,
                steps,
                **extra,
            )
        )

    def run(self) -> str:
        config, dataset, device = self.config, self.dataset, self.device
        model, head = build_model_and_head(config, dataset)
        self.model, self.head = model.to(device), head.to(device)
        train_x, train_y = _training_tensors(dataset.train, config.train_limit)
        train_x, train_y = train_x.to(device), train_y.to(device)
        self.snapshot_idx = snapshot_indices(len(dataset.test), config.snapshot_points)
        generator = torch.Generator().manual_seed(config.seed)
        steps = len(_batches(len(train_y), config.batch_size, torch.Generator().manual_seed(0)))
        head.plan(config.epochs * steps)
        params = [p for p in (*model.parameters(), *head.parameters()) if p.requires_grad]
        optimizer, schedule = _make_optimizer(config, params, config.epochs * steps)
        train_seconds = 0.0
        images_seen = 0
        for epoch in range(1, config.epochs + 1):
            model.train()
            head.train()
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            term_sums: dict[str, torch.Tensor] = {}
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for step, idx in enumerate(_batches(len(train_y), config.batch_size, generator), start=1):
                if self.stop.is_set():
                    return self._finish("stopped", f"stopped by the user in epoch {epoch}", train_seconds, images_seen)
                idx = idx.to(device)
                x, y = train_x[idx], train_y[idx]
                features = model(x)
                loss, terms = head(features, y)
                if not math.isfinite(loss.item()):
                    raise Diverged(f"the loss became {loss.item()} in epoch {epoch}, step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach() * len(y)
                for name, value in terms.items():
                    term_sums[name] = term_sums.get(name, 0.0) + value.detach() * len(y)
                correct += (head.logits(features.detach()).argmax(1) == y).sum()
                seen += len(y)
                self._report(epoch, step, steps)
            epoch_seconds = time.perf_counter() - started
            if not _all_finite([model, head]):
                raise Diverged(f"the weights became non-finite in epoch {epoch}")
            train_seconds += epoch_seconds
            images_seen += seen
            self._end_epoch(epoch, steps, seen, loss_sum, term_sums, correct, epoch_seconds, schedule)
        return self._finish("finished", f"trained {config.epochs} epochs", train_seconds, images_seen)

    def _end_epoch(
        self,
        epoch: int,
        steps: int,
        seen: int,
        loss_sum: torch.Tensor,
        term_sums: dict[str, torch.Tensor],
        correct: torch.Tensor,
        seconds: float,
        schedule: Any,
    ) -> None:
        test = embed(self.model, self.head, self.dataset.test.normalised, self.device)
        test_acc = float((test["logits"].argmax(1) == self.dataset.test.labels).float().mean())
        record = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / seen,
            "terms": {name: float(value) / seen for name, value in term_sums.items()},
            "train_acc": float(correct) / seen,
            "test_acc": test_acc,
            "lr": float(schedule.get_last_lr()[0]),
            "seconds": seconds,
            "images_per_second": seen / max(seconds, 1e-9),
        }
        self.metrics.append(record)
        snapshot = test["features"][self.snapshot_idx]
        self.snapshots.append(snapshot)
        self.writer.write_metrics(self.metrics)
        self.writer.save_snapshots({"indices": self.snapshot_idx, "features": torch.stack(self.snapshots)})
        self.writer.set_status(
            "running", message=f"epoch {epoch} of {self.config.epochs}", epoch=epoch, test_acc=test_acc
        )
        self._report(epoch, steps, steps, metrics=record, snapshot=snapshot,
                     snapshot_labels=self.dataset.test.labels[self.snapshot_idx])

    def _finish(self, status: str, message: str, train_seconds: float, images_seen: int) -> str:
        """Save weights and final features, then the status; a stopped run keeps what it learned."""
        test = embed(self.model, self.head, self.dataset.test.normalised, self.device)
        labels = self.dataset.test.labels
        features = {
            "test_features": test["features"],
            "test_labels": labels,
            "test_logits": test["logits"],
            "snapshot_indices": self.snapshot_idx,
            "penultimate": test["penultimate"][self.snapshot_idx],
        }
        directions = self.head.class_directions()
        if directions is not None:
            features["class_directions"] = directions.float()
        self.writer.save_weights(self.model, self.head)
        self.writer.save_features(features)
        test_acc = float((test["logits"].argmax(1) == labels).float().mean())
        self.writer.set_status(
            status,
            message=message,
            test_acc=test_acc,
            train_seconds=train_seconds,
            images_per_second=images_seen / max(train_seconds, 1e-9),
            finished=time.time(),
        )
        return status


def train_run(
    config: RunConfig,
    store: RunStore,
    *,
    dataset: Dataset | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    run_index: int = 0,
    n_runs: int = 1,
    owner: str = "",
) -> RunRecord:
    """Train one run and return its record; divergence and errors end up in the record's status.
    ``owner`` identifies the app session that started it (empty for the CLI)."""
    config.validate()
    device = resolve_device(config.device)
    dataset = dataset or load_dataset(config.dataset, config.data_root)
    writer = store.create(config, owner=owner)
    trainer = _RunTrainer(config, dataset, writer, device, on_progress, stop, run_index, n_runs)
    try:
        status = trainer.run()
        message = ""
    except Diverged as err:
        status = "diverged"
        message = f"{err}; try a lower learning rate than {config.lr:g}"
        writer.set_status(status, message=message, finished=time.time())
    except Exception as err:  # a failed run must not take the rest of the experiment down
        status = "failed"
        message = f"{type(err).__name__}: {err}"
        writer.set_status(status, message=message, traceback=traceback.format_exc(), finished=time.time())
    trainer._report(len(trainer.metrics), 0, 1, status=status, message=message)
    return store.load(writer.run_id)


def train_experiment(
    configs: Sequence[RunConfig],
    store: RunStore,
    *,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str = "",
) -> list[RunRecord]:
    """Train several configs in turn, loading each dataset once. Stops early when ``stop`` is set."""
    for config in configs:
        config.validate()
        resolve_device(config.device)
    records = []
    for index, config in enumerate(configs):
        if stop is not None and stop.is_set():
            break
        dataset = load_dataset(config.dataset, config.data_root)
        records.append(
            train_run(
                config,
                store,
                dataset=dataset,
                on_progress=on_progress,
                stop=stop,
                run_index=index,
                n_runs=len(configs),
                owner=owner,
            )
        )
    return records


class TrainingJob:
    """An experiment training on a background thread. Thread-safe to poll from a UI.

    Poll it with :meth:`snapshot`. ``records`` fills as runs end; ``error`` holds a message if the
    job could not start (bad data, bad device).
    """

    def __init__(
        self, configs: Sequence[RunConfig], store: RunStore, owner: str = "", on_done: Callable[[], None] | None = None
    ) -> None:
        self.configs = list(configs)
        self.store = store
        self.owner = owner
        self.on_done = on_done
        self.stop_event = threading.Event()
        self.latest: dict[int, Progress] = {}
        self.history: dict[int, list[dict[str, Any]]] = {}
        self.previews: dict[int, Progress] = {}
        self.records: list[RunRecord] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="losslens-training", daemon=True)

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self.latest[progress.run_index] = progress
            if progress.metrics is not None:
                self.history.setdefault(progress.run_index, []).append(progress.metrics)
            if progress.snapshot is not None:
                self.previews[progress.run_index] = progress

    def _work(self) -> None:
        try:
            records = train_experiment(
                self.configs, self.store, on_progress=self._on_progress, stop=self.stop_event, owner=self.owner
            )
            with self._lock:
                self.records = records
        except Exception as err:  # reported to the UI, which shows it
            with self._lock:
                self.error = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
        finally:
            if self.on_done is not None:
                self.on_done()

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress so far."""
        with self._lock:
            history = {k: list(v) for k, v in self.history.items()}
            return JobSnapshot(dict(self.latest), history, dict(self.previews))


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """Per run index: the newest progress, the per-epoch metrics so far, and the newest progress
    that carried a feature snapshot (for the live preview)."""

    latest: dict[int, Progress]
    history: dict[int, list[dict[str, Any]]]
    previews: dict[int, Progress]
