"""The Train page's settings form, drawn from the run settings' declarations (``lab.config.setting``)
and the losses' hyperparameter declarations (``losses.base.hparam``): a new declared field shows up
here, in its group, with no edit to this file.

Number fields take any number and say their range in their help; a value out of range is named in an
error under the form as soon as it is typed (a bounded ``st.number_input`` would silently put the old
value back). Losses are picked as pills, by the papers' names. The form can start from an earlier
experiment's settings (:meth:`TrainSettings.of`), so a refresh during a training keeps what was submitted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import losses
from lab.config import GROUPS, RunConfig, Setting, settings
from lab.experiment import loss_title, make_experiment
from ui import loaders

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
    start: bool = False

    @classmethod
    def of(cls, configs: Sequence[RunConfig]) -> TrainSettings:
        """The form's values that started ``configs`` (an experiment's runs, one per loss)."""
        return cls(configs[0], tuple(dict.fromkeys(c.loss for c in configs)), {c.loss: c.loss_params for c in configs})


DEFAULT_SETTINGS = TrainSettings(RunConfig(), DEFAULT_LOSSES, {})


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
    # numbers get no min/max: the browser would put the previous value back without a word; the range is
    # in the help and an out-of-range value is named under the form (Train page)
    if kind is int:
        return Widget("number_input", key, label, {"value": int(default), "step": int(step or 1), "help": help})
    if kind is float:
        extra = {"step": step} if step is not None else {}
        return Widget("number_input", key, label, {"value": float(default), "format": "%g", "help": help, **extra})
    return Widget("text_input", key, label, {"value": default or "", "help": help})


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def setting_widget(declared: Setting, value: Any = None) -> Widget:
    """The input for one declared run setting, keyed by its name, starting at ``value`` (None: the default)."""
    value = declared.default if value is None else value
    help = _sentence(declared.help)
    choices = declared.form_choices()
    if declared.kind in (int, float) and choices is None:
        help += f" (allowed: {declared.range_text()}{' ' + declared.unit if declared.unit else ''})"
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
                "default": value if value in declared.presets else MORE,
                "format_func": lambda option: declared.presets.get(option, option),
                "help": help,
                "value": value if value not in declared.presets else max(declared.presets) + 1,
            },
        )
    return _input(
        declared.name,
        declared.label,
        declared.kind,
        value,
        help,
        choices=choices,
        format_func=declared.label_of,
        step=declared.step,
    )


def hparam_widget(loss: str, spec: losses.HparamSpec, value: Any = None) -> Widget:
    """The input for one loss hyperparameter, keyed ``hparam.<loss>.<name>``, starting at ``value``."""
    help = spec.help if spec.choices or spec.kind is bool else f"{spec.help} (allowed: {spec.range_text()})"
    return _input(
        f"hparam.{loss}.{spec.name}",
        spec.name,
        spec.kind,
        spec.default if value is None else value,
        help,
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
        widget.label, value=kwargs["value"], key=widget.key, label_visibility="collapsed", help=kwargs["help"]
    )


def _setting_inputs(config_cls: type[RunConfig], initial: RunConfig) -> dict[str, Any]:
    """Draw every setting the form shows, by group, starting at ``initial``'s values; the training group
    in two columns and the advanced one folded away."""
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
            value = draw(setting_widget(declared, getattr(initial, declared.name, None)), places[shown % len(places)])
            if declared.optional and isinstance(value, str):
                value = value.strip() or None
            values[declared.name] = value
            shown += 1
    return values


def _request_start() -> None:
    # a callback, so the click survives a rerun that happens before the page reads it
    st.session_state[START_REQUESTED] = True


def _losses_help(names: Sequence[str]) -> str:
    return "\n".join(f"- **{loss_title(name)}**: {losses.info(name).summary}" for name in names)


def settings_form(
    unavailable: str | None = None, initial: TrainSettings = DEFAULT_SETTINGS, config_cls: type[RunConfig] = RunConfig
) -> TrainSettings:
    """Draw the settings of ``config_cls`` and the loss choice, starting at ``initial``, and return their
    current values. ``unavailable`` says why Start cannot be clicked now (None: it can)."""
    data_col, loss_col = st.columns([2, 3], gap="large")
    with data_col:
        st.subheader("Data and model")
        values = _setting_inputs(config_cls, initial.config)
    with loss_col:
        st.subheader("Losses to compare")
        names = losses.names()
        chosen = st.pills(
            "Losses",
            names,
            selection_mode="multi",
            default=[name for name in initial.losses if name in names],
            key="losses",
            format_func=loss_title,
            help=_losses_help(names),
            wrap=True,  # in a column pills would stay on one row and scroll, hiding most losses
        )
        hparams = {}
        for loss in chosen:
            info = losses.info(loss)
            if info.hparams:
                with st.expander(f"**{loss_title(loss)}** hyperparameters"):
                    st.caption(info.summary)
                    given = initial.hparams.get(loss, {})
                    hparams[loss] = {
                        spec.name: draw(hparam_widget(loss, spec, given.get(spec.name))) for spec in info.hparams
                    }
    st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=unavailable is not None or not chosen,
        key="start",
        on_click=_request_start,
        help=unavailable or "Training runs in the background: you can switch pages meanwhile.",
    )
    if unavailable is not None:
        st.caption(unavailable)
    start = st.session_state.pop(START_REQUESTED, False)
    return TrainSettings(config_cls(**values), tuple(chosen), hparams, start)


def experiment_configs(settings: TrainSettings) -> list[RunConfig]:
    """The validated runs ``settings`` would start (:func:`lab.experiment.make_experiment`, with the data
    folder checked by :func:`ui.loaders.checked_data_root`); raises :class:`ConfigError` naming the first
    bad setting."""
    template = settings.config.replace(data_root=loaders.checked_data_root(settings.config.data_root))
    return make_experiment(template, settings.losses, settings.hparams)


def feasibility_warnings(settings: TrainSettings, n_classes: int) -> list[str]:
    """Warnings of the chosen losses for these settings (valid ones: bad values are reported instead)."""
    found = []
    for loss in settings.losses:
        try:
            hparams = settings.hparams.get(loss, {})
            found += [
                f"**{loss_title(loss)}**: {w}"
                for w in losses.warnings_for(loss, settings.config.feat_dim, n_classes, hparams)
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
