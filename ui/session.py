"""Who this browser is and what it has selected, and the objects one server process shares.

Every ``st.session_state`` and ``st.query_params`` key the app keeps is named here, and selection state
is written only through this module's functions.

Identity. A browser owns the experiments it trains and its training job: only it may stop or delete
them. What proves it is a *credential* the server issues and signs (:mod:`lab.runs.credentials`): the server
itself sets it in an ``HttpOnly`` cookie (``losslens_owner``: one year, ``SameSite=Strict``, ``Secure`` over
HTTPS) on the browser's first page load, before any session starts (:mod:`ui.owner_cookie`), so every tab
of the browser, a refresh and a restart of the server find the same one, and no script can read it. A
value the server did not sign is replaced by a new credential. Run and job files record only the *owner
id*, a hash of the credential, so neither the runs folder, an export, a log line nor a job id gives the
credential away.

What this protects against: a link (the address bar holds only the experiment and view settings, so a
copied or shared link opens a read-only view), an exported run, the server's log and the runs folder
(none of them holds the credential), guessing and forging (a credential's signature needs the server's
secret), and scripts, including a page of another site on the same host (cookies do not tell ports
apart): they cannot read the cookie, a value they plant is not honored, and one that shadows the
browser's own (several credentials sent) makes the session a visitor rather than someone else. Old
``?u=`` links are ignored and removed from the address bar: their token was in every link its browser
shared. What it
does not protect against: anyone who can read the browser's cookies (the browser's user, its
extensions, malware, a person at the unlocked machine), anyone who can read the traffic of a plain-HTTP
server (serve it over HTTPS), and a page of another site on the same host that plants, before this
browser's first visit, a credential it got from this server: serve LossLens on a host name of its own.
Clearing cookies, a private window or another browser is a new owner; the runs stay on disk, and the
server's operator can end and delete them (``python -m lab end``, ``python -m lab delete``). A browser that
refuses cookies is a new owner on each refresh.

Selection. The experiment (``?exp=``) lives in the URL as well as the session: a page switch clears the
URL's parameters (the session keeps them) and a refresh starts a new session (the URL keeps them).
An experiment named by a link is shown to anyone who has the link, read-only; the sidebar otherwise
lists this browser's experiments and the shared ones (the examples and those trained on the command line).
A new browser opens on :data:`DEFAULT_EXAMPLE`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

import streamlit as st

from lab.runs import contents, credentials
from lab.runs.contents import RunStoreError
from lab.runs.io import read_run_file
from lab.runs.record import RunRecord
from lab.runs.store import TRASH_PREFIX, RunStore
from lab.training.jobs import JobManager
from ui.owner_cookie import CLAIM_PATH, CONFLICT_HEADER, COOKIE

logger = logging.getLogger(__name__)

# st.session_state keys
CREDENTIAL = "credential"  # this browser's secret (see the module docstring)
EXPERIMENT = "experiment"
EXPERIMENT_CHOICE = "experiment_choice"  # the sidebar's experiment widget
PENDING_EXPERIMENT = "pending_experiment"  # started, first run folder not written yet
LISTING_PROBLEM = "listing_problem"  # why the runs folder could not be listed on this rerun
LINKED = "linked_experiments"  # experiments of other browsers this session opened from a link (read-only)
INSPECT_INDEX = "inspect_index"  # the Feature space image panel's index field, also set by a click
SELECTION_ROUND = "selection_round"  # counts chart clicks: charts keyed by it start without a selection
PRESENTATION = "presentation"  # the projector switch (larger fonts, one view per screen)
PLAYGROUND_POINT = "playground_point"  # the feature the Learn page's playground reads every loss at
CAM_SCALE = "cam_scale"  # Grad-CAM colour scale ("each map" or "shared raw"), the page's and the inspector's
CAM_OPACITY = "cam_opacity"  # Grad-CAM overlay opacity, shared likewise
CAM_LAYER = "cam_layer"  # Grad-CAM layer ("last" or "previous"), shared likewise
SEEN_DONE = "seen-done-{job_id}"  # the live view has rerun the whole page once after this job ended
FOLLOWED = "followed_experiment"  # another browser's experiment whose training the Train page showed
CLAIM = "claim_cookie"  # this session started a training: make its credential the browser's cookie

# st.query_params keys
URL_EXPERIMENT = "exp"
URL_PRESENTATION = "present"  # ?present=1: open in presentation mode
RETIRED_URL_KEYS = ("u", "job")  # the owner token and job id old links carried: ignored and removed


DEFAULT_EXAMPLE = "example-fashion-3d"  # what a new browser opens on: 28x28 images give readable 7x7 CAMs
EXAMPLE_RUNS = Path(__file__).resolve().parents[1] / "assets" / "example-runs"
VIEWABLE = ("finished", "stopped")
MAX_LINKED = 20  # experiments opened from links that a session keeps in its sidebar


# ---------------------------------------------------------------- the runs folder and the jobs


@dataclasses.dataclass(frozen=True)
class RunsFolder:
    """The runs this server shows; ``problem`` says why it cannot write runs (then nothing trains)."""

    store: RunStore
    problem: str | None


@st.cache_resource
def runs_folder() -> RunsFolder:
    """$LOSSLENS_RUNS_DIR (or ./runs), seeded with the shipped examples. A folder the server cannot
    write is read as it is, or, when it holds no runs, replaced by the shipped examples in assets/."""
    root = Path(os.environ.get("LOSSLENS_RUNS_DIR", "runs"))
    try:
        _prepare(root)
    except OSError as err:
        problem = f"the runs folder {root} cannot be written ({err.strerror or err})"
        logger.warning("%s: the app shows runs but cannot train", problem)
        try:
            has_runs = bool(RunStore(root).run_ids())
        except (OSError, RunStoreError):
            has_runs = False
        store = RunStore(root) if has_runs else RunStore(EXAMPLE_RUNS)
        return RunsFolder(store, problem if has_runs else f"{problem}; showing the shipped examples")
    return RunsFolder(RunStore(root), None)


def _retire_old_examples(root: Path) -> None:
    """Move to the trash the copies of example runs that LossLens no longer ships (an older release's
    examples, retrained since): left in place they would join the new runs of their experiment and be
    averaged with them. Only runs named like an example and recorded as one of its experiments go."""
    shipped = {run.name: _experiment_of(run) for run in EXAMPLE_RUNS.iterdir()}
    experiments = set(shipped.values()) - {None}
    stale = [
        entry
        for entry in root.iterdir()
        if entry.name not in shipped and entry.name.startswith("example-") and _experiment_of(entry) in experiments
    ]
    if stale:
        trash = Path(tempfile.mkdtemp(dir=root, prefix=TRASH_PREFIX))
        for entry in stale:
            os.rename(entry, trash / entry.name)
        logger.info("replaced %d example runs of an older release: %s", len(stale), ", ".join(e.name for e in stale))
        shutil.rmtree(trash, ignore_errors=True)


def _experiment_of(run_dir: Path) -> str | None:
    """The experiment a run folder's config names, or None when it cannot be read."""
    try:
        config = json.loads(read_run_file(run_dir, contents.CONFIG) or b"{}")
    except (RunStoreError, OSError, ValueError):
        return None
    experiment = config.get("experiment") if isinstance(config, dict) else None
    return experiment if isinstance(experiment, str) else None


def _prepare(root: Path) -> None:
    """Create ``root``, check that it can be written and copy in the examples it lacks (each whole or
    not at all: copied under a temporary name, then renamed)."""
    root.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=root, prefix=".write-check-")
    os.close(fd)
    os.unlink(probe)
    if not EXAMPLE_RUNS.is_dir():
        return
    _retire_old_examples(root)
    for run_dir in EXAMPLE_RUNS.iterdir():
        target = root / run_dir.name
        if not run_dir.is_dir() or target.exists() or target.is_symlink():
            continue
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{run_dir.name}."))
        try:
            shutil.copytree(run_dir, staging, dirs_exist_ok=True)
            os.rename(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():  # another server seeded it meanwhile: fine
                raise


def run_store() -> RunStore:
    return runs_folder().store


def runs_problem() -> str | None:
    """Why this server cannot train (its runs folder cannot be written), or None."""
    return runs_folder().problem


@st.cache_resource
def job_manager() -> JobManager:
    return JobManager(run_store())


# ---------------------------------------------------------------- identity


def _secret() -> bytes:
    return credentials.server_secret(credentials.runs_root())


def valid_credential(value: object) -> bool:
    """Whether ``value`` is a credential this server (or one sharing its secret) issued."""
    return credentials.verify(_secret(), value)


owner_of = credentials.owner_of


def _browser_cookie() -> str | None:
    """The credential cookie the browser sent when it connected, if this server issued it (the server's
    middleware passes on at most one, see :mod:`ui.owner_cookie`)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except (AttributeError, RuntimeError):  # no browser connection (bare mode)
        return None
    return value if valid_credential(value) else None


def _credential() -> str:
    """This session's credential: kept in the session (only the server writes it there), else the browser's
    cookie, else a new one for this session alone (a browser that sent none the server could honor)."""
    credential = st.session_state.get(CREDENTIAL)
    if not isinstance(credential, str) or not credential:
        credential = _browser_cookie() or credentials.issue(_secret())
        st.session_state[CREDENTIAL] = credential
    return credential


def owner() -> str:
    """This browser's owner id (see the module docstring); its experiments and jobs are recorded under it."""
    return owner_of(_credential())


def _claim_cookie(credential: str) -> None:
    """Ask this page to make ``credential`` its browser's cookie (:data:`ui.owner_cookie.CLAIM_PATH`), on
    each page view of a session whose training is queued or running: a tab whose cookie another tab
    replaced, or whose cookies were cleared, makes the browser the training's owner again (a refresh made
    before that is a new owner; the operator can still end the training's runs, see the README)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    path = (f"/{base}" if base else "") + CLAIM_PATH
    token = credentials.claim_token(_secret(), credential, time.time())
    url = f"{path}?{urllib.parse.urlencode({'t': token})}"
    st.html(
        f'<script>fetch({json.dumps(url)}, {{method: "POST", credentials: "same-origin"}});</script>',
        unsafe_allow_javascript=True,
    )


def credential_conflict() -> bool:
    """Whether the browser sent several credentials this server issued, so that none counts for it."""
    try:
        return bool(st.context.headers.get(CONFLICT_HEADER))
    except (AttributeError, RuntimeError):
        return False


def keep_identity() -> None:
    """Once per page view: drop the retired owner and job parameters from the address bar and say when the
    browser's cookies make it a visitor here."""
    for key in RETIRED_URL_KEYS:
        if key in st.query_params:
            del st.query_params[key]
    credential = _credential()
    started = st.session_state.pop(CLAIM, False)
    if (started or job_manager().active_job(owner_of(credential))) and not credential_conflict():
        _claim_cookie(credential)  # never over the browser's own when it sends several
    if credential_conflict():
        st.warning(
            "This browser holds more than one LossLens owner cookie (a page of another site on this host "
            "can add one), so this page cannot tell which experiments are yours and shows them read-only. "
            "Clear this site's cookies and open LossLens again; its operator can end or delete your runs "
            "with `python -m lab end` and `python -m lab delete`."
        )


# ---------------------------------------------------------------- experiments


def started_at(record: RunRecord) -> float | None:
    """When ``record`` started training, or None when its status says nothing believable: the store already
    drops a time from the future (it must not make a run the newest), and one before 1970 cannot be shown."""
    started = record.started
    return started if started is not None and started >= 0 else None


def _newest_first(item: tuple[str, list[RunRecord]]) -> tuple[float, str]:
    experiment, records = item
    starts = [s for s in map(started_at, records) if s is not None]
    return (-max(starts) if starts else math.inf, experiment)


def experiments() -> dict[str, list[RunRecord]]:
    """Experiments this browser may see, newest first (by believable start times): its own, the shared
    ones, and those of other browsers it opened from a link (read-only, see :func:`linked`). Empty when the
    runs folder cannot be listed (:func:`listing_problem` says why)."""
    try:
        groups = _visible_experiments()
    except RunStoreError as err:
        logger.warning("cannot list the experiments: %s", err)
        st.session_state[LISTING_PROBLEM] = str(err)
        return {}
    st.session_state.pop(LISTING_PROBLEM, None)
    return dict(sorted(_regroup_broken(groups).items(), key=_newest_first))


def listing_problem() -> str | None:
    return st.session_state.get(LISTING_PROBLEM)


def _visible_experiments() -> dict[str, list[RunRecord]]:
    store = run_store()
    groups = store.experiments(owner=owner())
    wanted = st.query_params.get(URL_EXPERIMENT)
    linked_ids: list[str] = st.session_state.setdefault(LINKED, [])
    wanted_elsewhere = bool(wanted) and wanted not in groups and wanted not in linked_ids
    if wanted_elsewhere or any(experiment not in groups for experiment in linked_ids):
        everyone = store.experiments()  # only read twice when a link names another browser's experiment
        if wanted_elsewhere and wanted in everyone:
            linked_ids.append(wanted)
            del linked_ids[:-MAX_LINKED]
        for experiment in linked_ids:
            known = [record for record in everyone.get(experiment, []) if record.owner is not None]
            if experiment not in groups and known:  # a run of unknown owner is never shown to others
                groups[experiment] = known
    return groups


def _regroup_broken(groups: dict[str, list[RunRecord]]) -> dict[str, list[RunRecord]]:
    """Put each run whose config.json cannot be used back into the experiment its file names, so it shows
    there with its error instead of silently leaving it (the store lists such a run on its own)."""
    for key, records in list(groups.items()):
        if len(records) != 1 or records[0].config is not None or key != records[0].run_id:
            continue
        experiment = _named_experiment(records[0])
        if experiment is not None and experiment in groups and experiment != key:
            groups[experiment].append(records.pop())
            del groups[key]
    return groups


def _named_experiment(record: RunRecord) -> str | None:
    """The experiment a run's unusable config.json names, read as the store reads run files; None when
    it names none."""
    try:
        data = read_run_file(record.run_dir, contents.CONFIG)
        raw = contents.parse_json(data) if data is not None else None
    except (RunStoreError, ValueError):
        return None
    experiment = raw.get("experiment") if isinstance(raw, dict) else None
    return experiment if isinstance(experiment, str) and experiment else None


def owns(records: list[RunRecord]) -> bool:
    """Whether this browser started any of ``records`` (then it may stop and delete them)."""
    me = owner()
    return any(record.owner == me for record in records)


def linked(records: list[RunRecord]) -> bool:
    """Whether ``records`` belong to other browsers (opened here from a link, read-only)."""
    me = owner()
    return bool(records) and all(record.owner not in ("", me) for record in records)


def pending_experiment() -> str | None:
    """An experiment this session has just started whose first run folder may not exist yet: the
    sidebar switches to it as soon as it does."""
    return st.session_state.get(PENDING_EXPERIMENT)


def selected_experiment() -> str | None:
    return st.session_state.get(EXPERIMENT)


def selected_runs(viewable_only: bool = True) -> list[RunRecord]:
    """The selected experiment's runs, fresh from disk; by default only those with results."""
    experiment = selected_experiment()
    if experiment is None:
        return []
    records = experiments().get(experiment, [])
    if viewable_only:
        records = [r for r in records if r.state in VIEWABLE and r.config is not None and r.error is None]
    return records


def _pending_after_refresh(groups: dict[str, list[RunRecord]]) -> None:
    """A new session (a refresh, a reconnect) of a browser whose training job has not written its first
    run folder yet, a queued one say, takes the job's experiment as pending again, as the session that
    started it had it: otherwise the sidebar would settle on another experiment and never come back."""
    if PENDING_EXPERIMENT in st.session_state:
        return
    manager, me = job_manager(), owner()
    job = manager.get(manager.active_job(me), me)
    if job is not None and job.configs and job.configs[0].experiment not in groups:
        st.session_state[PENDING_EXPERIMENT] = job.configs[0].experiment


def preselected_experiment(groups: dict[str, list[RunRecord]]) -> str | None:
    """Which of ``groups`` the experiment choice opens on: a pending experiment whose first run folder now
    exists (it stops being pending), else the URL's, else the session's, else :data:`DEFAULT_EXAMPLE`,
    else this browser's newest; None when none of these exists (another browser's run or a run with
    a start time from the future never becomes the default)."""
    _pending_after_refresh(groups)
    pending = pending_experiment()
    if pending in groups:
        del st.session_state[PENDING_EXPERIMENT]
        st.query_params[URL_EXPERIMENT] = pending
    for wanted in (st.query_params.get(URL_EXPERIMENT), selected_experiment(), DEFAULT_EXAMPLE):
        if wanted in groups:
            return wanted
    me = owner()
    return next((exp for exp, records in groups.items() if any(r.owner == me for r in records)), None)


def select_experiment(experiment: str | None) -> None:
    st.session_state[EXPERIMENT] = experiment
    if experiment is None:
        st.query_params.pop(URL_EXPERIMENT, None)
    elif pending_experiment() is None:  # while one is pending the URL keeps naming it, so a refresh finds it
        st.query_params[URL_EXPERIMENT] = experiment


def forget_experiment() -> None:
    """Select nothing (the selected experiment was deleted)."""
    select_experiment(None)


def share_link(experiment: str) -> str:
    """A link that opens ``experiment`` on this page for anyone, read-only: the page and ``?exp=`` only."""
    query = urllib.parse.urlencode({URL_EXPERIMENT: experiment})
    url = st.context.url
    if not url:
        return f"?{query}"
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


# ---------------------------------------------------------------- training jobs


def start_pending(experiment: str) -> None:
    """Select a just-submitted experiment, pending until its first run folder exists."""
    st.query_params[URL_EXPERIMENT] = experiment
    st.session_state[EXPERIMENT] = experiment
    st.session_state[PENDING_EXPERIMENT] = experiment
    st.session_state[CLAIM] = True


def follow(experiment: str) -> None:
    """Remember that the Train page showed ``experiment``'s training, which another browser or the command
    line runs, so that it still shows it when the training has ended."""
    st.session_state[FOLLOWED] = experiment


def followed() -> str | None:
    """The experiment whose training the Train page last followed read-only (see :func:`follow`)."""
    return st.session_state.get(FOLLOWED)


def first_view_when_done(job_id: str) -> bool:
    """True once per session for a job that has ended (the live view then reruns the whole page)."""
    key = SEEN_DONE.format(job_id=job_id)
    if st.session_state.get(key):
        return False
    st.session_state[key] = True
    return True
