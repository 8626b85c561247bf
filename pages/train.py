"""Train: choose data, model, losses and their variants, seeds, or a paper's experiment; start, and watch
every run learn live."""

from __future__ import annotations

import streamlit as st

import ui
from lab import datasets
from lab.datasets.tensors import DatasetError
from lab.settings import form
from lab.settings.errors import ConfigError
from lab.shown_text import count_text
from lab.training.jobs import JobLimitError
from ui import loaders, run_on, session, train_form, train_live
from ui.text import plain

ui.run_inside_app()

st.title("Train an experiment")
st.caption(
    "Train one model per variant (a loss with its settings) and seed on the same data and schedule, then compare "
    "them on the other pages."
)

manager = session.job_manager()
owner = session.owner()
job_id = manager.current_job(owner)  # found through this browser's credential, never through the URL
job = manager.get(job_id, owner) if job_id else None

if job is not None:
    train_live.show(manager, job_id, owner)
elif manager.queue_length():
    waiting = manager.queue_length()
    st.caption(
        f"{count_text(waiting, 'training')} {'is' if waiting == 1 else 'are'} waiting for a free slot on this machine."
    )
# the sidebar's experiment, when another browser or the command line trains it (a shared link's viewer follows
# it here): its progress from its run files, without Stop; the form below stays this browser's own
if train_live.follows(session.selected_experiment(), job.experiment if job is not None else None):
    train_live.show_followed()

problem = session.runs_problem()
if problem:
    st.warning(
        f"Training is unavailable: {plain(problem)}. The server's administrator can set LOSSLENS_RUNS_DIR to a "
        "folder the app can write and restart it.",
        icon=":material/block:",
    )
unavailable = "Training is unavailable on this server (see above)." if problem else None
if manager.active_job(owner):
    unavailable = "Your training is queued or running: stop it, or wait until it ends, to start another."

train_form.preset_picker()
# a filled-in preset, else (after a refresh during a training) the settings that started it, else the defaults
initial = train_form.initial_settings(job.configs if job is not None else None)
settings = train_form.settings_form(unavailable, initial)
try:
    configs = train_form.experiment_configs(settings)
except ConfigError as err:
    configs = []
    st.error(f"{plain(err)}. Change this setting to start.", icon=":material/error:")
if configs:
    st.caption(form.runs_text(configs))
    for warning in train_form.feasibility_warnings(settings, datasets.info(settings.config.dataset).n_classes):
        st.warning(warning, icon=":material/warning:")
train_form.limits_note(manager.max_running)

# checked again here, not only by the button's state: a second click can arrive before the button is disabled
if settings.start and configs and not problem and not manager.active_job(owner):
    try:
        if settings.backend == "local":  # on a Ray cluster each worker loads its own copy
            with st.spinner(f"Loading {configs[0].dataset}..."):
                loaders.dataset_for(configs[0].dataset, configs[0].data_root)
        manager.submit(configs, owner, backend=run_on.backend_of(settings))
    except (DatasetError, JobLimitError) as err:
        st.error(plain(err), icon=":material/error:")
    except OSError as err:
        st.error(f"The data folder could not be read ({plain(err.strerror or err)}).", icon=":material/error:")
    else:
        session.start_pending(configs[0].experiment)
        st.rerun()
