"""Loss overhead: the training-step time of every registered loss relative to softmax, batch 256, ``small``.

    python -m bench.loss_overhead           # digits 8x8 (the app's default data), 2-D and 3-D heads
    python -m bench.loss_overhead --quick   # fewer steps (CI)

A step is what the trainer does per batch: forward through the model, the loss head's training loss,
backward, the gradient clipping the loss asks for (``max_grad_norm``: CosFace and ArcFace), an SGD
(Nesterov) step, and the head's inference logits for the running accuracy. The
losses take turns in rounds of a few steps each on the same batches; each round's step time of a
loss is divided by softmax's in the same round, and the figure is the median over rounds. The digits
model is the cheapest the app trains, so this is where a loss's own cost shows most (on 28x28 data
the model's share is about ten times larger and every ratio is closer to 1).
"""

from __future__ import annotations

import time

import torch

import losses
import models
from bench.common import Report, median, parser, resolve, synchronize
from lab.datasets import load_dataset

BATCH = 256
QUICK_BATCH = 32
TARGET = 1.15


def make_step(loss_name: str, feat_dim: int, data: torch.Tensor, labels: torch.Tensor, device: torch.device):
    """A closure running one training step of ``small`` with ``loss_name`` on the given batch."""
    torch.manual_seed(0)
    model = models.build("small", data.shape[1], data.shape[2], feat_dim).to(memory_format=torch.channels_last)
    model = model.to(device)
    head = losses.build(loss_name, feat_dim, 10).to(device)
    head.plan(10_000)
    params = [p for p in (*model.parameters(), *head.parameters()) if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    max_grad_norm = head.max_grad_norm()
    model.train()
    head.train()

    def step(index: torch.Tensor) -> None:
        x, y = data[index], labels[index]
        features = model(x)
        loss, _ = head(features, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        (head.logits(features.detach()).argmax(1) == y).sum()

    return step


def main(argv: list[str] | None = None) -> Report:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    device = resolve(args.device)
    rounds, steps_per_round = (1, 1) if args.quick else (15, 5)
    dims = (2,) if args.quick else (2, 3)
    batch = QUICK_BATCH if args.quick else BATCH
    names = losses.names()
    report = Report(
        "loss_overhead",
        args,
        device,
        f"digits 8x8, model small, batch {batch}, feature dims {', '.join(map(str, dims))}, "
        f"{rounds} rounds of {steps_per_round} steps per loss, losses: {', '.join(names)}",
    )
    digits = load_dataset("digits")
    data = digits.train.normalized.to(device).contiguous(memory_format=torch.channels_last)
    labels = digits.train.labels.to(device)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randperm(len(labels), generator=generator)[:batch].to(device) for _ in range(steps_per_round)]
    for dim in dims:
        steps = {name: make_step(name, dim, data, labels, device) for name in names}
        for step in steps.values():  # warm up
            step(batches[0])
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, step in steps.items():
                synchronize(device)
                started = time.perf_counter()
                for index in batches:
                    step(index)
                synchronize(device)
                times[name].append((time.perf_counter() - started) / len(batches))
        base = times["softmax"]
        report.figure(f"{dim}d/softmax_step", median(base) * 1e3, "ms")
        for name in names:
            if name == "softmax":
                continue
            ratio = median([t / b for t, b in zip(times[name], base, strict=True)])
            report.figure(f"{dim}d/{name}", ratio, "x softmax", target=f"<= {TARGET}", met=ratio <= TARGET)
    report.write()
    return report


if __name__ == "__main__":
    main()
