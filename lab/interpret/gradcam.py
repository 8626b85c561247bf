"""Grad-CAM for trained runs, UI-free: raw class activation maps, their scores through lab.interpret.scoring,
display helpers.

Key choices:

* **The library does the method.** Every map comes from pytorch-grad-cam's own class for the method
  (``CAM_METHODS``); only BaseCAM's two scaling steps are overridden (:class:`_RawMaps`), so the maps
  keep their absolute scale. BaseCAM min-max scales each map (``scale_cam_image``), which would hide
  that one loss makes a much stronger map than another; here the ReLU that BaseCAM applies stays, and
  the map is upsampled to the image size with the same ``cv2.resize`` BaseCAM uses, but not rescaled.
* **Inference logits are the targets.** The model is wrapped (:class:`InferenceLogits`) so its forward
  returns ``head.logits(model(images))``: a plain logits tensor, never a margin-modified training logit.
* **No side effects.** Hooks are released after every call (even when it fails; the library's own
  ``__exit__`` would swallow an IndexError, so :func:`_released` is used instead), parameters are
  frozen during the call (gradients flow to the input only, so no ``.grad`` is left on the weights),
  and train/eval flags, ``requires_grad`` and existing ``.grad`` tensors are restored afterwards.
* **Scores elsewhere.** How faithful and how plausible the maps are (ROAD, deletion and insertion, the
  object's share, the sanity check) is :mod:`lab.interpret.scoring`'s, measured against baseline maps;
  :func:`interpretability` hands it this module's maps.
* **Display.** Each map is min-max scaled on its own by default (:func:`normalize_each`, the Grad-CAM
  paper's and pytorch-grad-cam's ``show_cam_on_image`` convention): it shows where one model looks.
  The shared raw scale of a row (:func:`shared_scale`) compares magnitudes instead, which grow with
  each loss's logit scale (CosFace/ArcFace's s), so it is an option, not the default.
  :func:`colorbar_png` draws the legend for either.
* **Layers.** ``layer="last"`` is the last convolution; ``"previous"`` an earlier convolution with a
  finer map (``models.FeatureNet.cam_layer_for``), e.g. 14x14 instead of 7x7 on 28x28 images.
* **Without the dataset.** A run stores the uint8 images of its snapshot subset; normalising them
  needs the train split's per-channel mean and std, which every dataset's registry entry declares
  (``DatasetInfo.train_statistics``; a test checks them against the data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
from collections.abc import Iterator, Sequence

import cv2
import matplotlib
import numpy as np
import pytorch_grad_cam
import torch
from PIL import Image, ImageDraw, ImageFont
from pytorch_grad_cam import RandomCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import losses
import models
from lab.datasets import normalize
from lab.datasets.images import enlarge
from lab.interpret import scoring
from lab.interpret.methods import CAM_METHOD_CLASSES
from lab.progress import Progress
from lab.training.inference import model_device

CAM_METHODS: dict[str, type[BaseCAM]] = {
    name: getattr(pytorch_grad_cam, cls) for name, cls in CAM_METHOD_CLASSES.items()
}
TARGET_MODES = ("predicted", "true", "class")
SCORECAM_BATCH = 256
COLORMAP = "turbo"
GRID_CELL_PX = 96
GRID_FONT_PX = 14
WRONG_COLOR = (220, 38, 38)  # the border of a cell whose model got the image wrong
INTERPRET_TARGET = "predicted"  # the maps explain what each model decided


class InferenceLogits(nn.Module):
    """``images -> head.logits(model(images))``: the inference logits, the only output Grad-CAM sees."""

    def __init__(self, model: models.FeatureNet, head: losses.LossHead) -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head.logits(self.model(images))


class _RawMaps(BaseCAM):
    """BaseCAM with its two min-max scalings removed; the method's ``get_cam_image`` is untouched."""

    def compute_cam_per_layer(
        self, input_tensor: torch.Tensor, targets: list[nn.Module], eigen_smooth: bool
    ) -> list[np.ndarray]:
        activations = [a.cpu().numpy() for a in self.activations_and_grads.activations]
        grads = [g.cpu().numpy() for g in self.activations_and_grads.gradients]
        size = self.get_target_width_height(input_tensor)
        per_layer = []
        for i, layer in enumerate(self.target_layers):
            layer_grads = grads[i] if i < len(grads) else None
            cam = np.maximum(
                self.get_cam_image(input_tensor, layer, targets, activations[i], layer_grads, eigen_smooth), 0
            )
            self.cam_shape = tuple(cam.shape[1:])
            per_layer.append(np.float32([cv2.resize(np.float32(c), size) for c in cam])[:, None])
        return per_layer

    def aggregate_multi_layers(self, cam_per_target_layer: list[np.ndarray]) -> np.ndarray:
        return np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0).mean(axis=1)


_RAW_CLASSES: dict[str, type[BaseCAM]] = {
    name: type(f"Raw{cls.__name__}", (_RawMaps, cls), {}) for name, cls in {**CAM_METHODS, "Random": RandomCAM}.items()
}


@dataclasses.dataclass(frozen=True, eq=False)
class CamResult:
    """Raw maps for N images and what they explain.

    ``maps``: N x H x W float32, >= 0, at the image size, NOT min-max scaled (absolute scale kept).
    ``cam_shape``: the map's size at the CAM layer before upsampling (4x4 for 8x8 digits with ``small``).
    ``targets``: the class each map explains; ``predicted`` and ``confidence``: the model's class and
    its softmax probability; ``target_probability``: the softmax probability of the target class.
    """

    method: str
    maps: np.ndarray
    cam_shape: tuple[int, ...]
    targets: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    target_probability: np.ndarray


def resolve_targets(
    logits: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | None,
    mode: str,
    chosen_class: int | None = None,
) -> np.ndarray:
    """The class to explain for each image: its ``"predicted"`` class (argmax of the inference
    logits), its ``"true"`` label, or one ``"class"`` (``chosen_class``) for every image."""
    logits = np.asarray(logits)
    n, n_classes = logits.shape
    if mode == "predicted":
        return logits.argmax(axis=1).astype(np.int64)
    if mode == "true":
        if labels is None:
            raise ValueError("target mode 'true' needs the images' labels; use 'predicted' for unlabelled images")
        labels = np.asarray(labels).astype(np.int64)
        if labels.shape != (n,):
            raise ValueError(f"got {labels.shape[0] if labels.ndim else 0} labels for {n} images")
        return labels
    if mode == "class":
        if chosen_class is None or not 0 <= int(chosen_class) < n_classes:
            raise ValueError(f"target mode 'class' needs a class from 0 to {n_classes - 1}, got {chosen_class!r}")
        return np.full(n, int(chosen_class), dtype=np.int64)
    raise ValueError(f"unknown target mode {mode!r} (choose from: {', '.join(TARGET_MODES)})")


@contextlib.contextmanager
def _released(cam: BaseCAM) -> Iterator[BaseCAM]:
    """Release the CAM's hooks on exit without swallowing errors (BaseCAM.__exit__ hides IndexError)."""
    try:
        yield cam
    finally:
        cam.activations_and_grads.release()


@contextlib.contextmanager
def _untouched(module: nn.Module) -> Iterator[None]:
    """Freeze ``module``'s parameters for the block, then restore train/eval flags, requires_grad and .grad."""
    flags = [(m, m.training) for m in module.modules()]
    params = [(p, p.requires_grad, p.grad) for p in module.parameters()]
    for p, _, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in flags:
            m.train(training)
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad


def _maps(cam: BaseCAM, images: torch.Tensor, targets: np.ndarray, batch_size: int) -> np.ndarray:
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].clone().requires_grad_(cam.uses_gradients)
        parts.append(cam(batch, [ClassifierOutputTarget(int(t)) for t in targets[start : start + batch_size]]))
    return np.concatenate(parts).astype(np.float32)


def compute_cams(
    model: models.FeatureNet,
    head: losses.LossHead,
    images: torch.Tensor,
    method: str,
    targets: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    batch_size: int = 64,
    layer: str = "last",
) -> CamResult:
    """Raw ``method`` maps of normalised ``images`` (N x C x H x W) for the class ``targets[i]`` of each.

    Runs on the device the model is on; the model and head come back exactly as they were (flags,
    requires_grad, no new gradients, no hooks). EigenCAM ignores the target (it is the first
    principal component of the activations). ``layer``: ``"last"`` or ``"previous"`` convolution.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r} (choose from: {', '.join(CAM_METHODS)})")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty N x C x H x W batch, got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    targets = torch.as_tensor(targets).reshape(-1).cpu().numpy().astype(np.int64)
    if len(targets) != len(images):
        raise ValueError(f"got {len(targets)} targets for {len(images)} images")
    if targets.min() < 0 or targets.max() >= head.n_classes:
        raise ValueError(f"targets must be classes from 0 to {head.n_classes - 1}, got {sorted(set(targets.tolist()))}")
    target_layer = model.cam_layer_for(layer)
    wrapper = InferenceLogits(model, head)
    device = model_device(model)
    with _untouched(wrapper), torch.inference_mode(False), torch.enable_grad():
        images = images.detach().to(device=device, dtype=torch.float32).clone()
        wrapper.eval()
        with torch.no_grad():
            probs = torch.cat(
                [wrapper(images[s : s + batch_size]).float().softmax(1) for s in range(0, len(images), batch_size)]
            ).cpu()
        with _released(_RAW_CLASSES[method](wrapper, [target_layer])) as cam:
            cam.batch_size = SCORECAM_BATCH  # masked copies per forward pass; only ScoreCAM reads it
            maps = _maps(cam, images, targets, batch_size)
            cam_shape = cam.cam_shape
    confidence, predicted = probs.max(1)
    return CamResult(
        method=method,
        maps=maps,
        cam_shape=cam_shape,
        targets=targets,
        predicted=predicted.numpy().astype(np.int64),
        confidence=confidence.numpy().astype(np.float32),
        target_probability=probs[torch.arange(len(targets)), torch.from_numpy(targets)].numpy().astype(np.float32),
    )


def top_layers(model: models.FeatureNet) -> tuple[str, ...]:
    """The layers the randomization check re-initializes, as paths inside :class:`InferenceLogits`:
    the feature layer and the last convolution, the top of the model that every map depends on."""
    return ("model.feature", f"model.{model.cam_layer_name}")


def interpretability(
    model: models.FeatureNet,
    head: losses.LossHead,
    raw_images: np.ndarray,
    statistics: tuple[tuple[float, ...], tuple[float, ...]],
    *,
    method: str = "GradCAM",
    layer: str = "last",
    foreground_known: bool = False,
    progress: Progress | None = None,
) -> dict[str, scoring.MetricResult | None]:
    """Every :data:`lab.interpret.scoring.METRICS` entry for ``method`` maps (each on its own scale) of the
    predicted class of ``raw_images`` (uint8 N x C x H x W) under one run's model, with its baselines.

    ``statistics``: the (mean, std) the run normalised with (its dataset's ``train_statistics``).
    ``foreground_known``: nonzero pixels are the object (its dataset's ``foreground_known``), for object mass.
    """
    raw = np.asarray(raw_images, dtype=np.uint8)
    images = normalize(torch.from_numpy(raw), *statistics)
    wrapper = InferenceLogits(model, head).eval()
    with torch.no_grad():
        targets = resolve_targets(wrapper(images), None, INTERPRET_TARGET)
    if progress:
        progress(0.0, f"{method} maps")
    result = compute_cams(model, head, images, method, targets, layer=layer)

    def cam_fn(randomized: InferenceLogits) -> np.ndarray:
        maps = compute_cams(randomized.model, randomized.head, images, method, targets, layer=layer)
        return normalize_each(maps.maps)

    return scoring.evaluate(
        wrapper,
        images,
        raw,
        targets,
        normalize_each(result.maps),
        foreground_known=foreground_known,
        cam_fn=cam_fn,
        top_layers=top_layers(model),
        cam_shape=result.cam_shape[-2:] if len(result.cam_shape) >= 2 else None,
        metrics=scoring.REPORTED,
        progress=progress,
    )


# ---------------------------------------------------------------- display helpers


def shared_scale(maps: Sequence[np.ndarray] | np.ndarray) -> tuple[float, float]:
    """One color scale ``(vmin, vmax)`` covering every map of a row (one image across losses).

    Raw maps are >= 0, so the scale starts at 0; an all-zero row gets (0, 1) so nothing divides by zero.
    """
    values = np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in maps])
    vmin = min(0.0, float(values.min()))
    vmax = float(values.max())
    return vmin, (vmax if vmax > vmin else vmin + 1.0)


def normalize_each(maps: np.ndarray) -> np.ndarray:
    """Each map min-max scaled to [0, 1] on its own (the library's ``scale_cam_image``): the default view."""
    return scale_cam_image(np.asarray(maps, dtype=np.float32))


def _colormap_lut() -> np.ndarray:
    return (matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


_LUT = _colormap_lut()


def overlay(
    image: torch.Tensor | np.ndarray, cam_map: np.ndarray, vmax: float, alpha: float = 0.45, *, vmin: float = 0.0
) -> np.ndarray:
    """``image`` (uint8 C x H x W, 1 or 3 channels) with ``cam_map`` (H x W) coloured on the scale
    [vmin, vmax] (turbo colormap) blended on top; H x W x 3 uint8. Greyscale is stacked to RGB here only."""
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"image must be uint8 C x H x W with 1 or 3 channels, got shape {pixels.shape}")
    rgb = np.repeat(pixels, 3, axis=0) if pixels.shape[0] == 1 else pixels
    rgb = rgb.transpose(1, 2, 0).astype(np.float32)
    if cam_map.shape != rgb.shape[:2]:
        raise ValueError(f"map of shape {cam_map.shape} does not match the image's {rgb.shape[:2]}")
    level = np.clip((np.asarray(cam_map, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    colors = _LUT[np.round(level * 255).astype(np.intp)].astype(np.float32)
    return np.round((1.0 - alpha) * rgb + alpha * colors).clip(0, 255).astype(np.uint8)


def framed(cell: np.ndarray, color: tuple[int, int, int] = WRONG_COLOR) -> np.ndarray:
    """``cell`` (H x W x 3 uint8) with a one-pixel frame of ``color`` (two from 32 pixels up), as a copy."""
    out = np.array(cell, dtype=np.uint8, copy=True)
    width = 2 if min(out.shape[:2]) >= 32 else 1
    out[:width], out[-width:], out[:, :width], out[:, -width:] = color, color, color, color
    return out


def grid_png(
    cells: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    wrong: Sequence[Sequence[bool]] | None = None,
    colorbar: bytes | None = None,
) -> bytes:
    """A PNG of a grid of H x W x 3 uint8 cells (rows x columns) with row and column labels.

    Cells are upscaled by a whole factor with nearest-neighbour to at least :data:`GRID_CELL_PX`
    pixels, so 8x8 digits stay legible and no pixel is blurred. ``wrong[r][c]`` draws a red border
    (a wrong prediction); ``colorbar`` (a PNG, :func:`colorbar_png`) is put under the grid.
    """
    if len(cells) != len(row_labels) or any(len(row) != len(col_labels) for row in cells):
        raise ValueError(f"cells must be {len(row_labels)} rows of {len(col_labels)} images, one per label")
    shapes = {np.asarray(cell).shape for row in cells for cell in row}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"every cell must be an H x W x 3 image of one size, got shapes {sorted(shapes)}")
    height, width, _ = next(iter(shapes))
    factor = max(1, math.ceil(GRID_CELL_PX / min(height, width)))
    cell_w, cell_h, gap = width * factor, height * factor, 4
    font = ImageFont.load_default(size=GRID_FONT_PX)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_size = lambda text: measure.textbbox((0, 0), text, font=font)[2:]  # noqa: E731
    left = max((text_size(t)[0] for t in row_labels), default=0) + 2 * gap
    top = max((text_size(t)[1] for t in col_labels), default=0) + 2 * gap
    bar = Image.open(io.BytesIO(colorbar)).convert("RGB") if colorbar else None
    grid_h = top + len(row_labels) * (cell_h + gap)
    canvas = Image.new(
        "RGB",
        (
            max(left + len(col_labels) * (cell_w + gap), bar.width if bar else 0),
            grid_h + (bar.height + gap if bar else 0),
        ),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(col_labels):
        draw.text((left + c * (cell_w + gap), gap), label, fill="black", font=font)
    for r, (row, label) in enumerate(zip(cells, row_labels, strict=True)):
        y = top + r * (cell_h + gap)
        draw.text((gap, y + cell_h // 2 - text_size(label)[1] // 2), label, fill="black", font=font)
        for c, cell in enumerate(row):
            tile = Image.fromarray(enlarge(np.asarray(cell, dtype=np.uint8), factor), "RGB")
            x = left + c * (cell_w + gap)
            canvas.paste(tile, (x, y))
            if wrong is not None and wrong[r][c]:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), outline=WRONG_COLOR, width=3)
    if bar:
        canvas.paste(bar, (left, grid_h))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def colorbar_png(low: str, high: str, title: str, width: int = 320, height: int = 14) -> bytes:
    """A horizontal legend of the :data:`COLORMAP` color map: ``title`` above, ``low`` / ``high`` under the ends."""
    font = ImageFont.load_default(size=GRID_FONT_PX)
    text_h = GRID_FONT_PX + 4
    canvas = Image.new("RGB", (width, height + 2 * text_h), "white")
    ramp = np.repeat(_LUT[np.linspace(0, 255, width).round().astype(np.intp)][None], height, axis=0)
    canvas.paste(Image.fromarray(ramp, "RGB"), (0, text_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((0, 0), title, fill="black", font=font)
    draw.text((0, text_h + height + 2), low, fill="black", font=font)
    right = draw.textbbox((0, 0), high, font=font)[2]
    draw.text((width - right, text_h + height + 2), high, fill="black", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
