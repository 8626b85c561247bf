"""Train: choose data, model and losses, start, and watch every loss learn live."""

from __future__ import annotations

import streamlit as st

import ui
from lab import datasets
from lab.data import DatasetError
from lab.experiment import make_experiment
from ui import loaders, session, train_form, train_live

ui.run_inside_app()

st.title("Train an experiment")
st.caption("Train one model per loss on the same data, seed and schedule, then compare them on the other pages.")

manager = session.job_manager()
owner = session.owner_token()
job_id = session.attached_job(manager, owner)
job = manager.get(job_id, owner) if job_id else None
if job is not None:
    session.attach_job(job_id)

if job is not None:
    train_live.show(manager, job_id, owner)
elif manager.queue_length():
    st.caption(f"{manager.queue_length()} trainings are waiting for a free slot on this machine.")

settings = train_form.settings_form(busy=job is not None and job.running)
warnings = train_form.feasibility_warnings(settings, datasets.info(settings.config.dataset).n_classes)
for warning in warnings:
    st.warning(warning, icon=":material/warning:")
train_form.limits_note(manager.max_running)

if settings.start:
    try:
        configs = make_experiment(settings.config, settings.losses, settings.hparams)
        with st.spinner(f"Loading {settings.config.dataset}..."):
            loaders.dataset_for(settings.config.dataset, settings.config.data_root)
    except (ValueError, DatasetError) as err:
        st.error(str(err), icon=":material/error:")
    else:
        job_id = manager.submit(configs, owner)
        session.start_pending(job_id, configs[0].experiment)
        st.rerun()
