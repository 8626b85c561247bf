"""What the app states about a run, each worded once: the rounding rule for an accuracy, which figure is a
run's test accuracy and how an epoch's accuracy is named, and what classes sharing a direction mean for
the run's head. Pure functions of the run files, shared by every page and the sidebar."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

import losses
from lab.analysis.geometry import angles_deg, shared_directions
from lab.runs.record import RunRecord

# Where the trainer measured the whole test set when the run ended (``finish``): only there is the status's
# test_acc the run's test accuracy; a running, diverged or failed run's holds its last epoch's subset.
WHOLE_TEST_SET_STATES = ("finished", "stopped")
NOISE_DECIMALS = 6  # accuracies are stored as float32: 0.8635 reads back as 0.8634999990463257


def percent(fraction: float, digits: int = 1) -> float:
    """``fraction`` in percent, rounded half up to ``digits`` decimals: the one rounding rule for every
    accuracy on screen. The float32 noise of a stored value goes first, so 0.8635 stored as float32 and
    0.8635 computed in float64 both give 86.4."""
    exact = Decimal(repr(round(float(fraction), NOISE_DECIMALS))) * 100
    return float(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def percent_text(fraction: float, digits: int = 1) -> str:
    """``86.4%``: :func:`percent` as text."""
    return f"{percent(fraction, digits):.{digits}f}%"


def test_accuracy(record: RunRecord) -> float | None:
    """The run's test accuracy: the whole test set, measured once when the run ended; None for a run that
    has not ended that way (its status holds the last epoch's accuracy on the evaluation subset)."""
    return record.test_acc if record.state in WHOLE_TEST_SET_STATES else None


def eval_images(record: RunRecord, epoch: int) -> int | None:
    """How many test images the accuracy after ``epoch`` was measured on (its metrics line), or None when
    the run's metrics do not say (runs written before they did)."""
    for line in record.metrics:
        if line.get("epoch") == epoch and isinstance(line.get("eval_images"), int):
            return line["eval_images"]
    return None


def frame_accuracy(
    epoch: int, accuracy: float | None, images: int | None, test_images: int, final: float | None = None
) -> str:
    """The line under a feature-space panel's loss name: the epoch and the accuracy that goes with it.
    ``final``, the run's test accuracy, when the frame shows the final weights; else ``accuracy`` measured
    on ``images`` of the ``test_images`` test images (the images shown before training, the evaluation
    subset after an epoch), named as such unless they are the whole test set."""
    when = "before training" if epoch == 0 else f"epoch {epoch}"
    if final is not None:
        return f"{when} · test accuracy {percent_text(final)}"
    if accuracy is None:
        return when
    if images == test_images:
        return f"{when} · test accuracy {percent_text(accuracy)}"
    if images is None:
        return f"{when} · accuracy {percent_text(accuracy)} on a test subset"
    if epoch == 0:
        return f"{when} · accuracy {percent_text(accuracy)} on the {images:,} images shown"
    return f"{when} · accuracy {percent_text(accuracy)} on {images:,} test images"


def decides_by_angle(loss: str) -> bool:
    """Whether the loss's head classifies a feature by its direction alone: its classifier has no bias, so
    its inference logits (W f, |f| cos, or s cos) scale with the feature's length and their argmax never
    changes with it. Declared by the head's ``bias``."""
    return not losses.get(loss).bias


def same_ray_note(
    directions: np.ndarray | None,
    class_names: Sequence[str],
    shape: str,
    loss_title: str,
    by_angle: bool,
    features: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> str:
    """A sentence on the classes whose directions coincide (drawn as one ray on the unit ``shape``) and
    what that means for the head: one with a bias can still tell them apart by length; one that decides
    by angle alone (``by_angle``) cannot, and on ``features`` (with their ``labels``) the share of those
    classes' images it takes for another of them says how much it confuses them. For such a head
    ``directions`` are its classifier weights as its logits use them, so ``features @ directions.T``
    gives its decisions."""
    if directions is None:
        return ""
    groups = shared_directions(directions)
    if not groups:
        return ""
    named = []
    for group in groups:
        names = [str(class_names[c]) for c in group]
        spread = float(angles_deg(directions[group], directions[group]).max())
        listed = " and ".join([", ".join(names[:-1]), names[-1]])
        named.append(f"classes {listed} share a direction ({spread:.1f}° apart)")
    said = f"On the unit {shape}, {'; '.join(named)}"
    if not by_angle:
        which = "them" if len(groups) == 1 else "the classes of each group"
        return (
            f"{said}: {loss_title}'s classifier has a bias, so it can still tell {which} apart by length (radius). "
            "See the Raw view."
        )
    said += f". {loss_title} has no bias and decides by angle alone, so only the angle between their directions"
    said += " separates them"
    if features is None or labels is None:
        return said + "."
    decided = np.argmax(np.asarray(features, dtype=np.float64) @ np.asarray(directions, dtype=np.float64).T, axis=1)
    shares = []
    for group in groups:
        mine = np.isin(labels, group)
        if mine.any():
            confused = float((np.isin(decided[mine], group) & (decided[mine] != labels[mine])).mean())
            listed = " and ".join(str(class_names[c]) for c in group)
            whose = "their" if len(groups) == 1 else f"the {int(mine.sum())} of classes {listed}"
            count = f" {int(mine.sum())} images shown" if len(groups) == 1 else ""
            shares.append(f"{percent_text(confused, 0)} of {whose}{count}")
    if not shares:
        return said + "."
    taken = ", and ".join(shares) + ("," if len(shares) > 1 else "")
    return f"{said}; it takes {taken} for another class on the same ray."
