"""``python -m lab check-loss PATH_OR_MODULE``: the contract checks LossLens's own losses pass
(:mod:`losses.contract`, the same code the registry-wide tests run), on every loss a user's module defines
(or on one loss by its name, ``pml:ArcFaceLoss`` say), each printed with pass or FAIL and, for a failure,
what is wrong and what to change. Exit status 0 when every check passed, 1 otherwise, 2 when the module
cannot be loaded."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import torch
from torch import nn

import losses
import models
from lab.analysis.seed_stats import SEED_METRICS
from lab.cli.common import UsageError
from losses import contract, plugins, registry

HELP = "run LossLens's loss contract on your loss module (or a loss by name) and say what to change"
IMAGE_SIZE = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "module",
        metavar="PATH_OR_MODULE",
        help="the .py file, package folder or module name that defines your losses, or a loss's name "
        "(softmax, pml:ArcFaceLoss); loading a module runs its code",
    )


def small_cnn(feat_dim: int) -> tuple[nn.Module, torch.Tensor]:
    """LossLens's default model on 16 random 8x8 images: the network the gradient check trains through."""
    network = models.build("small", 1, IMAGE_SIZE, feat_dim)
    return network, torch.randn(16, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))


CONTEXT = contract.Context(figures=frozenset(SEED_METRICS), network=small_cnn)


def losses_named(spec: str) -> list[str]:
    """The losses ``spec`` names: a registered loss (or family member) itself, else those its module defines."""
    if spec in registry.names() or (":" in spec and spec.partition(":")[0] in registry.FAMILIES):
        try:
            losses.get(spec)
        except losses.HparamError as err:
            raise UsageError(str(err)) from None
        return [spec]
    try:
        return list(plugins.load(spec))
    except plugins.PluginError as err:
        raise UsageError(str(err)) from None


def report(name: str, results: list[contract.Result], out: TextIO) -> None:
    """Each check's line, and under a failed one what is wrong and what to change."""
    where = registry.source(name)
    out.write(f"{name}" + (f" (from {where})" if where else "") + "\n")
    width = max(len(result.check.id) for result in results)
    for result in results:
        out.write(f"  {'pass' if result.passed else 'FAIL'}  {result.check.id:<{width}}  {result.check.title}\n")
        if not result.passed:
            what, _, fix = result.message.partition(". To fix: ")
            out.write(f"        wrong: {what}\n")
            if fix:
                out.write(f"        change: {fix}\n")
    passed = sum(result.passed for result in results)
    verdict = "passes the contract" if passed == len(results) else "does not pass the contract"
    out.write(f"{name}: {passed} of {len(results)} checks passed; it {verdict}\n")


def run(args: argparse.Namespace) -> int:
    failed = False
    for name in losses_named(args.module):
        results = contract.run(name, CONTEXT)
        report(name, results, sys.stdout)
        failed = failed or not all(result.passed for result in results)
    return 1 if failed else 0
