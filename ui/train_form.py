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

import json
from collections.abc import Sequence

import streamlit as st

import losses
from lab.settings import presets
from lab.settings.config import RunConfig
from lab.settings.experiment import experiment_name, factor_variants, loss_title, make_experiment
from lab.settings.form import DEFAULT_SETTINGS, TrainSettings, limits_lines, runs_text
from lab.training.jobs import MAX_RUNS_PER_JOB
from losses import plugins
from ui import loaders
from ui.form_widgets import EXTRA_VARIANTS, draw, fill_form, hparam_widget, losses_widget, seeds_widget, setting_inputs
from ui.run_on import run_on_choice
from ui.text import plain
from ui.variants_editor import variant_labels, variants_editor

START_REQUESTED = "start_requested"
PRESET_CHOICE = "preset_choice"
LOADED_PRESET = "loaded_preset"  # the preset whose settings the form was last filled with


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
        values = setting_inputs(config_cls, initial.config)
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
        extra = variants_editor(chosen, hparams)
        seeds = draw(seeds_widget(initial.seeds))
        backend = run_on_choice()
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
