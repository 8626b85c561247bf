"""Ending runs that nothing will end: a run another machine left ``running`` (no process here can stop it,
and the store never deletes a run that may still be written), and a run whose status.json went missing
or unreadable (its owner is unknown, so no browser sees it). Used by ``python -m lab end`` and ``delete``
(the server's operator) and by the sidebar (the run's owner).

Ending writes the run's status as ``interrupted`` (its files may have stopped anywhere, so the pages do not
draw it; it can be deleted) with a message that says who ended it and what it was; a missing owner is
taken from the other runs of its experiment when they all name the same one. A run a live process of this
machine is training is refused: the browser that started it (or ``kill`` of that process) stops it.
"""

from __future__ import annotations

import logging
import socket
import time

from lab.runs import contents
from lab.runs.record import ELSEWHERE, RunRecord
from lab.runs.store import RunStore
from lab.runs.contents import RunStoreError
from lab.runs.io import write_json_atomic

logger = logging.getLogger(__name__)

ENDED_MESSAGE = "ended by {who}: {was}"


def why_unending(record: RunRecord) -> str | None:
    """What keeps ``record`` from ending by itself, in words, or None when nothing does (it has ended, or
    a process of this machine is training it)."""
    if record.state == ELSEWHERE:
        host = record.status.get("host")
        where = f"the machine {host}" if isinstance(host, str) and host else "another machine"
        return f"it was training on {where}, which this one cannot stop"
    if record.owner is None and record.error and contents.STATUS in record.error:
        return f"its status could not be read ({record.error})"
    return None


def experiment_of(record: RunRecord) -> str | None:
    return record.config.experiment if record.config is not None else None


def recovered_owner(store: RunStore, record: RunRecord) -> str | None:
    """The owner the other runs of ``record``'s experiment agree on, None when they name none or several."""
    experiment = experiment_of(record)
    if experiment is None:
        return None
    owners = {
        other.owner
        for other in store.list()
        if other.run_id != record.run_id and experiment_of(other) == experiment and other.owner is not None
    }
    return owners.pop() if len(owners) == 1 else None


def end_run(store: RunStore, run_id: str, who: str) -> RunRecord:
    """Mark run ``run_id`` interrupted (see the module docstring), ``who`` naming who ended it; returns the run as
    it now reads. Raises :class:`RunStoreError` for a run that is training here or has already ended."""
    record = store.load(run_id)
    if record.state == "running":
        pid = record.status.get("pid")
        raise RunStoreError(
            f"run {run_id} is training in process {pid} on this machine: stop it from the browser that started "
            "it, or end that process"
        )
    was = why_unending(record)
    if was is None:
        raise RunStoreError(f"run {run_id} has already ended ({record.state}); nothing to end")
    owner = record.owner if record.owner is not None else recovered_owner(store, record)
    status = {key: value for key, value in record.status.items() if key not in ("pid", "host")}
    status.update(status="interrupted", message=ENDED_MESSAGE.format(who=who, was=was), updated=time.time())
    status["ended_on"] = socket.gethostname()
    if owner is not None:
        status["owner"] = owner
    else:
        status.pop("owner", None)
    try:
        write_json_atomic(record.run_dir / contents.STATUS, status)
    except OSError as err:
        raise RunStoreError(f"run {run_id}: its status cannot be written ({err.strerror or err})") from None
    logger.info("run %s ended by %s (%s)", run_id, who, was)
    return store.load(run_id)


def delete_all(store: RunStore, experiment: str) -> int:
    """Delete every run of ``experiment`` (an experiment's name, or the id of a run listed on its own),
    whoever started it: the operator's delete. Runs still training or of unknown state refuse it (end them
    first). Returns how many runs went."""
    groups = store.experiments().get(experiment)
    if not groups:
        raise RunStoreError(f"no experiment {experiment!r} in {store.root} (python -m lab list names them)")
    deleted = 0
    for owner in dict.fromkeys(record.owner for record in groups):
        deleted += store.delete_experiment(experiment, owner)  # type: ignore[arg-type]  # None: unknown owner
    return deleted
