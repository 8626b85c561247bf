"""The declarations of lab.settings.config and losses' hparam() as Streamlit inputs: one Widget per setting, its
value kept in the session under its key, so a preset can fill the form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import losses
from lab.settings.config import GROUPS, RunConfig, Setting, settings
from lab.settings.experiment import loss_title
from lab.settings.form import MAX_SEEDS, TrainSettings


@dataclasses.dataclass(frozen=True)
class Widget:
    """One input: the Streamlit function that draws it (``selectbox``, ``checkbox``, ``text_input``, ``pills``,
    or ``presets``: a segmented control with a free number entry), its key, label, keyword arguments, the value
    it starts at and, for a number typed as text, its kind (int or float).

    The value lives in the session under the key, never in the widget's arguments: a keyed widget keeps
    its identity whatever its arguments, so the browser keeps showing (and sends back) its own value until
    the session's value is written. Filling the form is therefore writing :meth:`state`, which the browser
    is sent as well."""

    call: str
    key: str
    label: str
    kwargs: dict[str, Any]
    value: Any = None
    number: type | None = None

    def state(self) -> dict[str, Any]:
        """The session values that make this input show ``value``, by key."""
        if self.call != "presets":
            return {self.key: number_text(self.value) if self.number else self.value}
        named = self.kwargs["options"][:-1]
        if self.value in named:
            return {f"{self.key}_preset": self.value, self.key: number_text(max(named) + 1)}
        return {f"{self.key}_preset": MORE, self.key: number_text(self.value)}

    def read(self, shown: Any) -> Any:
        """The input's value from what it shows: a number input's text as its number, or as typed when it is
        not one (validation then says what was typed and what to type)."""
        if self.number is None or not isinstance(shown, str):
            return shown
        try:
            return losses.read_number(shown, self.number)
        except ValueError:
            return shown


def number_text(value: Any) -> str:
    """A number as a number input shows it: ``12``, ``0.05``, ``1e-05``; the shortest text that reads back as
    the same number."""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _input(
    key: str,
    label: str,
    kind: type,
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None,
    format_func: Callable[[Any], str] = str,
) -> Widget:
    if choices:
        kwargs = {"options": list(choices), "format_func": format_func, "help": help}
        return Widget("selectbox", key, label, kwargs, default if default in choices else kwargs["options"][0])
    if kind is bool:
        return Widget("checkbox", key, label, {"help": help}, bool(default))
    # numbers are typed as text and read here (Widget.read): the range is in the help and a value out of it,
    # or text that is not a number, is named under the form (Train page)
    if kind in (int, float):
        return Widget("text_input", key, label, {"help": help}, kind(default), number=kind)
    return Widget("text_input", key, label, {"help": help}, default or "")


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
        return Widget(
            "presets",
            declared.name,
            declared.label,
            {
                "options": [*declared.presets, MORE],
                "format_func": lambda option: declared.presets.get(option, option),
                "help": help,
            },
            value,
            number=declared.kind,
        )
    return _input(
        declared.name,
        declared.label,
        declared.kind,
        value,
        help,
        choices=choices,
        format_func=declared.label_of,
    )


def hparam_widget(loss: str, spec: losses.HparamSpec, value: Any = None, prefix: str = "hparam") -> Widget:
    """The input for one loss hyperparameter, keyed ``<prefix>.<loss>.<name>``, starting at ``value``."""
    help = spec.help if spec.choices or spec.kind is bool else f"{spec.help} (allowed: {spec.range_text()})"
    return _input(
        f"{prefix}.{loss}.{spec.name}",
        spec.name,
        spec.kind,
        spec.default if value is None else value,
        help,
        choices=spec.choices,
    )


def losses_widget(chosen: Sequence[str]) -> Widget:
    """The loss pills, by the papers' names, ``chosen`` pressed."""
    names = losses.names()
    kwargs = {
        "options": names,
        "selection_mode": "multi",
        "format_func": loss_title,
        "help": losses_help(names),
        "wrap": True,  # in a column pills would stay on one row and scroll, hiding most losses
    }
    return Widget("pills", "losses", "Losses", kwargs, [name for name in chosen if name in names])


def seeds_widget(seeds: int) -> Widget:
    """How many seeds each variant trains with."""
    help = (
        "Each variant trains once per seed: the Seed setting and the ones after it. Compare then shows each "
        "variant's mean with a 95% confidence interval and every seed as a dot; an interval needs 2 seeds, and 3 "
        f"or more make it useful (allowed: an integer from 1 to {MAX_SEEDS})."
    )
    return Widget("text_input", SEEDS, "Seeds per variant", {"help": help}, int(seeds), number=int)


def form_widgets(chosen: TrainSettings, config_cls: type[RunConfig] = RunConfig) -> list[Widget]:
    """Every input the form can draw, showing ``chosen``: the run settings, the losses, the chosen losses'
    hyperparameters and the seeds (the added variants are listed, not inputs)."""
    config = chosen.config
    widgets = [setting_widget(each, getattr(config, each.name, None)) for each in settings(config_cls) if each.form]
    widgets.append(losses_widget(chosen.losses))
    for loss in chosen.losses:
        given = chosen.hparams.get(loss, {})
        widgets += [hparam_widget(loss, spec, given.get(spec.name)) for spec in losses.info(loss).hparams]
    widgets.append(seeds_widget(chosen.seeds))
    return widgets


def draw(widget: Widget, where: Any = st) -> Any:
    """Draw ``widget`` in ``where`` (a column, an expander, ``st``) and return its value: the session's,
    else (an input not drawn on the previous run) the widget's own starting value."""
    for key, value in widget.state().items():
        st.session_state.setdefault(key, value)
    if widget.call != "presets":
        return widget.read(getattr(where, widget.call)(widget.label, key=widget.key, **widget.kwargs))
    kwargs = widget.kwargs
    choice = where.segmented_control(
        widget.label,
        kwargs["options"],
        format_func=kwargs["format_func"],
        key=f"{widget.key}_preset",
        help=kwargs["help"],
        required=True,  # a click on the chosen segment keeps it
    )
    if choice != MORE:
        return choice
    return widget.read(
        where.text_input(widget.label, key=widget.key, label_visibility="collapsed", help=kwargs["help"])
    )


def fill_form(chosen: TrainSettings, config_cls: type[RunConfig] = RunConfig) -> None:
    """Make every input of the form show ``chosen``, and the added variants be ``chosen``'s; called in a
    button's callback, before the inputs are drawn (a widget's session value cannot change once it is)."""
    for widget in form_widgets(chosen, config_cls):
        st.session_state.update(widget.state())
    st.session_state[EXTRA_VARIANTS] = [(loss, dict(params)) for loss, params in chosen.extra]


def setting_inputs(config_cls: type[RunConfig], initial: RunConfig) -> dict[str, Any]:
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


MORE = "more"  # the preset that opens a free number entry
SEEDS = "n_seeds"


def losses_help(names: Sequence[str]) -> str:
    return "\n".join(f"- **{loss_title(name)}**: {losses.info(name).summary}" for name in names)


# session keys of the form's own state (the widgets are keyed by their setting's name)
EXTRA_VARIANTS = "extra_variants"  # variants added with "Add a variant": [(loss, hyperparameters), ...]
