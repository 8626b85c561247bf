"""Fused training: an experiment's runs trained together against the same runs one after another.

    python -m bench.fused           # the five default losses on digits with the default settings
    python -m bench.fused --quick   # 1 epoch on 256 images (CI)

Four arms train with ``lab.trainer.train_experiment`` on the same data, alternating, repeated (the median
of each arm is reported); the clock covers the whole experiment (model set-up, training, per-epoch
evaluation and the run files), as a user's Start does, with the dataset already loaded:

* ``one``: softmax alone, the reference;
* ``five_one_by_one``: the Train form's five default losses with ``fused=False`` (how every experiment
  trained before :mod:`lab.fused`);
* ``five_fused``: the same five trained together (one stacked forward and backward pass per batch);
* ``five_fused_seeds``: the five with seeds 0 to 4, so each run draws its own batches.

The figures are each arm's seconds, the ratios of the five-loss arms to ``one`` measured side by side
(target: fused at most 2.5 x), and how far the fused runs' final test accuracies are from the runs
trained one by one (they agree up to float rounding, which early training can amplify).

``conv/<layer>/...`` say what fusing can share: each convolution of the model on a training batch, forward
and backward, for one model, for five models one after another, and for five as the fused trainer's
grouped convolution. Where five grouped cost five single ones, the arithmetic is the limit, not the launches.
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch import nn

import models
from bench.common import Report, median, parser, resolve, timed
from lab.config import RunConfig
from lab.data import load_dataset
from lab.experiment import make_experiment
from lab.fused import group_layers
from lab.runstore import RunRecord, RunStore
from lab.trainer import train_experiment, warm_up

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")  # the Train form's (ui.train_form.DEFAULT_LOSSES)


def experiment_seconds(configs: list[RunConfig], fused: bool) -> tuple[float, list[RunRecord]]:
    """Seconds to train ``configs`` as one experiment into a fresh runs folder, and the records."""
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
        started = time.perf_counter()
        records = train_experiment(configs, RunStore(root), fused=fused)
        seconds = time.perf_counter() - started
    failed = [(r.config.loss, r.state) for r in records if r.state != "finished"]
    if failed:
        raise RuntimeError(f"runs did not finish: {failed}")
    return seconds, records


def _milliseconds(layer: nn.Module, x: torch.Tensor, repeats: int, device: torch.device) -> float:
    """Milliseconds of one forward and backward pass of ``layer`` on ``x``, after one not timed. The
    output's gradient is made once, in the output's layout, as a loss's would arrive."""
    with torch.no_grad():
        gradient = torch.ones_like(layer(x))

    def step() -> None:
        layer(x).backward(gradient)

    step()
    return timed(lambda: [step() for _ in range(repeats)], device)[0] / repeats * 1e3


def convolution_layers(report: Report, template: RunConfig, device: torch.device, repeats: int) -> None:
    """Forward and backward of each convolution of ``template``'s model on one training batch: one model,
    five one after another, five as one grouped convolution (:func:`lab.fused.group_layers`)."""
    dataset = load_dataset(template.dataset)
    model = models.build(template.model, dataset.in_channels, dataset.image_size, template.feat_dim).to(device)
    inputs: dict[str, torch.Size] = {}
    convolutions = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}

    def keep_input(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            inputs[name] = args[0].shape

        return hook

    hooks = [m.register_forward_hook(keep_input(name)) for name, m in convolutions.items()]
    model(dataset.train.normalized[: template.batch_size].to(device))
    for hook in hooks:
        hook.remove()
    runs = len(DEFAULT_LOSSES)
    layout = torch.channels_last if template.channels_last else torch.contiguous_format  # as the trainer's
    for name, conv in convolutions.items():
        conv.to(memory_format=layout)
        grouped = group_layers([conv] * runs).to(memory_format=layout)
        first = name == next(iter(convolutions))  # the images: no gradient wanted
        single = torch.randn(inputs[name], device=device).contiguous(memory_format=layout).requires_grad_(not first)
        stacked = torch.randn(single.shape[0], single.shape[1] * runs, *single.shape[2:], device=device)
        stacked = stacked.contiguous(memory_format=layout).requires_grad_(not first)

        one = _milliseconds(conv, single, repeats, device)
        together = _milliseconds(grouped, stacked, repeats, device)
        shape = "x".join(str(n) for n in single.shape)
        report.figure(f"conv/{name}/one", one, "ms", note=f"input {shape}, forward and backward")
        report.figure(f"conv/{name}/five_times_one", one * runs, "ms", note="computed: five models one after another")
        report.figure(f"conv/{name}/five_grouped", together, "ms", note="one grouped convolution for five models")


def main(argv: list[str] | None = None) -> Report:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    device = resolve(args.device)
    template = RunConfig(experiment="bench-fused", device=args.device)
    if args.quick:
        template = template.replace(epochs=1, train_limit=256)
    repeats = 1 if args.quick else 3
    report = Report(
        "fused",
        args,
        device,
        f"digits, {template.model}, {template.epochs} epochs, batch {template.batch_size}"
        + (f", {template.train_limit} training images" if template.train_limit else "")
        + f"; losses {', '.join(DEFAULT_LOSSES)}; {repeats} alternating repetitions, median",
    )
    load_dataset(template.dataset)  # read once: the arms time training, not the disk
    warm_up()
    five = make_experiment(template, DEFAULT_LOSSES)
    arms = {
        "one": (five[:1], False),
        "five_one_by_one": (five, False),
        "five_fused": (five, True),
        "five_fused_seeds": ([config.replace(seed=seed) for seed, config in enumerate(five)], True),
    }
    experiment_seconds(five, True)  # warm up the stacked path (vmap's first trace), not reported
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    records: dict[str, list[RunRecord]] = {}
    for _ in range(repeats):
        for name, (configs, fused) in arms.items():
            took, records[name] = experiment_seconds(configs, fused)
            seconds[name].append(took)
    for name in arms:
        report.figure(name, median(seconds[name]), "s", note=", ".join(f"{s:.2f}" for s in seconds[name]))
    one = median(seconds["one"])
    before = median(seconds["five_one_by_one"]) / one
    after = median(seconds["five_fused"]) / one
    report.figure("five_one_by_one_over_one", before, "x", note="before: the five trained one after another")
    report.figure(
        "five_fused_over_one", after, "x", target="<= 2.5 x", met=after <= 2.5, note="after: the five trained together"
    )
    report.figure("five_fused_seeds_over_one", median(seconds["five_fused_seeds"]) / one, "x", note="seeds 0-4")
    report.figure("speedup", before / after, "x", note="five one by one over five fused")
    gaps = [
        abs(a.status["test_acc"] - b.status["test_acc"])
        for a, b in zip(records["five_one_by_one"], records["five_fused"], strict=True)
    ]
    report.figure("max_test_acc_gap", max(gaps), "", note="fused vs one by one, the five final test accuracies")
    convolution_layers(report, template, device, repeats=20 if args.quick else 200)
    report.write()
    return report


if __name__ == "__main__":
    main()
