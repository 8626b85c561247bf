"""The Train page's settings form and the pure step from its values to validated run configs."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import streamlit as st

import losses
import models
from lab.config import DATASETS, LIMITS, OPTIMIZERS, RunConfig, one_config_per_loss

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")
START_REQUESTED = "start_requested"
DEFAULTS = RunConfig()
DATASET_LABELS = {
    "digits": "Digits 8x8 (bundled, offline)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
}


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What the form holds; ``start`` is True on the rerun where Start was clicked."""

    dataset: str
    data_root: str | None
    model: str
    feat_dim: int
    losses: tuple[str, ...]
    hparams: dict[str, dict[str, Any]]
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    seed: int
    device: str
    train_limit: int
    start: bool


def _hparam_inputs(loss: str) -> dict[str, Any]:
    info = losses.info(loss)
    st.caption(info.summary)
    values: dict[str, Any] = {}
    for spec in info.hparams:
        key = f"hparam.{loss}.{spec.name}"
        label = spec.name
        if spec.choices:
            values[spec.name] = st.selectbox(
                label, spec.choices, index=spec.choices.index(spec.default), key=key, help=spec.help
            )
        elif spec.kind is bool:
            values[spec.name] = st.checkbox(label, value=spec.default, key=key, help=spec.help)
        elif spec.kind is int:
            values[spec.name] = st.number_input(
                label,
                value=spec.default,
                step=1,
                key=key,
                help=spec.help,
                min_value=int(spec.low) if spec.low is not None else None,
                max_value=int(spec.high) if spec.high is not None else None,
            )
        else:
            values[spec.name] = st.number_input(
                label, value=float(spec.default), key=key, format="%g", help=f"{spec.help} ({spec.range_text()})"
            )
    return values


def _request_start() -> None:
    # a callback, so the click survives a rerun that happens before the page reads it
    st.session_state[START_REQUESTED] = True


def settings_form(devices: list[str], busy: bool) -> TrainSettings:
    """Draw the settings and return their current values."""
    data_col, loss_col = st.columns([2, 3], gap="large")
    with data_col:
        st.subheader("Data and model")
        dataset = st.selectbox("Dataset", DATASETS, format_func=DATASET_LABELS.get, key="dataset")
        data_root = None
        if dataset != "digits":
            data_root = (
                st.text_input(
                    "Local data folder (optional)",
                    key="data_root",
                    help="A folder holding a local copy of the dataset. Empty: look in the app's "
                    "data folder (and Debian's package folder for Fashion-MNIST), else "
                    "download.",
                ).strip()
                or None
            )
        model = st.selectbox(
            "Model",
            models.names(),
            key="model",
            help="\n".join(f"- **{m.name}**: {m.summary}" for m in models.available()),
        )
        dim_choice = st.segmented_control(
            "Feature dimension",
            ["2-D", "3-D", "more"],
            default="2-D",
            key="dim_choice",
            help="The width of the feature layer the losses act on. 2-D and 3-D are "
            "drawn as they are; higher dimensions through UMAP and PCA.",
        )
        feat_dim = {"2-D": 2, "3-D": 3}.get(dim_choice or "2-D")
        if feat_dim is None:
            feat_dim = int(
                st.number_input("Dimensions", min_value=4, max_value=LIMITS.max_feat_dim, value=16, key="feat_dim_more")
            )
        left, right = st.columns(2)
        epochs = int(left.number_input("Epochs", 1, LIMITS.max_epochs, DEFAULTS.epochs, key="epochs"))
        batch_size = int(
            right.number_input("Batch size", 2, LIMITS.max_batch_size, DEFAULTS.batch_size, key="batch_size")
        )
        lr = float(
            left.number_input(
                "Learning rate (peak)",
                value=DEFAULTS.lr,
                format="%g",
                key="lr",
                help=f"Peak of the one-cycle schedule; above 0, at most {LIMITS.max_lr:g}.",
            )
        )
        optimizer = right.selectbox(
            "Optimiser", OPTIMIZERS, key="optimizer", format_func={"sgd": "SGD (Nesterov)", "adam": "AdamW"}.get
        )
        seed = int(left.number_input("Seed", 0, LIMITS.max_seed, DEFAULTS.seed, key="seed"))
        device = right.selectbox(
            "Device", ["auto", *devices], key="device", help=f"auto uses {devices[0]} on this machine."
        )
        train_limit = int(
            st.number_input(
                "Training images (0 = all)",
                0,
                LIMITS.max_train_images,
                DEFAULTS.train_limit,
                step=1000,
                key="train_limit",
                help="Train on a fixed random subset, to keep big datasets quick.",
            )
        )
    with loss_col:
        st.subheader("Losses to compare")
        chosen = st.multiselect(
            "Losses",
            losses.names(),
            default=list(DEFAULT_LOSSES),
            key="losses",
            format_func=lambda name: f"{name}: {losses.info(name).summary}",
            label_visibility="collapsed",
        )
        hparams = {}
        for loss in chosen:
            if losses.info(loss).hparams:
                with st.expander(f"**{loss}** hyperparameters"):
                    hparams[loss] = _hparam_inputs(loss)
    st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=busy or not chosen,
        key="start",
        on_click=_request_start,
        help="Training runs in the background: you can switch pages meanwhile.",
    )
    start = st.session_state.pop(START_REQUESTED, False)
    return TrainSettings(
        dataset,
        data_root,
        model,
        feat_dim,
        tuple(chosen),
        hparams,
        epochs,
        batch_size,
        optimizer,
        lr,
        seed,
        device,
        train_limit,
        start,
    )


def build_configs(settings: TrainSettings, owner: str) -> list[RunConfig]:
    """One validated config per chosen loss, all in one new experiment; raises ValueError on bad input."""
    template = RunConfig(
        dataset=settings.dataset,
        data_root=settings.data_root,
        model=settings.model,
        feat_dim=settings.feat_dim,
        train_limit=settings.train_limit,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        optimizer=settings.optimizer,
        lr=settings.lr,
        seed=settings.seed,
        device=settings.device,
        experiment=f"{time.strftime('%Y%m%d-%H%M%S')}-{settings.dataset}-{settings.feat_dim}d-{owner[:6]}",
    )
    return one_config_per_loss(template, settings.losses, settings.hparams)


def feasibility_warnings(settings: TrainSettings, n_classes: int) -> list[str]:
    """Warnings of the chosen losses for these settings (bad values are reported on Start instead)."""
    found = []
    for loss in settings.losses:
        try:
            found += [
                f"**{loss}**: {w}"
                for w in losses.warnings_for(loss, settings.feat_dim, n_classes, settings.hparams.get(loss, {}))
            ]
        except losses.HparamError:
            continue
    return found


def limits_note(max_running: int) -> None:
    """The caps this app enforces, in one place (``lab.config.LIMITS`` and the upload limits)."""
    from lab.uploads import limits_text

    with st.expander("Limits on this machine"):
        st.markdown(
            f"- epochs: 1 to {LIMITS.max_epochs}; batch size: 2 to {LIMITS.max_batch_size}; feature dimension: 2 to "
            f"{LIMITS.max_feat_dim}\n"
            f"- learning rate: above 0, at most {LIMITS.max_lr:g}; weight decay: 0 to {LIMITS.max_weight_decay:g}\n"
            f"- stored feature snapshots: up to {LIMITS.max_snapshot_points} test images per epoch\n"
            f"- uploaded images (Grad-CAM page): {limits_text()}\n"
            f"- trainings at once: {max_running}; more wait in a queue"
        )
