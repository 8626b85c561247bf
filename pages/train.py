"""Train: choose data, model and losses, start, and watch every loss learn live."""

from __future__ import annotations

import streamlit as st

import ui
from lab.data import DATASET_CLASSES, DatasetError
from lab.device import available_devices
from ui import state, train_form, train_live

ui.run_inside_app()

st.title("Train an experiment")
st.caption("Train one model per loss on the same data, seed and schedule, then compare them on the other pages.")

manager = state.job_manager()
owner = state.owner_token()
job_id = st.query_params.get("job") or next(reversed(manager.jobs_of(owner)), "")
job = manager.get(job_id, owner) if job_id else None
if job is not None:
    st.query_params["job"] = job_id  # re-attach after a refresh or a page switch

if job is not None:
    train_live.show(manager, job_id, owner)
elif manager.queue_length():
    st.caption(f"{manager.queue_length()} trainings are waiting for a free slot on this machine.")

settings = train_form.settings_form(devices=available_devices(), busy=job is not None and job.running)
warnings = train_form.feasibility_warnings(settings, DATASET_CLASSES[settings.dataset])
for warning in warnings:
    st.warning(warning, icon=":material/warning:")
train_form.limits_note(manager.max_running)

if settings.start:
    try:
        configs = train_form.build_configs(settings, owner)
        with st.spinner(f"Loading {settings.dataset}..."):
            state.dataset_for(settings.dataset, settings.data_root)
    except (ValueError, DatasetError) as err:
        st.error(str(err), icon=":material/error:")
    else:
        job_id = manager.submit(configs, owner)
        st.query_params["job"] = job_id
        st.query_params["exp"] = configs[0].experiment
        st.session_state["experiment"] = configs[0].experiment
        st.session_state[state.PENDING_EXPERIMENT] = configs[0].experiment
        st.rerun()
