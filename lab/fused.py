"""Fused training: the runs of an experiment that share their data and model shape train as one.

Runs that agree on everything but the loss, its hyperparameters, the learning rate, the weight decay and
the seed (:data:`FUSION_FIELDS`) form a group. Their models become one channel-stacked model
(:func:`group_layers`): run r's channels are the r-th block of every activation, each convolution is one grouped
convolution (R times the groups), each BatchNorm one BatchNorm over R times the channels (its statistics
are per channel, so every run's are its own), each linear layer one batched matrix product. Every batch
then takes one forward and one backward pass for all the runs instead of one per run: the same
arithmetic in R times fewer, R times larger operations, which is what small models on an accelerator
(and Python's per-operation overhead anywhere) need. Runs with the same seed see the same batches; runs
with other seeds get their own, stacked the same way.

Everything else stays per run, in each run's :class:`lab.trainer._RunTrainer`: each loss head is applied
to its run's part of the stacked features, and each run keeps its own optimizer, one-cycle schedule,
gradient clipping, divergence watch, evaluation and :class:`lab.runstore.RunWriter`, so a fused run
writes the same files as one trained alone and matches it up to float rounding. This works because every
run's model parameters and buffers are views into the stacked model's tensors: its own optimizer updates
its part in place, and its own module (for evaluation and saving) always holds its current weights.

A run that diverges or fails drops out (its status says why) and the others train on; the stacked model is
then rebuilt from the runs that are left. A model with a layer :func:`group_layers` does not know trains its
runs one by one (:func:`stackable` tries each model shape once).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from lab.config import RunConfig
from lab.device import resolve_device
from lab.runstore import RunRecord, RunStore
from lab.trainer import (
    DeviceData,
    ProgressCallback,
    _concluded,
    _ended,
    _failed,
    _RunTrainer,
    _start,
)

logger = logging.getLogger(__name__)

# What the runs of a group must share: the data, its order's length, the model's shape and the schedule.
FUSION_FIELDS = (
    "dataset",
    "data_root",
    "model",
    "feat_dim",
    "train_limit",
    "epochs",
    "batch_size",
    "optimizer",
    "channels_last",
    "eval_images",
    "snapshot_points",
)
MAX_GROUP = 16  # runs per stack: beyond this a step's convolutions are large enough on their own


def fusion_key(config: RunConfig) -> tuple[Any, ...]:
    """Runs with equal keys can train together."""
    return (*(getattr(config, name) for name in FUSION_FIELDS), str(resolve_device(config.device)))


def fusable_groups(configs: Sequence[RunConfig], limit: int = MAX_GROUP) -> list[list[int]]:
    """Indices of ``configs`` in groups that train together (at most ``limit`` each), in the order of their
    first run; a run that shares its key with no other, or whose model cannot be stacked, is a group of one."""
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for index, config in enumerate(configs):
        by_key.setdefault(fusion_key(config), []).append(index)
    groups = []
    for indices in by_key.values():
        if len(indices) > 1 and not stackable(configs[indices[0]]):
            groups += [[index] for index in indices]
            continue
        groups += [indices[start : start + limit] for start in range(0, len(indices), limit)]
    return sorted(groups)


_STACKABLE: dict[tuple[Any, ...], bool] = {}


def stackable(config: RunConfig) -> bool:
    """Whether the models of this config's shape train stacked: two fresh ones, grouped (:func:`group_layers`),
    must compute the features they compute alone and take a backward pass. Tried once per shape; a model
    with a layer that cannot be grouped trains its runs one by one."""
    from lab import datasets

    info = datasets.info(config.dataset)
    key = (config.model, info.channels, info.image_size, config.feat_dim, config.channels_last)
    if key not in _STACKABLE:
        try:
            with torch.random.fork_rng(devices=[]):  # the caller's random numbers stay as they were
                trial = [models.build(config.model, info.channels, info.image_size, config.feat_dim) for _ in range(2)]
                images = torch.randn(2, 4, info.channels, info.image_size, info.image_size)
            if config.channels_last:
                trial = [model.to(memory_format=torch.channels_last) for model in trial]
            with torch.no_grad():
                alone = torch.stack([model(batch) for model, batch in zip(trial, images, strict=True)])
            together = _Stack(trial, config.channels_last).features(images, batched=True)
            if not torch.allclose(together, alone, rtol=1e-4, atol=1e-5):
                raise ValueError("the grouped model computes other features than the models alone")
            together.sum().backward()
            _STACKABLE[key] = True
        except Exception as err:  # any failure means: train these runs one by one
            logger.info(
                "%s models cannot be stacked (%s: %s); their runs train one by one",
                config.model,
                type(err).__name__,
                err,
            )
            _STACKABLE[key] = False
    return _STACKABLE[key]


def _stacked(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``tensors`` stacked along a new first dimension, each slice in its tensor's memory layout (a
    channels-last convolution weight stays channels-last)."""
    first = tensors[0]
    if first.ndim == 4 and not first.is_contiguous() and first.is_contiguous(memory_format=torch.channels_last):
        return torch.stack([t.permute(0, 2, 3, 1) for t in tensors]).permute(0, 1, 4, 2, 3)
    return torch.stack([t.contiguous() for t in tensors])


class _Grouped(nn.Module):
    """One layer of R models computed at once on channel-stacked tensors (model r's channels are the r-th
    block of channels). Its tensors hold every model's tensors, and :meth:`run_view` cuts out one model's."""

    runs: int

    def run_view(self, name: str, tensor: torch.Tensor, index: int) -> torch.Tensor:
        """Model ``index``'s part of ``tensor``, this layer's tensor ``name`` or its gradient."""
        return tensor.unflatten(0, (self.runs, -1))[index]

    def run_tensors(self, index: int) -> dict[str, torch.Tensor]:
        """Model ``index``'s parameters and buffers, under the original layer's names, as views into this layer's."""
        own = {name: tensor for name, tensor in self.named_parameters()} | dict(self.named_buffers())
        return {name.rpartition(".")[2]: self.run_view(name, tensor.detach(), index) for name, tensor in own.items()}


class _GroupedConv2d(_Grouped):
    """R convolutions as one grouped convolution (R times the groups)."""

    def __init__(self, layers: Sequence[nn.Conv2d]) -> None:
        super().__init__()
        first = layers[0]
        if first.padding_mode != "zeros":
            raise TypeError(f"cannot group a convolution with padding mode {first.padding_mode!r}")
        self.runs = len(layers)
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.groups = first.groups * self.runs
        self.weight = nn.Parameter(_stacked([layer.weight for layer in layers]).flatten(0, 1))
        self.bias = None if first.bias is None else nn.Parameter(torch.cat([layer.bias for layer in layers]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.conv2d(images, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _GroupedBatchNorm(_Grouped):
    """R batch normalizations as one over R times the channels: the statistics are per channel, so each
    model's are its own. The step counter ``num_batches_tracked`` is one tensor the models share."""

    def __init__(self, layers: Sequence[nn.BatchNorm1d | nn.BatchNorm2d]) -> None:
        super().__init__()
        first = layers[0]
        self.runs = len(layers)
        tensors = [*first.parameters(), *first.buffers()]
        self.norm = type(first)(
            first.num_features * self.runs,
            eps=first.eps,
            momentum=first.momentum,
            affine=first.affine,
            track_running_stats=first.track_running_stats,
            device=tensors[0].device if tensors else None,
        )
        for name, tensor in (*self.norm.named_parameters(), *self.norm.named_buffers()):
            parts = [getattr(layer, name) for layer in layers]
            tensor.copy_(parts[0] if tensor.ndim == 0 else torch.cat(parts))

    def run_view(self, name: str, tensor: torch.Tensor, index: int) -> torch.Tensor:
        return tensor if tensor.ndim == 0 else super().run_view(name, tensor, index)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(features)


class _GroupedLinear(_Grouped):
    """R linear layers as one batched matrix product on B x (R * in) features."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.runs = len(layers)
        self.weight = nn.Parameter(torch.stack([layer.weight for layer in layers]))  # R x out x in
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([layer.bias for layer in layers])) if has_bias else None

    def run_view(self, name: str, tensor: torch.Tensor, index: int) -> torch.Tensor:
        return tensor[index]  # stacked along a dimension of their own

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2:
            raise TypeError("a grouped linear layer takes B x features")
        batch = features.shape[0]
        out = torch.bmm(features.reshape(batch, self.runs, -1).transpose(0, 1), self.weight.transpose(1, 2))
        if self.bias is not None:
            out = out + self.bias.unsqueeze(1)
        return out.transpose(0, 1).reshape(batch, -1)


class _GroupedPReLU(_Grouped):
    """R PReLUs (one slope or one per channel each) as one PReLU with a slope per channel."""

    def __init__(self, layers: Sequence[nn.PReLU]) -> None:
        super().__init__()
        self.runs = len(layers)
        self.weight = nn.Parameter(torch.stack([layer.weight for layer in layers]))  # R x slopes

    def run_view(self, name: str, tensor: torch.Tensor, index: int) -> torch.Tensor:
        return tensor[index]  # stacked along a dimension of their own

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        channels = images.shape[1] // self.runs
        return F.prelu(images, self.weight.expand(self.runs, channels).reshape(-1))


_GROUPED: dict[type[nn.Module], type[_Grouped]] = {
    nn.Conv2d: _GroupedConv2d,
    nn.BatchNorm1d: _GroupedBatchNorm,
    nn.BatchNorm2d: _GroupedBatchNorm,
    nn.Linear: _GroupedLinear,
    nn.PReLU: _GroupedPReLU,
}
# Layers without tensors that act on each channel alone (or, Flatten, keep each model's channels together).
_PER_CHANNEL = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity)


def group_layers(layers: Sequence[nn.Module]) -> nn.Module:
    """One module that computes all of ``layers`` (the same layer of R models of one architecture) on
    channel-stacked tensors; TypeError for a layer it does not know how to group."""
    first = layers[0]
    if type(first) in _GROUPED:
        return _GROUPED[type(first)](layers)
    if type(first) in _PER_CHANNEL:
        return copy.deepcopy(first)
    if type(first) is nn.Flatten and (first.start_dim, first.end_dim) == (1, -1):
        return copy.deepcopy(first)
    if first._parameters or first._buffers or not first._modules:
        raise TypeError(f"cannot group {type(first).__name__} layers")
    container = copy.copy(first)  # the same forward over grouped children
    container._parameters, container._buffers = {}, {}
    container._modules = {
        name: None if child is None else group_layers([layer.get_submodule(name) for layer in layers])
        for name, child in first._modules.items()
    }
    return container


class _Stack:
    """The models of several runs as one channel-stacked model (:func:`group_layers`) whose tensors every model's
    own parameters and buffers are views of, so each run's optimizer updates its part in place."""

    def __init__(self, modules: Sequence[nn.Module], channels_last: bool) -> None:
        self.modules = list(modules)
        self.runs = len(self.modules)
        self.channels_last = channels_last
        self.grads: list[tuple[nn.Parameter, nn.Parameter, _Grouped, str, int]] = []
        with torch.no_grad():
            self.grouped = group_layers(self.modules).train()
            for path, layer in self.grouped.named_modules():
                if not isinstance(layer, _Grouped):
                    continue
                own = dict(layer.named_parameters())
                for index, module in enumerate(self.modules):
                    original = module.get_submodule(path)
                    for name, view in layer.run_tensors(index).items():
                        if name in original._parameters:
                            original._parameters[name].data = view
                            grouped_name = next(n for n in own if n.rpartition(".")[2] == name)
                            self.grads.append(
                                (original._parameters[name], own[grouped_name], layer, grouped_name, index)
                            )
                        else:
                            setattr(original, name, view)
        self.params = list(self.grouped.parameters())

    def features(self, images: torch.Tensor, batched: bool) -> torch.Tensor:
        """R x B x D features of every model in training mode: ``images`` is R x B x C x H x W (``batched``,
        a batch per model) or B x C x H x W (the same batch for all)."""
        if batched:
            batch = images.shape[1]
            stacked = images.transpose(0, 1).reshape(batch, -1, *images.shape[3:])
        else:
            batch = images.shape[0]
            stacked = images.repeat(1, self.runs, 1, 1)
        if self.channels_last:
            stacked = stacked.contiguous(memory_format=torch.channels_last)
        return self.grouped(stacked).reshape(batch, self.runs, -1).transpose(0, 1)

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def hand_out_gradients(self) -> None:
        """Give every model's parameters their part of the grouped gradients, for its own optimizer."""
        for param, grouped, layer, name, index in self.grads:
            param.grad = None if grouped.grad is None else layer.run_view(name, grouped.grad, index)


class _FusedGroup:
    """Trains the runs of one group together; each run ends through the trainer's own bookkeeping."""

    def __init__(self, trainers: list[_RunTrainer], store: RunStore, stop: threading.Event | None) -> None:
        self.trainers = trainers
        self.store = store
        self.stop = stop or threading.Event()
        self.records: dict[int, RunRecord] = {}
        self.alive: list[_RunTrainer] = []

    def _end(self, trainer: _RunTrainer, status: str, message: str) -> None:
        self.records[trainer.run_index] = _concluded(trainer, self.store, status, message)
        if trainer in self.alive:
            self.alive.remove(trainer)

    def _guarded(self, trainer: _RunTrainer, work: Callable[[], Any]) -> bool:
        """Run ``work`` for ``trainer``; if it raises, the run ends diverged or failed. True if it did not."""
        try:
            work()
            return True
        except Exception as err:  # one run's failure ends that run only
            self._end(trainer, *_failed(trainer, err))
            return False

    def _restack(self) -> None:
        self.stack = _Stack([t.model for t in self.alive], self.alive[0].config.channels_last)
        self.shared_batches = len({t.config.seed for t in self.alive}) == 1

    def run(self) -> list[RunRecord]:
        for trainer in list(self.trainers):
            self.alive.append(trainer)
            self._guarded(trainer, trainer.prepare)
        config = self.trainers[0].config
        if self.alive:
            self._restack()
            logger.info(
                "training %d runs together in one stacked %s (runs %s)",
                len(self.alive),
                config.model,
                ", ".join(t.writer.run_id for t in self.alive),
            )
        for epoch in range(1, config.epochs + 1):
            if not self.alive:
                break
            if not self._epoch(epoch):
                break
        for trainer in list(self.alive):
            message = f"trained {trainer.config.epochs} epochs"
            self._guarded(trainer, lambda t=trainer, m=message: self._end(t, *_ended(t, t.finish("finished", m))))
        return [self.records[t.run_index] for t in self.trainers]

    def _epoch(self, epoch: int) -> bool:
        """Train one epoch of every run still alive; False when stopped."""
        batches = {t.run_index: t.start_epoch() for t in self.alive}
        for step in range(1, len(batches[self.alive[0].run_index]) + 1):
            if self.stop.is_set():
                for trainer in list(self.alive):
                    self._guarded(trainer, lambda t=trainer: self._end(t, *_ended(t, t.stopped(epoch))))
                return False
            self._step(epoch, step, [batches[t.run_index][step - 1] for t in self.alive])
            if not self.alive:
                return False
        for trainer in list(self.alive):
            self._guarded(trainer, lambda t=trainer: t.end_epoch(epoch))
        if self.alive and len(self.alive) != len(self.stack.modules):
            self._restack()
        return bool(self.alive)

    def _step(self, epoch: int, step: int, indices: list[torch.Tensor]) -> None:
        """One batch of every run: a stacked forward pass, each head on its slice, one backward pass, then
        each run's own optimizer step."""
        running = list(self.alive)
        if self.shared_batches:
            images, labels = running[0].batch(indices[0])
            features = self.stack.features(images, batched=False)
            batch_labels = [labels] * len(running)
        else:
            pairs = [t.batch(idx) for t, idx in zip(running, indices, strict=True)]
            features = self.stack.features(torch.stack([x for x, _ in pairs]), batched=True)
            batch_labels = [y for _, y in pairs]
        outputs: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]] = {}
        for trainer, run_features, labels in zip(running, features.unbind(0), batch_labels, strict=True):

            def head(t: _RunTrainer = trainer, f: torch.Tensor = run_features, y: torch.Tensor = labels) -> None:
                loss, terms = t.head(f, y)
                t.watch.record(loss, epoch, step)
                outputs[t.run_index] = (loss, terms, f)

            self._guarded(trainer, head)
        for trainer in running:
            trainer.optimizer.zero_grad(set_to_none=True)
        self.stack.zero_grad()
        if outputs:
            torch.stack([loss for loss, _, _ in outputs.values()]).sum().backward()
            self.stack.hand_out_gradients()
        for trainer, labels in zip(running, batch_labels, strict=True):
            if trainer.run_index in outputs:
                loss, terms, run_features = outputs[trainer.run_index]
                self._guarded(
                    trainer, lambda t=trainer, o=(loss, terms, run_features, labels): t.take_step(*o, epoch, step)
                )
        if len(self.alive) != len(running) and self.alive:
            self._restack()


def train_fused(
    configs: Sequence[RunConfig],
    store: RunStore,
    data: DeviceData,
    *,
    run_indices: Sequence[int],
    n_runs: int,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str = "",
) -> list[RunRecord]:
    """Train ``configs`` (one group of :func:`fusable_groups`) together on ``data`` and return their
    records in order; ``run_indices`` are their places in the experiment, for progress reports."""
    keys = {fusion_key(config) for config in configs}
    if len(keys) != 1:
        raise ValueError("train_fused: these runs differ in more than loss, learning rate, weight decay and seed")
    trainers = [
        _start(config, store, data, on_progress, stop, index, n_runs, owner)
        for config, index in zip(configs, run_indices, strict=True)
    ]
    return _FusedGroup(trainers, store, stop).run()
