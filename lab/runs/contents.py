"""The files of a run folder, declared once, and the checks of its JSON files.

A file name, a status field or a metric is spelled here only; the tensors inside the safetensors files are
declared in :mod:`lab.runs.tensor_files`. A JSON file is parsed with bounded numbers and nesting, and every
field is type-checked: what does not fit is reported (a :class:`RunStoreError` naming the file) and dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
WEIGHTS = "weights.safetensors"
FEATURES = "features.safetensors"
SNAPSHOTS = "snapshots.safetensors"

# Every file a run may hold, in the order a listing shows them, with what it is.
FILES: dict[str, str] = {
    CONFIG: "the run's settings (dataset, model, loss and its hyperparameters, optimiser, seed)",
    STATUS: "how the run ended (finished, stopped, diverged, ...), its test accuracy and timings",
    METRICS: "one JSON object per epoch: losses, accuracies, learning rate, speed",
    WEIGHTS: "the trained model (keys model.*) and loss head (keys head.*), parameters and buffers",
    FEATURES: (
        "final test features, labels and inference logits; the snapshot subset's indices, penultimate "
        "activations and raw uint8 images; class_directions (classifier weights or centres) where the loss "
        "has them"
    ),
    SNAPSHOTS: (
        "the snapshot subset's features after every epoch from epoch 0 (before training), with the class "
        "directions and test accuracy of each epoch"
    ),
}

# The most bytes a reader takes from each file. Run folders arrive from other people (an unzipped export,
# a shared runs folder), so a file's size is checked before it is read. The safetensors caps hold the
# largest run the declared bounds allow: 201 snapshots of 2000 images x 512 dimensions is 0.8 GB.
MiB = 1 << 20
MAX_BYTES: dict[str, int] = {
    CONFIG: 1 * MiB,
    STATUS: 1 * MiB,
    METRICS: 16 * MiB,
    WEIGHTS: 512 * MiB,
    FEATURES: 512 * MiB,
    SNAPSHOTS: 1024 * MiB,
}
MAX_NUMBER_CHARS = 40  # json.dumps writes any float in at most 24 characters and an int64 in 20


# status.json's fields and their types; fields of another type are reported and dropped when read.
STATUS_TEXT = ("status", "message", "owner", "host", "traceback")
STATUS_NUMBERS = ("started", "updated", "finished", "test_acc", "train_seconds", "images_per_second")
STATUS_COUNTS = ("pid", "epoch")
# metrics.jsonl: the numbers each epoch's line may hold ("epoch" is a count from 1, "terms" a mapping).
METRIC_NUMBERS = ("train_loss", "train_acc", "test_acc", "lr", "seconds", "images_per_second")

WEIGHTS_FORMAT = "losslens-weights-1"
FEATURES_FORMAT = "losslens-features-1"
SNAPSHOTS_FORMAT = "losslens-snapshots-2"  # 1: epochs 1..E only, no directions or accuracies
MODEL_PREFIX = "model."
HEAD_PREFIX = "head."


class RunStoreError(ValueError):
    """A run is missing, unreadable or its id is not a plain name."""


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / MiB:.0f} MB" if n_bytes >= MiB else f"{n_bytes} bytes"


def _bounded(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"holds a number {len(text)} characters long (at most {MAX_NUMBER_CHARS})")
        return kind(text)

    return parse


def parse_json(data: bytes) -> Any:
    """JSON from an untrusted run file: numbers longer than :data:`MAX_NUMBER_CHARS` characters and nesting
    deeper than Python's recursion limit are a ValueError, not a stalled or crashed reader."""
    try:
        return json.loads(data.decode("utf-8"), parse_int=_bounded(int), parse_float=_bounded(float))
    except RecursionError:
        raise ValueError("is nested too deeply") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_status(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """status.json's object with every known field of its declared type, and what was wrong: a field of
    another type is dropped (so readers fall back to their defaults) and named in the problems."""
    if not isinstance(raw, dict):
        return {}, [f"{STATUS} must hold a JSON object, it holds {type(raw).__name__}"]
    status, problems = dict(raw), []
    for key in (*STATUS_TEXT, *STATUS_NUMBERS, *STATUS_COUNTS):
        if key not in status:
            continue
        value = status[key]
        if key in STATUS_TEXT:
            valid = isinstance(value, str)
        elif key in STATUS_NUMBERS:
            valid = _number(value) and math.isfinite(value)
        else:
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if valid:
            status[key] = float(value) if key in STATUS_NUMBERS else value
        else:
            del status[key]
            wanted = "text" if key in STATUS_TEXT else "a number" if key in STATUS_NUMBERS else "a count"
            problems.append(f"{STATUS}: {key} must be {wanted}, it is {_kind_of(value)}")
    return status, problems


def check_metrics(lines: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    """metrics.jsonl's epochs up to the first malformed line, and what is wrong with that line (None: all good)."""
    for number, line in enumerate(lines, start=1):
        problem = _metric_problem(line)
        if problem:
            return lines[: number - 1], f"line {number}: {problem}"
    return lines, None


def _metric_problem(line: Any) -> str | None:
    if not isinstance(line, dict):
        return f"must be a JSON object, it is {_kind_of(line)}"
    epoch = line.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch must be a count from 1, it is {_kind_of(epoch)}"
    for key in METRIC_NUMBERS:
        if key in line and not _number(line[key]):
            return f"{key} must be a number, it is {_kind_of(line[key])}"
    terms = line.get("terms", {})
    if not isinstance(terms, dict) or not all(_number(value) for value in terms.values()):
        return "terms must map names to numbers"
    return None


def _kind_of(value: Any) -> str:
    """What a JSON value is, without quoting it (file contents never reach a message)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if _number(value):
        return "a number out of range" if isinstance(value, float) and not math.isfinite(value) else "a number"
    return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
