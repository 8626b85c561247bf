"""Downloads of a finished run: the run folder as a zip, and a TensorFlow Embedding Projector bundle.

:func:`run_zip` packs the run's files (safetensors only, no pickles) under ``<run_id>/`` so that
unzipping into a runs folder restores the run, with a README.txt on what each file is and how to
load the weights. status.json leaves out the owner (the app's secret for the browser that trained it),
the writer's pid and host name and any traceback (they name the computer and its paths); the run is
marked shared instead, so whoever unzips it sees it in their app like a command-line run.

:func:`projector_bundle` writes the exact files projector.tensorflow.org reads:

* ``tensors.tsv``: the final test features, **L2-normalised** (no centring, so angles are kept),
  tab-separated, one vector per line, no header, ending with a newline;
* ``metadata.tsv``: one row per vector after a header row (a multi-column file needs one):
  index, label, label_name, predicted, correct, angle_to_own_class_deg, loss. The angle is
  measured to the run's ``class_directions`` (classifier weights or centres) where the run saved
  them, otherwise to the direction of the class's mean normalised test feature;
* ``sprite.png``: the test images as thumbnails in row-major order, with ``singleImageDim``;
* the same three for the penultimate activations of the run's snapshot subset (raw, not normalised);
* ``projector_config.json`` with one ``embeddings[]`` entry per tensor, paths relative to the config;
* README.txt, which tells users to leave "Sphereize data" off for the normalised features:
  Sphereize re-centres the points on their mean before scaling, which changes the angles.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from lab.analysis import geometry
from lab.datasets import Dataset
from lab.datasets.images import enlarge, whole_factor
from lab.runs import contents
from lab.runs.io import read_run_file, run_file_chunks
from lab.runs.record import require_config
from lab.runs.store import RunStore, RunStoreError

PRIVATE_STATUS_FIELDS = ("owner", "pid", "host", "traceback")
METADATA_COLUMNS = ("index", "label", "label_name", "predicted", "correct", "angle_to_own_class_deg", "loss")
SPRITE_MIN_THUMB = 28
SPRITE_MAX_SIDE = 8192


class _Zip:
    """A deflated zip written entry by entry into ``out``, every entry dated ``stamp`` so equal runs give
    equal zips; only one entry's data is in memory at a time (a run file's, a chunk at a time)."""

    def __init__(self, out: BinaryIO, stamp: float) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.date_time = time.localtime(max(stamp, 315532800))[:6]  # zip dates start in 1980

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    def add(self, name: str, data: bytes) -> None:
        self.archive.writestr(self._info(name), data)

    def entry(self, name: str) -> BinaryIO:
        """A writable entry: copy a file into it a chunk at a time."""
        return self.archive.open(self._info(name), "w", force_zip64=True)

    def close(self) -> None:
        self.archive.close()


def _to_bytes(write: Callable[[BinaryIO], None]) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _run_readme(run_id: str, included: list[str], summary: dict[str, object]) -> str:
    described = [(name, contents.FILES[name]) for name in included] + [("README.txt", "this file")]
    width = max(len(name) for name, _ in described)
    listing = "\n".join(f"  {name.ljust(width)}  {text}" for name, text in described)
    accuracy = summary.get("test_acc")
    accuracy_text = f"{accuracy:.4f}" if isinstance(accuracy, float) else "n/a"
    return f"""LossLens run {run_id}

loss {summary["loss"]}, dataset {summary["dataset"]}, model {summary["model"]}, feature dimension {summary["feat_dim"]},
{summary["epochs_done"]} of {summary["epochs"]} epochs, status {summary["status"]}, test accuracy {accuracy_text}

Files
{listing}

status.json leaves out who trained the run and the process id, host name and traceback of the machine
it was trained on; unzipped, the run is shared with every browser of the app.

Loading the weights (safetensors holds plain tensors and runs no code):

    from safetensors.torch import load_file

    tensors = load_file("{run_id}/weights.safetensors")
    model_state = {{k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}}
    head_state = {{k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")}}

With the LossLens code, unzip this file inside your runs folder (it holds the folder {run_id}/), then

    from lab.runs.restore import load_trained
    from lab.runs.store import RunStore

    store = RunStore("runs")
    model, head = load_trained(store, store.load("{run_id}"))  # eval mode, on the CPU
    logits = head.logits(model(images))  # images normalized as lab.datasets.tensors.normalize does
"""


def write_run_zip(store: RunStore, run_id: str, out: BinaryIO) -> None:
    """Write the run's folder as a zip (under ``<run_id>/``) with a README.txt into ``out``, one file at a
    time; files the run never wrote (a run stopped before its first epoch has no metrics) are left out and
    not listed. Its safetensors files are checked against its config first (their headers only)."""
    record = store.load(run_id)
    store.check_files(run_id)
    run_dir = store.run_dir(run_id)
    archive = _Zip(out, store.modified(run_id, contents.CONFIG))
    included = []
    for name in contents.FILES:
        if name == contents.STATUS:
            if read_run_file(run_dir, name) is None:
                continue
            status = {k: v for k, v in record.status.items() if k not in PRIVATE_STATUS_FIELDS}
            status["owner"] = ""  # shared wherever it is unzipped
            archive.add(f"{run_id}/{name}", (json.dumps(status, indent=1, sort_keys=True) + "\n").encode())
            included.append(name)
            continue
        with run_file_chunks(run_dir, name) as chunks:
            if chunks is None:
                continue
            with archive.entry(f"{run_id}/{name}") as entry:
                for chunk in chunks:
                    entry.write(chunk)
        included.append(name)
    archive.add(f"{run_id}/README.txt", _run_readme(run_id, included, record.summary()).encode())
    archive.close()


def run_zip(store: RunStore, run_id: str) -> bytes:
    """:func:`write_run_zip` as bytes (the app's download)."""
    return _to_bytes(lambda out: write_run_zip(store, run_id, out))


# ---------------------------------------------------------------- Embedding Projector


def _tsv_matrix(values: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    np.savetxt(buffer, values.double().numpy(), fmt="%.7g", delimiter="\t", newline="\n")
    return buffer.getvalue()


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def _metadata(
    indices: torch.Tensor,
    labels: torch.Tensor,
    predicted: torch.Tensor,
    angles: torch.Tensor,
    class_names: tuple[str, ...],
    loss: str,
) -> bytes:
    lines = ["\t".join(METADATA_COLUMNS)]
    for index, label, pred, angle in zip(
        indices.tolist(), labels.tolist(), predicted.tolist(), angles.tolist(), strict=True
    ):
        correct = "true" if label == pred else "false"
        lines.append(f"{index}\t{label}\t{_clean(class_names[label])}\t{pred}\t{correct}\t{angle:.3f}\t{_clean(loss)}")
    return ("\n".join(lines) + "\n").encode()


def _sprite(images: torch.Tensor) -> tuple[bytes, list[int]]:
    """Thumbnails of uint8 N x C x H x W images in a row-major square grid; returns (PNG, [width, height]).

    Tiny images are enlarged by a whole factor (nearest-neighbour) to at least SPRITE_MIN_THUMB pixels,
    never past the projector's largest sprite side."""
    n, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    wanted = whole_factor(height, width, SPRITE_MIN_THUMB)
    factor = min(wanted, SPRITE_MAX_SIDE // (columns * max(height, width)))
    if factor < 1:
        raise ValueError(f"{n} images of {width} x {height} do not fit in a {SPRITE_MAX_SIDE}-pixel sprite")
    thumbs = enlarge(images.numpy(), factor, axes=(2, 3))
    th, tw = height * factor, width * factor
    sheet = np.zeros((rows * th, columns * tw, channels), dtype=np.uint8)
    for i, thumb in enumerate(thumbs):
        r, c = divmod(i, columns)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = thumb.transpose(1, 2, 0)
    picture = Image.fromarray(sheet[:, :, 0], "L") if channels == 1 else Image.fromarray(sheet, "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), [tw, th]


def _projector_readme(run_id: str, loss: str, n: int, dim: int, n_subset: int, source: str) -> str:
    return f"""Embedding Projector bundle of LossLens run {run_id} (loss {loss})

  tensors.tsv                  {n} test features, L2-normalised ({dim} values per line, no header)
  metadata.tsv                 one row per feature after a header row: {", ".join(METADATA_COLUMNS)}
  sprite.png                   the test images, row-major, in the same order
  penultimate.tsv              the penultimate activations of a fixed subset of {n_subset} test images (raw)
  penultimate_metadata.tsv     their metadata (index is the test-set index)
  penultimate_sprite.png       their images
  projector_config.json        both tensors for the projector's ?config= option

angle_to_own_class_deg is the angle between a feature and {source}.

Quick look: open https://projector.tensorflow.org, click "Load", choose tensors.tsv as step 1 and
metadata.tsv as step 2. Colour by "label" or "correct".

Leave "Sphereize data" OFF for tensors.tsv. The features are already on the unit circle or sphere;
Sphereize first moves every point by the mean of all points and only then scales to unit length,
which changes the angles that angular losses shape.

Thumbnails: the Load dialog does not take sprites. Host these files at a URL that allows cross-origin
requests (a GitHub gist works), replace each path in projector_config.json by its full URL (the
projector fetches paths as given), then open https://projector.tensorflow.org/?config=<URL of
projector_config.json>.
"""


def write_projector_bundle(store: RunStore, run_id: str, dataset: Dataset, out: BinaryIO) -> None:
    """Write a zip (under ``<run_id>-projector/``) for the TensorFlow Embedding Projector into ``out``, each
    file as soon as it is made; see the module docstring.

    ``dataset`` must be the dataset the run was trained on (its test images give the sprite)."""
    config = require_config(store.load(run_id))
    saved = store.load_features(run_id)
    labels = saved.test_labels.long()
    if config.dataset != dataset.name or not torch.equal(labels, dataset.test.labels.long()):
        raise RunStoreError(f"run {run_id} was trained on {config.dataset}; pass that dataset, not {dataset.name}")
    features = saved.test_features.float()
    unit = torch.nn.functional.normalize(features, dim=1)
    predicted = saved.test_logits.argmax(1)
    if saved.class_directions is not None:
        directions = saved.class_directions.numpy()
        source = "the run's class direction (classifier weight or centre) of its label"
    else:
        directions = geometry.class_mean_directions(features.numpy(), labels.numpy(), dataset.n_classes)
        source = "the direction of the mean normalised test feature of its label (the run saved no class directions)"
    to_classes = geometry.angles_deg(features.numpy(), directions)
    angles = torch.from_numpy(to_classes[np.arange(len(labels)), labels.numpy()])
    all_indices = torch.arange(len(labels))
    subset = saved.snapshot_indices.long()
    penultimate = saved.penultimate.float()
    names = dataset.class_names
    archive = _Zip(out, store.modified(run_id, contents.FEATURES))
    folder = f"{run_id}-projector"
    archive.add(f"{folder}/tensors.tsv", _tsv_matrix(unit))
    archive.add(f"{folder}/metadata.tsv", _metadata(all_indices, labels, predicted, angles, names, config.loss))
    sprite, dim = _sprite(dataset.test.images)
    archive.add(f"{folder}/sprite.png", sprite)
    del sprite
    archive.add(f"{folder}/penultimate.tsv", _tsv_matrix(penultimate))
    archive.add(
        f"{folder}/penultimate_metadata.tsv",
        _metadata(subset, labels[subset], predicted[subset], angles[subset], names, config.loss),
    )
    subset_sprite, subset_dim = _sprite(dataset.test.images[subset])
    archive.add(f"{folder}/penultimate_sprite.png", subset_sprite)
    embeddings = [
        {
            "tensorName": f"{config.loss} features, L2-normalised ({run_id})",
            "tensorShape": list(unit.shape),
            "tensorPath": "tensors.tsv",
            "metadataPath": "metadata.tsv",
            "sprite": {"imagePath": "sprite.png", "singleImageDim": dim},
        },
        {
            "tensorName": f"{config.loss} penultimate activations, subset ({run_id})",
            "tensorShape": list(penultimate.shape),
            "tensorPath": "penultimate.tsv",
            "metadataPath": "penultimate_metadata.tsv",
            "sprite": {"imagePath": "penultimate_sprite.png", "singleImageDim": subset_dim},
        },
    ]
    archive.add(f"{folder}/projector_config.json", (json.dumps({"embeddings": embeddings}, indent=1) + "\n").encode())
    readme = _projector_readme(run_id, config.loss, len(unit), unit.shape[1], len(subset), source)
    archive.add(f"{folder}/README.txt", readme.encode())
    archive.close()


def projector_bundle(store: RunStore, run_id: str, dataset: Dataset) -> bytes:
    """:func:`write_projector_bundle` as bytes (the app's download)."""
    return _to_bytes(lambda out: write_projector_bundle(store, run_id, dataset, out))
