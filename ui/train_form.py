"""The Train page's settings form, drawn from the run settings' declarations (``lab.config.setting``)
and the losses' hyperparameter declarations (``losses.base.hparam``): a new declared field shows up
here, in its group, with no edit to this file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import losses
from lab.config import GROUPS, RunConfig, Setting, settings

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")
START_REQUESTED = "start_requested"
MORE = "more"  # the preset that opens a free number entry


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What the form holds: the run settings (not yet validated), the chosen losses and their
    hyperparameters; ``start`` is True on the rerun where Start was clicked."""

    config: RunConfig
    losses: tuple[str, ...]
    hparams: dict[str, dict[str, Any]]
    start: bool


@dataclasses.dataclass(frozen=True)
class Widget:
    """One input: the Streamlit function that draws it (``selectbox``, ``number_input``, ``checkbox``,
    ``text_input``, or ``presets``: a segmented control with a free number entry), its key, label and
    keyword arguments."""

    call: str
    key: str
    label: str
    kwargs: dict[str, Any]


def _input(
    key: str,
    label: str,
    kind: type,
    default: Any,
    help: str,
    *,
    low: float | None,
    high: float | None,
    choices: Sequence[Any] | None,
    format_func: Callable[[Any], str] = str,
    step: float | None = None,
) -> Widget:
    if choices:
        index = list(choices).index(default) if default in choices else 0
        return Widget(
            "selectbox",
            key,
            label,
            {"options": list(choices), "index": index, "format_func": format_func, "help": help},
        )
    if kind is bool:
        return Widget("checkbox", key, label, {"value": default, "help": help})
    if kind is int:
        bounds = {
            "min_value": int(low) if low is not None else None,
            "max_value": int(high) if high is not None else None,
        }
        return Widget("number_input", key, label, {"value": default, "step": int(step or 1), "help": help, **bounds})
    if kind is float:
        # no min/max: Streamlit would clamp silently; an out-of-range value is named on Start instead
        extra = {"step": step} if step is not None else {}
        return Widget("number_input", key, label, {"value": float(default), "format": "%g", "help": help, **extra})
    return Widget("text_input", key, label, {"value": default or "", "help": help})


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def setting_widget(declared: Setting) -> Widget:
    """The input for one declared run setting, keyed by its name."""
    help = _sentence(declared.help)
    choices = declared.form_choices()
    if declared.kind in (int, float) and choices is None:
        help += f" ({declared.range_text()}{' ' + declared.unit if declared.unit else ''})"
    if declared.describe is not None:
        help += "\n\n" + "\n".join(f"- **{declared.label_of(c)}**: {declared.describe(c)}" for c in choices or ())
    if declared.presets:
        options = [*declared.presets, MORE]
        return Widget(
            "presets",
            declared.name,
            declared.label,
            {
                "options": options,
                "default": declared.default if declared.default in declared.presets else MORE,
                "format_func": lambda value: declared.presets.get(value, value),
                "help": help,
                "min_value": int(declared.low) if declared.low is not None else None,
                "max_value": int(declared.high) if declared.high is not None else None,
                "value": max(declared.presets) + 1,
            },
        )
    return _input(
        declared.name,
        declared.label,
        declared.kind,
        declared.default,
        help,
        low=declared.low,
        high=declared.high,
        choices=choices,
        format_func=declared.label_of,
        step=declared.step,
    )


def hparam_widget(loss: str, spec: losses.HparamSpec) -> Widget:
    """The input for one loss hyperparameter, keyed ``hparam.<loss>.<name>``."""
    help = spec.help if spec.choices or spec.kind in (bool, int) else f"{spec.help} ({spec.range_text()})"
    return _input(
        f"hparam.{loss}.{spec.name}",
        spec.name,
        spec.kind,
        spec.default,
        help,
        low=spec.low,
        high=spec.high,
        choices=spec.choices,
    )


def draw(widget: Widget, where: Any = st) -> Any:
    """Draw ``widget`` in ``where`` (a column, an expander, ``st``) and return its value."""
    if widget.call != "presets":
        return getattr(where, widget.call)(widget.label, key=widget.key, **widget.kwargs)
    kwargs = widget.kwargs
    choice = where.segmented_control(
        widget.label,
        kwargs["options"],
        default=kwargs["default"],
        format_func=kwargs["format_func"],
        key=f"{widget.key}_preset",
        help=kwargs["help"],
    )
    if choice is None:  # a click on the selected segment clears it: keep the default
        choice = kwargs["default"]
    if choice != MORE:
        return choice
    return where.number_input(
        widget.label,
        min_value=kwargs["min_value"],
        max_value=kwargs["max_value"],
        value=kwargs["value"],
        key=widget.key,
        label_visibility="collapsed",
    )


def _setting_inputs(config_cls: type[RunConfig]) -> dict[str, Any]:
    """Draw every setting the form shows, by group; the training group in two columns and the
    advanced one folded away."""
    defaults = {declared.name: declared.default for declared in settings(config_cls)}
    values: dict[str, Any] = {}
    for group in GROUPS:
        members = [declared for declared in settings(config_cls) if declared.group == group and declared.form]
        if group == "advanced":
            places = [st.expander("Advanced settings")]
        elif group == "training":
            places = st.columns(2)
        else:
            places = [st.container()]
        shown = 0
        for declared in members:
            if not declared.shown({**defaults, **values}):
                continue
            value = draw(setting_widget(declared), places[shown % len(places)])
            if declared.optional and isinstance(value, str):
                value = value.strip() or None
            values[declared.name] = value
            shown += 1
    return values


def _request_start() -> None:
    # a callback, so the click survives a rerun that happens before the page reads it
    st.session_state[START_REQUESTED] = True


def settings_form(busy: bool, config_cls: type[RunConfig] = RunConfig) -> TrainSettings:
    """Draw the settings of ``config_cls`` and the loss choice, and return their current values."""
    data_col, loss_col = st.columns([2, 3], gap="large")
    with data_col:
        st.subheader("Data and model")
        values = _setting_inputs(config_cls)
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
            info = losses.info(loss)
            if info.hparams:
                with st.expander(f"**{loss}** hyperparameters"):
                    st.caption(info.summary)
                    hparams[loss] = {spec.name: draw(hparam_widget(loss, spec)) for spec in info.hparams}
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
    return TrainSettings(config_cls(**values), tuple(chosen), hparams, start)


def feasibility_warnings(settings: TrainSettings, n_classes: int) -> list[str]:
    """Warnings of the chosen losses for these settings (bad values are reported on Start instead)."""
    found = []
    for loss in settings.losses:
        try:
            hparams = settings.hparams.get(loss, {})
            found += [
                f"**{loss}**: {w}" for w in losses.warnings_for(loss, settings.config.feat_dim, n_classes, hparams)
            ]
        except losses.HparamError:
            continue
    return found


def limits_lines(config_cls: type[RunConfig] = RunConfig) -> list[str]:
    """The bounds of the settings the form shows, one line per group."""
    lines = []
    for group in GROUPS:
        items = [
            f"{declared.label[:1].lower()}{declared.label[1:]}: {declared.bounds_text()} {declared.unit}".strip()
            for declared in settings(config_cls)
            if declared.group == group and declared.form and declared.bounds_text()
        ]
        if items:
            lines.append("; ".join(items))
    return lines


def limits_note(max_running: int) -> None:
    """The caps this app enforces: the declared settings' bounds and the upload limits."""
    from lab.uploads import limits_text

    with st.expander("Limits on this machine"):
        lines = [
            *limits_lines(),
            f"uploaded images (Grad-CAM page): {limits_text()}",
            f"trainings at once: {max_running}; more wait in a queue",
        ]
        st.markdown("\n".join(f"- {line}" for line in lines))
