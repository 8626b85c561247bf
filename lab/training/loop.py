"""The trainer: a RunConfig in, a finished run directory out.

``train_run`` trains one model + loss head with the whole dataset held on the device as tensors
(no DataLoader, no per-sample decoding), SGD with Nesterov momentum and a one-cycle schedule by
default, and writes everything the app needs into the run directory (:mod:`lab.runs.contents`): before the
first step and after every epoch, the features, class directions and accuracy of a fixed test subset.
After every epoch it measures the accuracy on a fixed evaluation subset (``RunConfig.eval_images``, which
holds the snapshot subset), and the whole test set once, at the end (the final accuracy and features).
``train_experiment`` trains several configs, its runs sharing one :class:`DeviceData` per dataset and
device and training in lockstep (:func:`train_group`: each step of an epoch, every run takes its own step).
A run alone is a group of one, so there is one training loop, and a run's numbers never depend on the runs
trained beside it. Both report :class:`TrainingProgress` and stop between steps when asked;
:class:`lab.training.jobs.TrainingJob` runs an experiment on a background thread.

Divergence (a non-finite loss or weights) stops a run at once and marks it ``diverged``; an
unexpected error marks it ``failed``; either way the next run of the experiment still trains.

Speed (measured in ``bench/``): the loop never waits for the device. Batches are index slices of
tensors already on the device; the shuffled order moves to the device once per epoch; losses,
accuracies and term sums accumulate on the device and are read once per epoch; each step's loss is
checked for divergence through :class:`LossWatch` without a per-step host sync on an accelerator.
The model and its batches use the channels-last memory layout (``RunConfig.channels_last``), which
oneDNN's CPU convolutions run faster than the default layout.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import torch

import losses
import models
from lab.datasets import Dataset, load_dataset
from lab.runs.io import RunWriteError
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.runs.writer import RunWriter, ended_on_error
from lab.settings.config import RunConfig
from lab.settings.device import resolve_device
from lab.training.device_data import DeviceData, data_key, epoch_batches, shared_device_data, synchronize
from lab.training.evaluation import embed, evaluation_indices, snapshot_indices
from lab.training.optimizer import make_optimizer
from lab.training.watch import Diverged, LossWatch, all_finite

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingProgress:
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


ProgressCallback = Callable[[TrainingProgress], None]


def build_model_and_head(config: RunConfig, dataset: Dataset) -> tuple[models.FeatureNet, losses.LossHead]:
    """Fresh model and loss head for ``config``, initialised from its seed."""
    torch.manual_seed(config.seed)
    model = models.build(config.model, dataset.in_channels, dataset.image_size, config.feat_dim)
    head = losses.build(config.loss, config.feat_dim, dataset.n_classes, **config.loss_params)
    return model, head


class RunTrainer:
    """Trains one config, one step at a time, so that :func:`train_group` can interleave several runs.

    Every run owns everything it computes: its model, head, optimizer, schedule, batch order, divergence
    watch and writer. Interleaving runs therefore changes nothing in any of them: a run's weights and
    numbers are bit for bit those it gets when trained alone on the same machine."""

    def __init__(
        self,
        config: RunConfig,
        data: DeviceData,
        writer: RunWriter,
        on_progress: ProgressCallback | None,
        run_index: int,
        n_runs: int,
    ) -> None:
        self.config = config
        self.data = data
        self.dataset = data.dataset
        self.device = data.device
        self.writer = writer
        self.run_id = writer.run_id
        self.on_progress = on_progress or (lambda progress: None)
        self.run_index = run_index
        self.n_runs = n_runs
        self.metrics: list[dict[str, Any]] = []
        self.snapshot_epochs: list[int] = []
        self.snapshot_features: list[torch.Tensor] = []
        self.snapshot_directions: list[torch.Tensor | None] = []
        self.snapshot_accuracy: list[float] = []
        self.last_test: dict[str, torch.Tensor] | None = None  # the whole test set's embedding of the current weights
        self.train_seconds = 0.0
        self.images_seen = 0
        self.final_acc: float | None = None

    def report(self, epoch: int, step: int, steps: int, **extra: Any) -> None:
        self.on_progress(
            TrainingProgress(
                self.run_id,
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

    def prepare(self) -> None:
        """Everything before the first step: model, head, data, the evaluation subset, the epoch-0
        snapshot, the optimizer and schedule."""
        config, dataset, device = self.config, self.dataset, self.device
        model, head = build_model_and_head(config, dataset)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.head = model.to(device), head.to(device)
        self.train_x, self.train_y = self.data.train(config.train_limit)
        self.test_x = self.data.test()[0]
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.snapshot_idx = snapshot_indices(len(dataset.test), config.snapshot_points)
        eval_idx = evaluation_indices(len(dataset.test), config.eval_images, config.snapshot_points)
        if eval_idx is None:
            self.eval_x, self.eval_labels, self.snapshot_in_eval = self.test_x, dataset.test.labels, self.snapshot_idx
        else:
            self.eval_x, self.eval_labels = self.test_x[eval_idx.to(self.test_x.device)], dataset.test.labels[eval_idx]
            self.snapshot_in_eval = torch.searchsorted(eval_idx, self.snapshot_idx)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps = len(epoch_batches(len(self.train_y), config.batch_size, torch.Generator().manual_seed(0)))
        self.head.plan(config.epochs * self.steps)
        self._record_epoch_zero()
        self.params = [p for p in (*self.model.parameters(), *self.head.parameters()) if p.requires_grad]
        self.optimizer, self.schedule = make_optimizer(config, self.params, config.epochs * self.steps)
        self.max_grad_norm = self.head.max_grad_norm()
        self.watch = LossWatch(device)

    def start_epoch(self) -> None:
        """Training mode, empty sums for the epoch, and its shuffled index batches."""
        self.model.train()
        self.head.train()
        self.loss_sum = torch.zeros((), device=self.device)
        self.term_sums: dict[str, torch.Tensor] = {}
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.seen = 0
        self.epoch_seconds = 0.0
        self.epoch_batches = epoch_batches(len(self.train_y), self.config.batch_size, self.generator, self.device)

    def step(self, epoch: int, step: int) -> None:
        """Train on the epoch's batch number ``step`` (from 1): forward, loss, backward, clipping, the
        optimizer and the schedule, then add the batch to the epoch's sums and report progress. Its time
        counts as this run's training time (on an accelerator the queued work is paid for at the end of
        the epoch, where :meth:`end_epoch` waits for it)."""
        started = time.perf_counter()
        idx = self.epoch_batches[step - 1]
        images, labels = self.train_x[idx].contiguous(memory_format=self.memory_format), self.train_y[idx]
        self.last_test = None
        features = self.model(images)
        loss, terms = self.head(features, labels)
        self.watch.record(loss, epoch, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        n = len(labels)
        self.loss_sum += loss.detach() * n
        for name, value in terms.items():
            self.term_sums[name] = self.term_sums.get(name, 0.0) + value.detach() * n
        self.correct += (self.head.logits(features.detach()).argmax(1) == labels).sum()
        self.seen += n
        self.epoch_seconds += time.perf_counter() - started
        self.report(epoch, step, self.steps)

    def end_epoch(self, epoch: int) -> None:
        """Check the epoch for divergence, then evaluate, record and report it."""
        started = time.perf_counter()
        self.watch.flush()
        synchronize(self.device)
        seconds = self.epoch_seconds + time.perf_counter() - started
        if not all_finite([self.model, self.head]):
            raise Diverged(f"the weights became non-finite in epoch {epoch}")
        self.train_seconds += seconds
        self.images_seen += self.seen
        self._evaluate_epoch(epoch, seconds)

    def _record_epoch_zero(self) -> None:
        """The snapshot subset before the first step. Only the subset is embedded (not the evaluation subset
        as after each epoch): its accuracy is the untrained model's, at chance."""
        subset = embed(self.model, self.head, self.test_x[self.snapshot_idx.to(self.test_x.device)], self.device)
        labels = self.dataset.test.labels[self.snapshot_idx]
        accuracy = float((subset["logits"].argmax(1) == labels).float().mean()) if len(labels) else 0.0
        self._snapshot(0, subset["features"], accuracy)

    def _snapshot(self, epoch: int, features: torch.Tensor, test_acc: float) -> None:
        """Add epoch ``epoch``'s subset features, class directions and accuracy, and rewrite the file."""
        directions = self.head.class_directions()
        self.snapshot_epochs.append(epoch)
        self.snapshot_features.append(features)
        self.snapshot_directions.append(None if directions is None else directions.detach().float().cpu().clone())
        self.snapshot_accuracy.append(test_acc)
        has_directions = all(d is not None for d in self.snapshot_directions)
        self.writer.save_snapshots(
            RunSnapshots(
                indices=self.snapshot_idx,
                features=torch.stack(self.snapshot_features),
                epochs=torch.tensor(self.snapshot_epochs, dtype=torch.long),
                class_directions=torch.stack(self.snapshot_directions) if has_directions else None,
                test_acc=torch.tensor(self.snapshot_accuracy, dtype=torch.float32),
            )
        )

    def _evaluate_epoch(self, epoch: int, seconds: float) -> None:
        """Evaluate the fixed evaluation subset (the whole test set when ``eval_images`` asks for it) and
        write the epoch's metrics, snapshot and status."""
        evaluated = embed(self.model, self.head, self.eval_x, self.device)
        if self.eval_x is self.test_x:
            self.last_test = evaluated  # the whole test set: the final features reuse it
        test_acc = float((evaluated["logits"].argmax(1) == self.eval_labels).float().mean())
        record = {
            "epoch": epoch,
            "train_loss": float(self.loss_sum) / self.seen,
            "terms": {name: float(value) / self.seen for name, value in self.term_sums.items()},
            "train_acc": float(self.correct) / self.seen,
            "test_acc": test_acc,
            "eval_images": len(self.eval_labels),
            "lr": float(self.schedule.get_last_lr()[0]),
            "seconds": seconds,
            "images_per_second": self.seen / max(seconds, 1e-9),
        }
        self.metrics.append(record)
        snapshot = evaluated["features"][self.snapshot_in_eval]
        self.writer.write_metrics(self.metrics)
        self._snapshot(epoch, snapshot, test_acc)
        self.writer.set_status(
            "running", message=f"epoch {epoch} of {self.config.epochs}", epoch=epoch, test_acc=test_acc
        )
        self.report(
            epoch,
            self.steps,
            self.steps,
            metrics=record,
            snapshot=snapshot,
            snapshot_labels=self.dataset.test.labels[self.snapshot_idx],
        )

    def finish(self, status: str, message: str) -> tuple[str, str]:
        """Evaluate the whole test set, save weights and final features, then the status (a stopped run
        keeps what it learned); returns the status and message as written."""
        test = self.last_test or embed(self.model, self.head, self.test_x, self.device)  # no step since: reuse
        labels = self.dataset.test.labels
        directions = self.head.class_directions()
        features = RunFeatures(
            test_features=test["features"],
            test_labels=labels,
            test_logits=test["logits"],
            snapshot_indices=self.snapshot_idx,
            penultimate=test["penultimate"][self.snapshot_idx],
            class_directions=None if directions is None else directions.detach().float(),
            snapshot_images=self.dataset.test.images[self.snapshot_idx],
        )
        self.writer.save_weights(self.model, self.head)
        self.writer.save_features(features)
        self.final_acc = float((test["logits"].argmax(1) == labels).float().mean())
        self.writer.set_status(
            status,
            message=message,
            test_acc=self.final_acc,
            train_seconds=self.train_seconds,
            images_per_second=self.images_seen / max(self.train_seconds, 1e-9),
            finished=time.time(),
        )
        logger.info(
            "run %s %s after %d epochs, test accuracy %.4f", self.run_id, status, len(self.metrics), self.final_acc
        )
        return status, ""

    def fail(self, err: Exception) -> tuple[str, str]:
        """Log and write how ``err`` ended the run (diverged or failed); call it where ``err`` is handled."""
        if isinstance(err, Diverged):
            message = f"{err}; try a lower learning rate than {self.config.lr:g}"
            logger.warning("run %s diverged: %s", self.run_id, message)
            return self._record_end("diverged", message, finished=time.time())
        expected = isinstance(err, RunWriteError)  # a full disk: the message says where and what to do
        message = str(err) if expected else f"{type(err).__name__}: {err}"
        logger.error("run %s failed: %s", self.run_id, message, exc_info=None if expected else err)
        return self._record_end("failed", message, traceback=traceback.format_exc(), finished=time.time())

    def _record_end(self, status: str, message: str, **fields: Any) -> tuple[str, str]:
        """Write how the run ended and return (status, message) as reported. When even that write fails (a
        full disk), the run is ``failed`` with the write's problem: RunStore.load in this process says so
        too, so the run is never shown training forever and can be deleted."""
        try:
            self.writer.set_status(status, message=message, **fields)
        except RunWriteError as err:
            logger.error("run %s %s, and that could not be written: %s", self.run_id, status, err)
            return "failed", str(err)
        return status, message


class _Group:
    """Runs trained in lockstep: every step of an epoch, each run still training takes its own step.

    A run alone is a group of one, so there is one training loop. Runs may differ in anything (epochs and
    batches included): a run whose epochs are done finishes, the others go on. A run that diverges or fails
    ends alone (its status says why); Stop ends them all, keeping what they learned."""

    def __init__(self, trainers: list[RunTrainer], store: RunStore, stop: threading.Event | None) -> None:
        self.trainers = trainers
        self.store = store
        self.stop = stop or threading.Event()
        self.records: dict[int, RunRecord] = {}
        self.alive: list[RunTrainer] = []

    def _end(self, trainer: RunTrainer, ended: tuple[str, str]) -> None:
        status, message = ended
        trainer.report(len(trainer.metrics), 0, 1, status=status, message=message)
        self.records[trainer.run_index] = self.store.load(trainer.run_id)
        self.alive.remove(trainer)

    def _guarded(self, trainer: RunTrainer, work: Callable[[], Any]) -> None:
        """Run ``work`` for ``trainer``; if it raises, that run ends diverged or failed, the others go on."""
        try:
            work()
        except Exception as err:  # one run's failure must not take the rest of the experiment down
            self._end(trainer, trainer.fail(err))

    def run(self) -> list[RunRecord]:
        for trainer in self.trainers:
            self.alive.append(trainer)
            self._guarded(trainer, trainer.prepare)
        epoch = 0
        while self.alive:
            epoch += 1
            for trainer in [t for t in self.alive if t.config.epochs < epoch]:
                message = f"trained {trainer.config.epochs} epochs"
                self._guarded(trainer, lambda t=trainer, m=message: self._end(t, t.finish("finished", m)))
            if self.alive and not self._epoch(epoch):
                for trainer in list(self.alive):
                    message = f"stopped by the user in epoch {epoch}"
                    self._guarded(trainer, lambda t=trainer, m=message: self._end(t, t.finish("stopped", m)))
        return [self.records[t.run_index] for t in self.trainers]

    def _epoch(self, epoch: int) -> bool:
        """Train one epoch of every run still training; False when stopped."""
        for trainer in list(self.alive):
            self._guarded(trainer, trainer.start_epoch)
        for step in range(1, max((t.steps for t in self.alive), default=0) + 1):
            if self.stop.is_set():
                for trainer in list(self.alive):
                    self._guarded(trainer, trainer.watch.flush)  # a divergence before the stop still counts
                return False
            for trainer in [t for t in self.alive if step <= t.steps]:
                self._guarded(trainer, lambda t=trainer, s=step: t.step(epoch, s))
        for trainer in list(self.alive):
            self._guarded(trainer, lambda t=trainer: t.end_epoch(epoch))
        return True


def train_group(
    configs: Sequence[RunConfig],
    store: RunStore,
    data: DeviceData,
    *,
    run_indices: Sequence[int] | None = None,
    n_runs: int | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str = "",
) -> list[RunRecord]:
    """Train ``configs`` in lockstep on ``data`` (one dataset on one device) and return their records in
    order; ``run_indices`` are their places in the experiment and ``n_runs`` its size, for progress."""
    indices = list(range(len(configs))) if run_indices is None else list(run_indices)
    trainers = []
    with ended_on_error([]) as created:  # a full disk at the third run leaves no earlier one "running"
        for config, index in zip(configs, indices, strict=True):
            writer = store.create(config, owner=owner)
            created.append(writer)
            logger.info(
                "run %s started: %s on %s, %s, %d-D, %d epochs, on %s in %s",
                writer.run_id,
                config.loss,
                config.dataset,
                config.model,
                config.feat_dim,
                config.epochs,
                data.device,
                writer.run_dir,
            )
            trainers.append(RunTrainer(config, data, writer, on_progress, index, n_runs or len(configs)))
    return _Group(trainers, store, stop).run()


def train_run(
    config: RunConfig,
    store: RunStore,
    *,
    dataset: Dataset | None = None,
    data: DeviceData | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    run_index: int = 0,
    n_runs: int = 1,
    owner: str = "",
) -> RunRecord:
    """Train one run (a group of one) and return its record; divergence and errors end up in its status.

    ``data`` is the dataset already on the config's device (shared with other runs); without it the run
    puts ``dataset`` (loaded from the config when None) on the device itself. ``owner`` identifies the app
    session that started it (empty for the CLI)."""
    config.validate()
    data = shared_device_data(config, data, dataset)
    common = {"on_progress": on_progress, "stop": stop, "owner": owner}
    return train_group([config], store, data, run_indices=[run_index], n_runs=n_runs, **common)[0]


def train_experiment(
    configs: Sequence[RunConfig],
    store: RunStore,
    *,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str = "",
    lockstep: bool = True,
) -> list[RunRecord]:
    """Train several configs, loading each dataset once and putting it on each device once, and return
    their records in the order of ``configs``. With ``lockstep`` the runs on one dataset and device train
    together, step by step (up to :data:`MAX_GROUP` at a time), so the live view shows them all forming at
    once; without, one after another. Either way every run computes exactly what it computes alone.
    Stops early when ``stop`` is set."""
    for config in configs:
        config.validate()
        resolve_device(config.device)
    groups = lockstep_groups(configs) if lockstep else [[index] for index in range(len(configs))]
    records: dict[int, RunRecord] = {}
    shared: dict[tuple[str, str | None, str], DeviceData] = {}  # freed when the experiment ends
    for group in groups:
        if stop is not None and stop.is_set():
            break
        key = data_key(configs[group[0]])
        if key not in shared:
            first = configs[group[0]]
            shared[key] = DeviceData(load_dataset(first.dataset, first.data_root), key[2])
        members = [configs[i] for i in group]
        common = {"on_progress": on_progress, "stop": stop, "owner": owner, "n_runs": len(configs)}
        records.update(zip(group, train_group(members, store, shared[key], run_indices=group, **common), strict=True))
    return [records[index] for index in sorted(records)]


MAX_GROUP = 16  # runs in lockstep at once: each holds its model, optimizer and evaluation copies in memory


def lockstep_groups(configs: Sequence[RunConfig], limit: int = MAX_GROUP) -> list[list[int]]:
    """Indices of ``configs`` in the groups that train in lockstep (at most ``limit`` each, sharing
    :func:`data_key`), in the order of their first run."""
    by_key: dict[tuple[str, str | None, str], list[int]] = {}
    for index, config in enumerate(configs):
        by_key.setdefault(data_key(config), []).append(index)
    return sorted(
        indices[start : start + limit] for indices in by_key.values() for start in range(0, len(indices), limit)
    )
