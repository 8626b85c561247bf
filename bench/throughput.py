"""Training throughput: LossLens's trainer against a plain PyTorch loop written the way the papers'
reference code writes it, on 28x28 images, for ``small`` and ``lenetpp``.

    python -m bench.throughput            # Fashion-MNIST (real, if on this machine), 5 repetitions
    python -m bench.throughput --quick    # synthetic 28x28, tiny sizes (CI)
    python -m bench.throughput --sections evaluation,profile   # some of: training, evaluation, profile

Three arms train the same model (same initialisation), batch size, optimiser (SGD with Nesterov
momentum 0.9, weight decay 5e-4, one-cycle schedule with peak 0.1) and loss (softmax cross-entropy),
one epoch of the same number of images each, in the same process, one after the other, repeated:

* ``losslens``: ``lab.training.loop.train_run`` with the defaults (channels-last layout);
* ``losslens-nchw``: the same with ``channels_last=False``, to separate the data path from the layout;
* ``reference``: a ``torch.utils.data.Dataset`` holding the uint8 images that returns
  ``Normalize(ToTensor(PIL image))`` per sample (as torchvision's MNIST does) through
  ``DataLoader(batch_size, shuffle=True, num_workers=0)``, ``nn.Linear`` + ``nn.CrossEntropyLoss``,
  and ``loss.item()`` / ``.sum().item()`` bookkeeping every step, as the reference repositories do.

Evaluation is compared the same way: LossLens's per-epoch evaluation (``lab.training.evaluation.embed``, which
also returns features and penultimate activations) against the reference repositories' test loop
(``DataLoader(batch_size=1000)`` over the same per-sample transforms, ``torch.no_grad()``).

Only the training epochs are timed (LossLens's ``train_seconds``; the reference loop's epoch), never
evaluation. The figure is the median over repetitions of (LossLens images/s) / (reference images/s)
measured back to back. The peak fraction is the training step's FLOPs (counted by
``torch.utils.flop_counter``) times LossLens's images per second, over the machine's measured
float32 matrix-multiply peak: the fastest dense product measured through each back end, BLAS
(``torch.matmul``) and oneDNN (a GEMM written as a 1x1 convolution, and a 5x5 convolution).

The ``evaluation`` section runs ``python -m lab train --dataset fashion-mnist --train-limit 3000 --losses
softmax`` (digits when Fashion-MNIST is not here) twice in fresh processes, back to back: with
``--eval-images 0`` (the whole test set after every epoch, as the trainer evaluated before the evaluation
subset) and with the defaults (a fixed subset after every epoch, the whole test set once at the end). It
reports each one's wall-clock time over its training time (target: at most 1.4 x with the defaults) and
both final test accuracies, which must be equal.

The ``profile`` section explains the peak fraction of ``small``: ``torch.profiler`` over training steps on
28x28 images splits a step's time into convolutions, batch norm, activations, pooling, matrix products,
the optimizer's and other element-wise operators, and what lies outside every operator (Python and
dispatch), and reports the rate of the convolutions alone as a fraction of the peak.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import models
from bench.common import Report, fashion_or_synthetic, median, parse_sections, parser, resolve, synchronize, timed
from lab.datasets import Dataset, Split
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_run

ROOT = Path(__file__).resolve().parents[1]
PEAK_LR = 0.1
FEAT_DIM = 2


class ReferenceDataset(torch.utils.data.Dataset):
    """uint8 images decoded to PIL and transformed per sample, as torchvision's MNIST/FashionMNIST do."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        from torchvision import transforms

        self.images = images  # N x H x W (grey) or N x H x W x C, uint8
        self.labels = labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = Image.fromarray(self.images[index], mode="L" if self.images.ndim == 3 else "RGB")
        return self.transform(image), int(self.labels[index])


def reference_images_per_second(
    dataset: ReferenceDataset, model_name: str, image_size: int, batch_size: int, device: torch.device, seed: int = 0
) -> float:
    """One epoch of the reference loop; images per second of the epoch (data loading included)."""
    torch.manual_seed(seed)
    in_channels = 1 if dataset.images.ndim == 3 else dataset.images.shape[-1]
    model = models.build(model_name, in_channels, image_size, FEAT_DIM).to(device)
    classifier = nn.Linear(FEAT_DIM, 10).to(device)
    params = [*model.parameters(), *classifier.parameters()]
    optimizer = torch.optim.SGD(params, lr=PEAK_LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=PEAK_LR, total_steps=len(loader))
    criterion = nn.CrossEntropyLoss()

    def epoch() -> int:
        model.train()
        classifier.train()
        running_loss, correct, seen = 0.0, 0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = classifier(model(images))
            loss = criterion(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item() * labels.size(0)
            correct += logits.argmax(1).eq(labels).sum().item()
            seen += labels.size(0)
        return seen

    seconds, seen = timed(epoch, device)
    return seen / seconds


def losslens_images_per_second(
    dataset: Dataset, model_name: str, batch_size: int, device: torch.device, store: RunStore, channels_last: bool
) -> float:
    """One epoch of LossLens's trainer on all of ``dataset.train``; its reported training images per second."""
    config = RunConfig(
        dataset="fashion-mnist",  # the name is only recorded; the tensors come from ``dataset``
        model=model_name,
        feat_dim=FEAT_DIM,
        epochs=1,
        batch_size=batch_size,
        lr=PEAK_LR,
        snapshot_points=10,
        device=device.type,
        channels_last=channels_last,
    )
    record = train_run(config, store, dataset=dataset)
    if record.state != "finished":
        raise RuntimeError(f"LossLens run ended {record.state}: {record.status.get('message')}")
    return float(record.status["images_per_second"])


def reference_eval_images_per_second(
    dataset: ReferenceDataset, model: torch.nn.Module, classifier: torch.nn.Module, device: torch.device
) -> float:
    """The reference repositories' test loop: DataLoader(batch 1000) under no_grad, argmax accuracy."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=1000, shuffle=False, num_workers=0)

    def evaluate() -> int:
        model.eval()
        classifier.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                correct += classifier(model(images)).argmax(1).eq(labels).sum().item()
        return len(dataset)

    seconds, seen = timed(evaluate, device)
    return seen / seconds


def losslens_eval_images_per_second(data: Dataset, model_name: str, device: torch.device) -> float:
    """LossLens's per-epoch evaluation (``lab.training.evaluation.embed``: features, penultimate, logits) of the
    test split."""
    import losses
    from lab.training.evaluation import embed

    torch.manual_seed(0)
    model = models.build(model_name, 1, 28, FEAT_DIM).to(memory_format=torch.channels_last).to(device)
    head = losses.build("softmax", FEAT_DIM, 10).to(device)
    images = data.test.normalized.to(device)
    seconds, _ = timed(lambda: embed(model, head, images, device), device)
    return len(images) / seconds


def subset(dataset: Dataset, n_train: int, n_test: int) -> Dataset:
    """The first ``n_train`` training and ``n_test`` test images (the test split is only evaluated)."""
    cut = lambda split, n: Split(split.images[:n], split.labels[:n], split.mean, split.std)  # noqa: E731
    return dataclasses.replace(dataset, train=cut(dataset.train, n_train), test=cut(dataset.test, n_test))


def dense_product_rates(device: torch.device, n: int, repeats: int, quick: bool = False) -> dict[str, float]:
    """The machine's measured float32 dense-product rates (FLOP/s), best of ``repeats``, through each of
    torch's back ends: ``torch.matmul`` of two n x n matrices (BLAS, e.g. MKL), a 6272 x 1024 by
    1024 x 1024 product written as a 1x1 convolution (oneDNN's GEMM), and a 5x5 convolution of 64
    channels at 28x28, batch 64 (oneDNN's direct convolution, the densest layer of ``lenetpp``), all in
    the channels-last layout. The back ends differ by 2-3x on some CPUs (MKL runs slow code paths on
    AMD), so the peak is the fastest of them. ``quick`` shrinks the convolutions."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    products = {"matmul": (lambda: a @ b, 2 * n**3)}
    shapes = {"gemm_1x1conv": (32, 1024, 14, 1), "conv5x5": (64, 64, 28, 5)}
    for name, (batch, channels, side, kernel) in shapes.items():
        if quick:
            batch, channels = 2, min(channels, 64)
        image = torch.randn(batch, channels, side, side, device=device).contiguous(memory_format=torch.channels_last)
        conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        conv = conv.to(device, memory_format=torch.channels_last).requires_grad_(False)
        products[name] = (lambda c=conv, x=image: c(x), 2 * batch * channels**2 * kernel**2 * side**2)
    best = {}
    for name, (product, flops) in products.items():
        product()  # warm up
        best[name] = max(flops / timed(product, device)[0] for _ in range(repeats))
    return best


def step_flops_per_image(model_name: str, image_size: int, batch_size: int, device: torch.device) -> float:
    """FLOPs of one training step (forward and backward of model and softmax head) per image."""
    from torch.utils.flop_counter import FlopCounterMode

    import losses

    model = models.build(model_name, 1, image_size, FEAT_DIM).to(device)
    head = losses.build("softmax", FEAT_DIM, 10).to(device)
    x = torch.randn(batch_size, 1, image_size, image_size, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    with FlopCounterMode(display=False) as counter:
        loss, _ = head(model(x), y)
        loss.backward()
    return counter.get_total_flops() / batch_size


SECTIONS = ("training", "evaluation", "profile")
PROFILE_KINDS = {  # torch.profiler operator names (aten::...) by kind, matched as substrings
    "convolution": ("convolution",),
    "batch_norm": ("batch_norm",),
    "activation": ("relu", "threshold", "clamp_min", "prelu"),
    "pooling": ("pool", "mean"),
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm"),
    "optimizer_and_elementwise": ("add", "mul", "div", "sub", "lerp", "sqrt", "foreach", "copy_", "fill_", "zero_"),
}


def training_section(report: Report, full: Dataset, device: torch.device, quick: bool) -> float:
    """The three training arms, the evaluation rates and the peak fraction per model; returns the peak (FLOP/s)."""
    batch = 32 if quick else 64
    repeats = 1 if quick else 5
    sizes = {"small": 64, "lenetpp": 32} if quick else {"small": 6400, "lenetpp": 1280}
    n_eval = 64 if quick else 5000
    store = RunStore(tempfile.mkdtemp(prefix="losslens-bench-"))
    product_rates = dense_product_rates(
        device, 256 if quick else (8192 if device.type == "cuda" else 2048), 3 if quick else 7, quick
    )
    for name, rate in product_rates.items():
        report.figure(f"{name}_rate", rate / 1e9, "GFLOP/s", note="float32, best of the repetitions")
    peak = max(product_rates.values())
    report.figure("matmul_peak", peak / 1e9, "GFLOP/s", note=f"the fastest of {', '.join(product_rates)}")
    for model_name, n_images in sizes.items():
        data = subset(full, n_images, 100)
        reference_data = ReferenceDataset(
            data.train.images[:, 0].numpy(), data.train.labels.numpy(), data.train.mean, data.train.std
        )
        arms = {
            "losslens": lambda d=data, m=model_name: losslens_images_per_second(d, m, batch, device, store, True),
            "losslens-nchw": lambda d=data, m=model_name: losslens_images_per_second(d, m, batch, device, store, False),
            "reference": lambda r=reference_data, m=model_name: reference_images_per_second(r, m, 28, batch, device),
        }
        if not quick:  # warm up every arm once (allocator, oneDNN primitive caches), not reported
            for arm in arms.values():
                arm()
        rates: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(repeats):
            for name, arm in arms.items():
                rates[name].append(arm())
        ratios = [a / r for a, r in zip(rates["losslens"], rates["reference"], strict=True)]
        nchw_ratios = [a / r for a, r in zip(rates["losslens-nchw"], rates["reference"], strict=True)]
        for name in arms:
            report.figure(f"{model_name}/{name}", median(rates[name]), "images/s")
        target = model_name == "small"
        report.figure(
            f"{model_name}/ratio",
            median(ratios),
            "x reference",
            target=">= 1.5 x" if target else "",
            met=median(ratios) >= 1.5 if target else None,
            note=f"per repetition: {', '.join(f'{r:.2f}' for r in ratios)}",
        )
        report.figure(f"{model_name}/ratio_nchw", median(nchw_ratios), "x reference", note="channels_last off")
        test = subset(full, n_images, n_eval)
        test_reference = ReferenceDataset(
            test.test.images[:, 0].numpy(), test.test.labels.numpy(), test.train.mean, test.train.std
        )
        torch.manual_seed(0)
        eval_model = models.build(model_name, 1, 28, FEAT_DIM).to(device)
        eval_classifier = nn.Linear(FEAT_DIM, 10).to(device)
        eval_arms = {
            "losslens": lambda t=test, m=model_name: losslens_eval_images_per_second(t, m, device),
            "reference": lambda r=test_reference, m=eval_model, c=eval_classifier: reference_eval_images_per_second(
                r, m, c, device
            ),
        }
        eval_rates: dict[str, list[float]] = {name: [] for name in eval_arms}
        for _ in range(repeats):
            for name, arm in eval_arms.items():
                eval_rates[name].append(arm())
        eval_ratios = [a / r for a, r in zip(eval_rates["losslens"], eval_rates["reference"], strict=True)]
        for name in eval_arms:
            report.figure(f"{model_name}/eval_{name}", median(eval_rates[name]), "images/s")
        report.figure(f"{model_name}/eval_ratio", median(eval_ratios), "x reference", note=f"{n_eval} test images")
        flops = step_flops_per_image(model_name, 28, batch, device)
        synchronize(device)
        report.figure(f"{model_name}/step_flops", flops / 1e6, "MFLOP per image", note="forward + backward")
        report.figure(f"{model_name}/peak_fraction", flops * median(rates["losslens"]) / peak, "of matmul peak")
    return peak


def cli_train(arguments: list[str]) -> tuple[float, dict]:
    """Wall-clock seconds of ``python -m lab train ARGUMENTS`` in a fresh process (imports, data, training,
    evaluation, files) and the JSON line it prints for its one run."""
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as runs:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lab", "train", *arguments, "--runs-dir", runs],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"python -m lab train {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(lines[-1])


def evaluation_section(report: Report, device: torch.device, quick: bool) -> None:
    """The CLI command of the evaluation target, with the whole test set evaluated after every epoch
    (``--eval-images 0``, how the trainer evaluated before) and with the default evaluation subset (the
    whole test set once, at the end), back to back: wall time over training time, and the final accuracy."""
    from lab.datasets import DatasetError, load_dataset

    if quick:
        dataset, arguments = "digits", ["--epochs", "1", "--train-limit", "256"]
    else:
        try:
            load_dataset("fashion-mnist")
            dataset, arguments = "fashion-mnist", ["--train-limit", "3000"]
        except DatasetError:
            dataset, arguments = "digits", []
    arguments = ["--dataset", dataset, "--losses", "softmax", "--device", device.type, *arguments]
    command = "python -m lab train " + " ".join(arguments)
    arms = {"before": ["--eval-images", "0"], "after": []}
    results = {name: cli_train(arguments + extra) for name, extra in arms.items()}
    for name, (wall, line) in results.items():
        train = float(line["train_seconds"])
        note = (
            "whole test set every epoch"
            if name == "before"
            else "evaluation subset per epoch, whole test set at the end"
        )
        report.figure(
            f"evaluation/{name}/wall", wall, "s", note=f"{command}{' ' + ' '.join(arms[name]) if arms[name] else ''}"
        )
        report.figure(f"evaluation/{name}/train", train, "s", note="train_seconds of the run")
        target = name == "after" and not quick
        report.figure(
            f"evaluation/{name}/wall_over_train",
            wall / train,
            "x",
            target="<= 1.4 x" if target else "",
            met=wall / train <= 1.4 if target else None,
            note=note,
        )
        report.figure(f"evaluation/{name}/test_acc", float(line["test_acc"]), "", note="final, whole test set")
    same = results["before"][1]["test_acc"] == results["after"][1]["test_acc"]
    report.note(
        f"evaluation: the final test accuracy is {'the same' if same else 'DIFFERENT'} with and without the subset"
    )


def step_profile(
    data: Dataset, model_name: str, batch: int, device: torch.device, steps: int
) -> tuple[dict[str, float], float, float]:
    """``steps`` training steps of LossLens's loop (channels-last model, softmax head, SGD with Nesterov)
    under ``torch.profiler``: the seconds per step spent in each kind of operator (``PROFILE_KINDS``, by the
    operators' own time; ``python_and_dispatch`` is the step's wall time outside every operator), the
    seconds per step, and the convolutions' FLOPs per step (``torch.utils.flop_counter``)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    import losses

    torch.manual_seed(0)
    model = models.build(model_name, 1, 28, FEAT_DIM).to(device, memory_format=torch.channels_last)
    head = losses.build("softmax", FEAT_DIM, 10).to(device)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    images = data.train.normalized[: batch * steps].to(device).contiguous(memory_format=torch.channels_last)
    labels = data.train.labels[: batch * steps].to(device)

    def step(index: int) -> None:
        x, y = images[index * batch : (index + 1) * batch], labels[index * batch : (index + 1) * batch]
        loss, _ = head(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for index in range(min(steps, 5)):
        step(index)
    with FlopCounterMode(display=False) as counter:
        step(0)
    conv_flops = sum(flops for op, flops in counter.get_flop_counts()["Global"].items() if "convolution" in str(op))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiled:
        started = time.perf_counter()
        for index in range(steps):
            step(index)
        synchronize(device)
        wall = (time.perf_counter() - started) / steps
    kinds = dict.fromkeys([*PROFILE_KINDS, "other_operators"], 0.0)
    for event in profiled.key_averages():
        if not event.key.startswith("aten::"):
            continue
        seconds = event.self_cpu_time_total / 1e6 / steps
        kind = next((k for k, names in PROFILE_KINDS.items() if any(n in event.key for n in names)), "other_operators")
        kinds[kind] += seconds
    kinds["python_and_dispatch"] = max(wall - sum(kinds.values()), 0.0)
    return kinds, wall, conv_flops


def profile_section(report: Report, full: Dataset, device: torch.device, quick: bool, peak: float) -> None:
    """Where a training step of ``small`` on 28x28 spends its time, and how fast its convolutions run."""
    batch, steps = (32, 3) if quick else (64, 40)
    kinds, wall, conv_flops = step_profile(full, "small", batch, device, steps)
    rows = [(kind, f"{seconds * 1e3:.2f}", f"{seconds / wall:.0%}") for kind, seconds in kinds.items()]
    report.table(
        f"small, one training step on 28x28, batch {batch} (torch.profiler, {steps} steps)",
        ["kind", "ms per step", "share"],
        rows,
    )
    for kind, seconds in kinds.items():
        report.figure(f"profile/small/{kind}_share", seconds / wall, "of the step")
    report.figure("profile/small/step", wall * 1e3, "ms", note="under the profiler")
    report.figure(
        "profile/small/convolution_peak_fraction",
        conv_flops / max(kinds["convolution"], 1e-12) / peak,
        "of matmul peak",
        note="the convolutions' FLOPs over the time spent in them",
    )


def main(argv: list[str] | None = None) -> Report:
    args, sections = parse_sections(
        parser(__doc__.splitlines()[0]), argv, SECTIONS, default="all; profile needs training's peak"
    )
    device = resolve(args.device)
    quick = args.quick
    n_train = 64 if quick else 6400
    full, source = fashion_or_synthetic(quick, n_train=n_train, n_test=64 if quick else 5000)
    report = Report(
        "throughput",
        args,
        device,
        f"{source} 28x28; sections {', '.join(sections)}; training: batch {32 if quick else 64}, one epoch per "
        f"measurement, {1 if quick else 5} alternating repetitions; images per epoch: small "
        f"{64 if quick else 6400}, lenetpp {32 if quick else 1280}; evaluation: {64 if quick else 5000} test images",
    )
    peak = training_section(report, full, device, quick) if "training" in sections else 0.0
    if "evaluation" in sections:
        evaluation_section(report, device, quick)
    if "profile" in sections:
        if not peak:
            peak = max(dense_product_rates(device, 256 if quick else 2048, 3 if quick else 7, quick).values())
            report.figure("matmul_peak", peak / 1e9, "GFLOP/s", note="measured for the profile")
        profile_section(report, full, device, quick, peak)
    report.write()
    return report


if __name__ == "__main__":
    main()
