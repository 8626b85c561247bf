"""The Train page's settings form, drawn from the run settings' declarations (``lab.settings.config.setting``)
and the losses' hyperparameter declarations (``losses.base.hparam``): a new declared field shows up
here, in its group, with no edit to this file.

Number fields are text inputs read by :func:`losses.read_number` and say their range in their help; a value
out of range, or text that is not a number as a person writes one (``1e309``, ``0_1``, other scripts'
digits), is named in an error under the form as soon as it is typed. (A browser's number input reads
``1e3`` as 1 in an integer field and silently puts the old value back for one it cannot hold.) Losses are
picked as pills, by the papers' names; "Add a variant" adds a loss again with other hyperparameters, and
each variant is trained with every seed. Every input's value lives in the session under the input's key
(:class:`Widget`), so a preset (:mod:`lab.settings.presets`) fills the form with a paper's experiment by
writing those values: the browser shows them and Start trains them. The form can start from an earlier
experiment's settings (:meth:`TrainSettings.of`), so a refresh during a training keeps what was submitted.
Every experiment it starts is made by :func:`lab.settings.experiment.make_experiment`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

import losses
from lab.settings import presets
from lab.settings.config import GROUPS, RunConfig, Setting, settings
from lab.settings.errors import ConfigError
from lab.settings.experiment import experiment_name, factor_variants, loss_title, make_experiment
from lab.shown_text import count_text
from lab.training.backends import make_backend
from lab.training.backends.base import Backend, BackendError, ray_address
from lab.training.backends.probe import cluster_resources
from lab.training.jobs import MAX_RUNS_PER_JOB
from losses import plugins
from ui import loaders
from ui.text import plain

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")
START_REQUESTED = "start_requested"
MORE = "more"  # the preset that opens a free number entry
MAX_SEEDS = 10  # seeds per variant from the form: each seed trains every variant again
MAX_VARIANTS = MAX_RUNS_PER_JOB  # each variant trains at least once, and one training holds at most this many runs
# session keys of the form's own state (the widgets are keyed by their setting's name)
EXTRA_VARIANTS = "extra_variants"  # variants added with "Add a variant": [(loss, hyperparameters), ...]
SEEDS = "n_seeds"
VARIANT_LOSS = "variant_loss"  # the loss the "Add a variant" box edits; its inputs are keyed variant.<loss>.<name>
PRESET_CHOICE = "preset_choice"
LOADED_PRESET = "loaded_preset"  # the preset whose settings the form was last filled with
RUN_ON = "run_on"
CLUSTER_SECONDS = 30  # how long the Ray cluster's CPUs and GPUs are shown before they are asked again


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What the form holds: the run settings (not yet validated), the chosen losses and their
    hyperparameters, the variants added beyond them (a loss and its complete hyperparameters), how many
    seeds (``config.seed`` and the ones after it), where to train (``local`` or ``ray``) and the preset
    the form was filled with; ``start`` is True on the rerun where Start was clicked."""

    config: RunConfig
    losses: tuple[str, ...]
    hparams: dict[str, dict[str, Any]]
    start: bool = False
    extra: tuple[tuple[str, dict[str, Any]], ...] = ()
    seeds: int | str = 1  # str: what was typed, when it is not a number
    backend: str = "local"
    preset: str = ""

    @classmethod
    def of(cls, configs: Sequence[RunConfig], preset: str = "") -> TrainSettings:
        """The form's values that started ``configs`` (an experiment's variants x seeds): the first
        seed's runs give the variants, the first variant of each loss its pill."""
        seeds = sorted({c.seed for c in configs})
        first = [c for c in configs if c.seed == seeds[0]]
        pills: dict[str, dict[str, Any]] = {}
        extra = []
        for config in first:
            if config.loss in pills:
                extra.append((config.loss, dict(config.loss_params)))
            else:
                pills[config.loss] = dict(config.loss_params)
        return cls(first[0], tuple(pills), pills, extra=tuple(extra), seeds=len(seeds), preset=preset)

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        """Every variant as (loss, hyperparameters): the pills in order, then the added variants."""
        return [(loss, self.hparams.get(loss, {})) for loss in self.losses] + [
            (name, dict(params)) for name, params in self.extra
        ]

    def seed_list(self) -> list[int]:
        allowed = f"an integer from 1 to {MAX_SEEDS}"
        seeds = self.seeds
        if isinstance(seeds, str):  # what was typed, when it is not a number
            try:
                seeds = losses.read_number(seeds, int)
            except ValueError as err:
                raise ConfigError(f"seeds: {err} (allowed: {allowed})") from None
        if not 1 <= seeds <= MAX_SEEDS:
            raise ConfigError(f"seeds: must be {allowed}, got {seeds}")
        return list(range(self.config.seed, self.config.seed + seeds))


DEFAULT_SETTINGS = TrainSettings(RunConfig(), DEFAULT_LOSSES, {})


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
        "help": _losses_help(names),
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


def more_losses_text() -> str:
    """How to add losses to this list: a loss module named when the server starts (never from the browser,
    since loading one runs its code), and how to add each loss family whose library is missing."""
    _, missing = loaders.loss_modules()
    text = (
        f"More losses: your own, from a module set by {plugins.ENV} when the server is started (README: Your own loss)."
    )
    return " ".join([text, *(f"{hint[:1].upper()}{hint[1:]}." for hint in missing)])


def _losses_help(names: Sequence[str]) -> str:
    return "\n".join(f"- **{loss_title(name)}**: {losses.info(name).summary}" for name in names)


# --- presets ----------------------------------------------------------------------------------------


def _fill_with_preset(name: str, config_cls: type[RunConfig]) -> None:
    fill_form(preset_settings(name), config_cls)
    st.session_state[LOADED_PRESET] = name


def preset_settings(name: str) -> TrainSettings:
    """The form's values for preset ``name``: its variants, seeds and settings, on the dataset it picks here."""
    return TrainSettings.of(presets.get(name).configs(), preset=name)


def initial_settings(job_configs: Sequence[RunConfig] | None) -> TrainSettings:
    """What an input starts from when the session holds no value for it (a new session, a page switch, a
    loss picked again): the preset the form was last filled with, else the settings that started this
    browser's job (a refresh during a training keeps them), else the defaults."""
    loaded = st.session_state.get(LOADED_PRESET)
    if loaded in presets.names():
        return preset_settings(loaded)
    return TrainSettings.of(job_configs) if job_configs else DEFAULT_SETTINGS


def preset_picker(config_cls: type[RunConfig] = RunConfig) -> None:
    """Pick one of the papers' experiments: what it shows, what to look for and how long it takes (measured),
    and a button that fills the form with it."""
    with st.expander("Start from a paper's experiment", icon=":material/menu_book:"):
        name = st.selectbox(
            "Preset",
            presets.names(),
            index=None,
            format_func=lambda name: presets.get(name).title,
            key=PRESET_CHOICE,
            placeholder="Choose a paper's experiment",
            help="Each preset reproduces a figure or a claim of a paper, at a size that trains in minutes on "
            "two CPU cores.",
        )
        if name is None:
            return
        preset = presets.get(name)
        dataset, note = preset.choose_dataset()
        st.markdown(f"**{preset.paper}.** {preset.showed}\n\n**Look for** {preset.look_for}")
        st.caption(
            f"{runs_text(preset.configs())} on {dataset}, {preset.epochs} epochs · {preset.duration()} "
            f"({preset.measured})"
        )
        if note:
            st.caption(f":orange[{plain(note)}.]")
        st.button(
            "Fill the form with this preset",
            icon=":material/edit_note:",
            key="fill_preset",
            on_click=_fill_with_preset,
            args=(name, config_cls),
            help="Sets the data, model, losses, variants and seeds below; change any of them before you start.",
        )


# --- variants, seeds and where to train --------------------------------------------------------------


def _add_variant(loss: str, pills: int) -> None:
    # a callback reading the inputs' session values: a value typed just before the click is already there
    if pills + len(st.session_state.get(EXTRA_VARIANTS, [])) >= MAX_VARIANTS:
        return  # the button is disabled at the cap; a click sent before it was is refused here
    values = {
        spec.name: hparam_widget(loss, spec, prefix="variant").read(st.session_state[f"variant.{loss}.{spec.name}"])
        for spec in losses.info(loss).hparams
    }
    st.session_state[EXTRA_VARIANTS] = [*st.session_state.get(EXTRA_VARIANTS, []), (loss, values)]


def _remove_variant(index: int) -> None:
    extra = list(st.session_state.get(EXTRA_VARIANTS, []))
    if index < len(extra):
        del extra[index]
    st.session_state[EXTRA_VARIANTS] = extra


def variant_labels(entries: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """The label each variant will have (:func:`lab.settings.experiment.factor_variants`), or its loss's title while
    a value is invalid."""
    try:
        variants, _ = factor_variants(entries)
    except ConfigError:
        return [loss_title(loss) for loss, _ in entries]
    return [variant.display_label() for variant in variants]


def _variants_editor(pills: Sequence[str], hparams: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The added variants, each with its label and a Remove button, and the box that adds one."""
    extra = list(st.session_state[EXTRA_VARIANTS])
    labels = variant_labels([(loss, hparams.get(loss, {})) for loss in pills] + extra)[len(pills) :]
    for index, label in enumerate(labels):
        name_col, remove_col = st.columns([4, 1], vertical_alignment="center")
        name_col.markdown(f":material/call_split: **{plain(label)}**")
        remove_col.button(
            "Remove", key=f"remove_variant_{index}", on_click=_remove_variant, args=(index,), icon=":material/close:"
        )
    tunable = [name for name in losses.names() if losses.info(name).hparams]
    with st.expander("Add a variant: a loss again with other settings", icon=":material/add:"):
        loss = st.selectbox("Loss", tunable, format_func=loss_title, key=VARIANT_LOSS)
        st.caption(
            "Each variant is labelled by the settings that set it apart from the other variants of its loss "
            "(e.g. L-Softmax m=4), and Compare can plot a figure against a setting they sweep."
        )
        for spec in losses.info(loss).hparams:
            draw(hparam_widget(loss, spec, prefix="variant"))
        full = len(pills) + len(extra) >= MAX_VARIANTS
        st.button(
            "Add this variant",
            key="add_variant",
            on_click=_add_variant,
            args=(loss, len(pills)),
            icon=":material/add:",
            disabled=full,
        )
        if full:
            st.caption(f":orange[{variants_cap_text()}]")
    return extra


def variants_cap_text() -> str:
    """Why no variant can be added now, and what to do."""
    return (
        f"{MAX_VARIANTS} variants are the most one training holds (each trains once per seed, and a training "
        f"holds at most {MAX_RUNS_PER_JOB} runs): remove a variant or a loss to add another."
    )


@st.cache_data(ttl=CLUSTER_SECONDS, show_spinner="Asking the Ray cluster what it has...")
def _cluster(address: str) -> tuple[dict[str, float], str]:
    """The Ray cluster's CPUs and GPUs, or why it cannot be used (kept a while: an unreachable address
    would otherwise cost a connection attempt on every rerun)."""
    try:
        return cluster_resources(address), ""
    except BackendError as err:
        return {}, str(err)


def _run_on() -> str:
    """``local``, or ``ray`` when ``$LOSSLENS_RAY_ADDRESS`` names a cluster this server can reach."""
    address = ray_address()
    if not address:
        return "local"
    found, problem = _cluster(address)
    choice = st.radio(
        "Run on",
        ["local", "ray"],
        format_func={"local": "this machine", "ray": f"Ray cluster at {address}"}.get,
        key=RUN_ON,
        horizontal=True,
        disabled=bool(problem),
        help="On the Ray cluster each run is a task on a worker; progress and the runs' files come back here.",
    )
    if problem:
        st.caption(f":orange[{plain(problem)}.] Training runs on this machine.")
        return "local"
    st.caption(f"The Ray cluster has {found['CPU']:g} CPUs and {found['GPU']:g} GPUs.")
    return choice or "local"


def backend_of(settings: TrainSettings) -> Callable[[], Backend] | None:
    """What the job trains through: None for this machine, else a maker of the Ray backend."""
    if settings.backend != "ray":
        return None
    return functools.partial(make_backend, "ray", ray_address())


def settings_form(
    unavailable: str | None = None, initial: TrainSettings = DEFAULT_SETTINGS, config_cls: type[RunConfig] = RunConfig
) -> TrainSettings:
    """Draw the settings of ``config_cls``, the losses, the added variants, the seeds and where to train,
    starting at ``initial``, and return their current values. ``unavailable`` says why Start cannot be
    clicked now (None: it can)."""
    st.session_state.setdefault(EXTRA_VARIANTS, list(initial.extra))
    data_col, loss_col = st.columns([2, 3], gap="large")
    with data_col:
        st.subheader("Data and model")
        values = _setting_inputs(config_cls, initial.config)
    with loss_col:
        st.subheader("Losses to compare")
        chosen = draw(losses_widget(initial.losses))
        st.caption(more_losses_text())
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
        extra = _variants_editor(chosen, hparams)
        seeds = draw(seeds_widget(initial.seeds))
        backend = _run_on()
    st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=unavailable is not None or not (chosen or extra),
        key="start",
        on_click=_request_start,
        help=unavailable or "Training runs in the background: you can switch pages meanwhile.",
    )
    if unavailable is not None:
        st.caption(unavailable)
    start = st.session_state.pop(START_REQUESTED, False)
    return TrainSettings(
        config_cls(**values),
        tuple(chosen),
        hparams,
        start,
        extra=tuple(extra),
        seeds=seeds,
        backend=backend,
        preset=st.session_state.get(LOADED_PRESET) or initial.preset,
    )


def _comparable(configs: Sequence[RunConfig]) -> list[str]:
    return sorted(json.dumps({**c.to_dict(), "experiment": ""}, sort_keys=True) for c in configs)


def experiment_configs(settings: TrainSettings) -> list[RunConfig]:
    """The validated runs ``settings`` would start (:func:`lab.settings.experiment.make_experiment`, with the data
    folder checked by :func:`ui.loaders.checked_data_root`): every variant with every seed. While the form
    still holds a preset's settings unchanged, the experiment is named after the preset as the command line
    names it. Raises :class:`ConfigError` naming the first bad setting."""
    # a new experiment every time: settings taken from an earlier one (TrainSettings.of) carry its name
    template = settings.config.replace(data_root=loaders.checked_data_root(settings.config.data_root), experiment="")
    template.validate()  # first: a seed typed as text would otherwise reach the seeds' arithmetic
    variants, hparams = factor_variants(settings.entries())
    configs = make_experiment(template, variants, hparams, settings.seed_list(), max_runs=MAX_RUNS_PER_JOB)
    if settings.preset in presets.names():
        preset = presets.get(settings.preset)
        if _comparable(configs) == _comparable(preset.configs(template.data_root, template.device)):
            name = experiment_name(template, preset=preset.name)
            configs = [config.replace(experiment=name) for config in configs]
    return configs


def runs_text(configs: Sequence[RunConfig]) -> str:
    """``3 variants x 2 seeds = 6 runs``."""
    variants = len(dict.fromkeys(c.variant for c in configs))
    seeds = len({c.seed for c in configs})

    return f"{count_text(variants, 'variant')} x {count_text(seeds, 'seed')} = {count_text(len(configs), 'run')}"


def feasibility_warnings(settings: TrainSettings, n_classes: int) -> list[str]:
    """Warnings of the chosen variants for these settings (valid ones: bad values are reported instead)."""
    entries = settings.entries()
    found = []
    for (loss, hparams), label in zip(entries, variant_labels(entries), strict=True):
        try:
            found += [
                f"**{plain(label)}**: {w}"
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
    from lab.datasets.uploads import limits_text

    with st.expander("Limits on this machine"):
        lines = [
            *limits_lines(),
            f"uploaded images (Grad-CAM page): {limits_text()}",
            f"trainings at once: {max_running}; more wait in a queue",
        ]
        st.markdown("\n".join(f"- {line}" for line in lines))
