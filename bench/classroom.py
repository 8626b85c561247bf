"""A class on one server: many browsers open the app at once, most look at the example, a few train.

    python -m bench.classroom                     # 30 browsers over 30 s, 4 of them training
    python -m bench.classroom --quick             # 3 browsers, 1 training of one loss for one epoch (CI)
    python -m bench.classroom --sessions 10 --stagger 10 --trainers 2 --profile classroom.raw

A real ``streamlit run app.py`` over a fresh runs folder (seeded with the shipped examples) and one headless
Chromium (Debian's, with ``bench.browser``'s flags) holding one browser context per session, so each
session is its own owner. The sessions start ``--stagger`` seconds apart in all. Each opens the first page
(the example's Feature space) and waits for its first chart, moves the Epoch slider to before training and
back to the end, plays the first panel's animation for a few seconds, then switches to Angles, Compare,
Grad-CAM, Learn and back to Feature space. ``--trainers`` of them first go to the Train page and start a
small training there (digits, the form's default losses for ``--epochs`` epochs; one loss in quick mode),
wait until the page says it is done, then do the same. A warm-up browser visits every page once before the
class (the teacher who opened the app before the lesson): the server's memory then is the start.

The browsers share this machine's cores with the server, and headless Chromium draws WebGL in software; in
a class each browser has its own computer. So Chromium runs at the lowest priority (``--browser-nice``,
19: it gets the CPU the server leaves), and the server's side is measured on its own, inside the server:
a ``sitecustomize`` module first on the server's ``PYTHONPATH`` (the app's code is not changed) times every
script run of every session (wall and the script thread's CPU seconds), adds up the bytes of the messages it
sends, notes uncaught exceptions and the training jobs (queued, started, ended). A sampler reads the
server's resident memory and CPU time from ``/proc`` twice a second, and those of the browsers.

* ``browser/...``: what the browsers saw: from opening the address to the first chart (``first_chart``) and
  to the first page's script run ending (``first_page``); from clicking a page's link to that page's title
  shown and its script run ended (``page_switch``); from moving the Epoch slider to the charts showing that
  epoch and the run ended (``slider``); median and 95th percentile over sessions and switches. Bytes: the
  websocket frames the browser received during each of these (``bytes/...``).
* ``server/...``: script runs as the server ran them, per session: the first page (from the session's first
  run starting to its first run that ends normally, so runs interrupted by ``st.rerun`` count), each page
  switch (a run of another page than the last one), each rerun of the same page (the slider, the training's
  live view), each fragment run (the progress of a training). Targets on 2 cores with 30 sessions: median
  first page under 5 s, median page switch under 1 s. CPU seconds of the server during the class; resident
  memory before the class, at its peak and 60 s after the last browser closed (target: within 10% of the
  start; Streamlit keeps a closed session's state for ``server.disconnectedSessionTTL``, 120 s by default,
  so a later reading is taken too in full mode).
* ``errors/...``: a session that timed out or showed an exception (``stException``), uncaught exceptions in
  the server's script runs, tracebacks in its log, and jobs lost (every started training must end with
  every run finished). Target: none.
* The training queue: each trainer's job, when it was queued, started and ended, in start order.

``--profile FILE`` samples the server with ``py-spy record`` (when installed) during the class and writes
the collapsed stacks to FILE; the report then sums them by part (script runs, training, the server's own
thread) and by function.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench import browser
from bench.common import Report, parser, resolve

VIEWPORT = {"width": 1400, "height": 1000}
FIRST_PAGE = "Feature space"
SWITCHES = ("Angles", "Compare", "Grad-CAM", "Learn", "Feature space")  # link names, also the pages' titles
TRAIN_TITLE = "Train an experiment"
PLAY_SECONDS = 3.0
QUICK_LOSS = "Softmax cross-entropy"
AFTER_SECONDS = 60  # memory is held to its target this long after the last browser closed
SESSION_TTL = 120  # Streamlit's server.disconnectedSessionTTL default, seconds
SAMPLE_SECONDS = 0.5
TARGETS = {"first_page": 5.0, "page_switch": 1.0, "memory": 0.10}
EVENTS_ENV = "LOSSLENS_CLASSROOM_EVENTS"
# innermost frames of threads that wait: py-spy counts a thread that is runnable but not running (a busy
# machine) as active, so these are dropped from the profile's shares
IDLE_FRAMES = (
    "EpollSelector.select",
    "PollingPathWatcher._schedule.<locals>.task (streamlit/watcher/polling_path_watcher.py:90)",
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait",
    "Event.wait",
    "Thread.join",
    "_wait_for_tstate_lock",
)

HOOK = '''\
"""Loaded first by the server of bench.classroom: times every script run of every session and notes the
training jobs, one JSON line each, into $LOSSLENS_CLASSROOM_EVENTS. The app's code is not changed."""

import json
import os
import sys
import threading
import time
import urllib.parse


def _install(path):
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    out = open(path, "a", buffering=1)
    lock = threading.Lock()
    runs = {}  # run descriptor's id -> the run in progress
    latest = {}  # session id -> its run in progress (for the messages it sends)
    browsers = {}  # session id -> the bench's browser number, from the session's first address
    errors = {}  # session id -> the uncaught exception of its run in progress
    ends = {"SCRIPT_STOPPED_WITH_SUCCESS", "SCRIPT_STOPPED_FOR_RERUN", "SCRIPT_STOPPED_WITH_COMPILE_ERROR",
            "FRAGMENT_STOPPED_WITH_SUCCESS"}

    def write(event):
        with lock:
            out.write(json.dumps(event) + "\\n")

    def session_of():
        ctx = get_script_run_ctx()
        return ctx.session_id if ctx is not None else ""

    def patch_jobs():
        jobs = sys.modules.get("lab.training.jobs")
        if jobs is None or getattr(jobs, "_classroom_timed", False):
            return
        jobs._classroom_timed = True
        submit, work = jobs.JobManager.submit, jobs.TrainingJob._work

        def timed_submit(self, configs, owner, *args, **kwargs):
            queued = time.time()
            job_id = submit(self, configs, owner, *args, **kwargs)
            session = session_of()
            write({"kind": "job", "what": "queued", "t": queued, "job": job_id, "owner": owner,
                   "experiment": configs[0].experiment, "runs": len(configs), "session": session,
                   "browser": browsers.get(session, "")})
            return job_id

        def timed_work(self):
            write({"kind": "job", "what": "started", "t": time.time(), "experiment": self.experiment,
                   "owner": self.owner})
            try:
                work(self)
            finally:
                write({"kind": "job", "what": "ended", "t": time.time(), "experiment": self.experiment,
                       "owner": self.owner, "error": self.error, "states": [r.state for r in self.records]})

        jobs.JobManager.submit = timed_submit
        jobs.TrainingJob._work = timed_work

    def on_event(runner, event, **payload):
        session = runner._session_id
        name = event.name
        if name == "SCRIPT_STARTED":
            patch_jobs()
            if session not in browsers:  # the bench's cookie names the browser, whatever page it opens on
                import streamlit as st

                ctx = get_script_run_ctx()
                query = urllib.parse.parse_qs(ctx.query_string if ctx is not None else "")
                try:
                    cookie = st.context.cookies.get("classroom")
                except Exception:
                    cookie = None
                browsers[session] = cookie or (query.get("classroom") or [""])[0]
            page = (payload.get("pages") or {}).get(payload.get("page_script_hash"), {})
            run = {"kind": "run", "session": session, "browser": browsers[session],
                   "page": page.get("page_name", ""), "fragment": bool(payload.get("fragment_ids_this_run")),
                   "start": time.time(), "clock": time.perf_counter(), "cpu": time.thread_time(),
                   "thread": threading.get_ident(), "bytes": 0, "messages": 0}
            runs[id(payload.get("run_descriptor"))] = run
            latest[session] = run
        elif name == "ENQUEUE_FORWARD_MSG":
            run = latest.get(session)
            if run is not None:
                run["bytes"] += payload["forward_msg"].ByteSize()
                run["messages"] += 1
        elif name in ends:
            run = runs.pop(id(payload.get("run_descriptor")), None)
            if run is None:
                return
            if latest.get(session) is run:
                del latest[session]
            same_thread = run.pop("thread") == threading.get_ident()
            run["wall"] = time.perf_counter() - run.pop("clock")
            run["cpu"] = time.thread_time() - run["cpu"] if same_thread else None
            run["end"] = name
            pages = runner._pages_manager
            run["drew"] = pages.get_pages().get(pages.current_page_script_hash, {}).get("page_name", "")
            run["error"] = errors.pop(session, None)
            write(run)
            patch_jobs()

    original_init = script_runner.ScriptRunner.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.on_event.connect(on_event, weak=False)

    original_exec = script_runner.exec_func_with_error_handling

    def exec_noting_errors(func, ctx):
        result = original_exec(func, ctx)
        if result[4] is not None:
            errors[ctx.session_id] = f"{type(result[4]).__name__}: {result[4]}"
        return result

    script_runner.ScriptRunner.__init__ = init
    script_runner.exec_func_with_error_handling = exec_noting_errors


if os.environ.get("LOSSLENS_CLASSROOM_EVENTS"):
    _install(os.environ["LOSSLENS_CLASSROOM_EVENTS"])
'''


# ----------------------------------------------------------------------------------------- the server


def server_pid(port: int) -> int:
    """The process of the ``streamlit run`` listening on ``port`` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(command) and str(port).encode() in command:
            return int(entry.name)
    raise RuntimeError(f"no streamlit process on port {port}")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of ``pid`` from ``/proc``, None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def keep_nice(pid: int, niceness: int) -> int:
    """Lower every thread of ``pid`` that runs above ``niceness`` back to it; returns how many it lowered.
    Chromium run as root raises some of its own threads (its GPU process, display threads: nice -8), which
    would otherwise take the CPU from the server the wrapper's ``nice`` is meant to leave it."""
    lowered = 0
    try:
        threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return 0
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                lowered += 1
        except OSError:  # the thread has ended
            continue
    return lowered


class Sampler:
    """Samples, every :data:`SAMPLE_SECONDS` on a thread: the server's resident memory and CPU seconds, the
    CPU seconds of this process's other descendants (Playwright's driver and Chromium), and the machine's;
    puts Chromium's threads back to ``niceness`` (:func:`keep_nice`) when it is above 0."""

    def __init__(self, server: int, niceness: int = 0) -> None:
        self.server = server
        self.niceness = niceness
        self.lowered = 0  # Chromium threads put back to ``niceness``
        self.samples: list[dict[str, float]] = []
        self.others: dict[int, tuple[str, float]] = {}  # pid -> name, latest CPU seconds (kept once it exits)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="classroom-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def sample(self) -> dict[str, float]:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                found = proc_stat(int(entry.name))
                if found is not None:
                    stats[int(entry.name)] = found
        mine = {os.getpid()}
        changed = True
        while changed:  # descendants of this process
            grown = {pid for pid, (parent, _) in stats.items() if parent in mine}
            changed = not grown <= mine
            mine |= grown
        for pid in mine - {os.getpid(), self.server}:
            self.others[pid] = (self.others.get(pid, (process_name(pid), 0.0))[0], stats[pid][1])
            if self.niceness > 0 and "chrom" in self.others[pid][0]:
                self.lowered += keep_nice(pid, self.niceness)
        server = stats.get(self.server)
        sample = {
            "t": time.time(),
            "rss": rss_mb(self.server) or float("nan"),
            "server_cpu": server[1] if server else float("nan"),
            "chromium_cpu": sum(cpu for name, cpu in self.others.values() if "chrom" in name),
            "driver_cpu": sum(cpu for name, cpu in self.others.values() if "chrom" not in name),
            "machine_cpu": machine_busy_seconds(),
        }
        self.samples.append(sample)
        return sample

    def between(self, start: float, end: float) -> list[dict[str, float]]:
        return [s for s in self.samples if start <= s["t"] <= end]

    def at(self, when: float) -> dict[str, float]:
        """The last sample taken at or before ``when``."""
        before = [s for s in self.samples if s["t"] <= when]
        return before[-1] if before else self.samples[0]


@contextlib.contextmanager
def server(runs: Path, events: Path) -> Iterator[tuple[str, int]]:
    """``streamlit run app.py`` over ``runs`` (``bench.browser.streamlit_server``) with the timing hook
    loaded first; yields its address and process id."""
    hook = events.parent / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    with browser.streamlit_server(runs, PYTHONPATH=path, **{EVENTS_ENV: str(events)}) as url:
        yield url, server_pid(int(url.rsplit(":", 1)[1]))


def niced_chromium(folder: Path, niceness: int) -> str:
    """Debian's Chromium, started through a script that lowers its priority by ``niceness`` (every process
    it starts inherits it); Chromium itself when 0."""
    chromium = shutil.which("chromium") or browser.CHROMIUM
    if not niceness:
        return chromium
    wrapper = folder / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(niceness)} {shlex.quote(chromium)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """``py-spy record`` of ``pid`` into ``out`` (collapsed stacks) while inside; nothing without ``out``."""
    if out is None:
        yield
        return
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "20", "--format", "raw", "--nonblocking"]
        + ["--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            said = spy.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            spy.kill()
            said = spy.communicate()[0]
        if not out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {said[-2000:]}")


# ----------------------------------------------------------------------------------------- the browsers


@dataclasses.dataclass
class Action:
    what: str  # first_page, page_switch, slider, train
    page: str
    seconds: float
    bytes: int


@dataclasses.dataclass
class Session:
    index: int
    trainer: bool
    opened: float = 0.0  # time.time() when it opened the address
    closed: float = 0.0
    first_chart: float | None = None
    actions: list[Action] = dataclasses.field(default_factory=list)
    played: bool = False
    trained: str = ""  # the Train page's final line
    errors: list[str] = dataclasses.field(default_factory=list)
    received: int = 0  # websocket bytes in all

    def seconds(self, what: str) -> list[float]:
        return [a.seconds for a in self.actions if a.what == what]

    def sizes(self, what: str) -> list[int]:
        return [a.bytes for a in self.actions if a.what == what]


class Meter:
    """Bytes of every websocket frame the page received."""

    def __init__(self, page) -> None:
        self.received = 0
        page.on("websocket", lambda socket: socket.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        self.received += len(payload)


async def settled(page, timeout: float) -> None:
    """The app connected and its script run ended (``bench.browser.wait_until_idle``, for async pages)."""
    await page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    await page.wait_for_timeout(500)
    await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


async def ended(page, timeout: float) -> None:
    """The script run ended: for use once the page shows something only the run in question draws."""
    await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


async def shown_exceptions(page) -> int:
    return await page.locator("[data-testid='stException']").count()


class Student:
    """One browser context going through the lesson (see the module docstring)."""

    def __init__(self, session: Session, page, url: str, epochs: int, quick: bool, timeout: float) -> None:
        self.session = session
        self.page = page
        self.url = url
        self.epochs = epochs
        self.quick = quick
        self.timeout = timeout * 1000  # Playwright's milliseconds
        self.meter = Meter(page)

    async def timed(self, what: str, page_name: str, steps) -> float:
        received = self.meter.received
        started = time.perf_counter()
        await steps()
        seconds = time.perf_counter() - started
        self.session.actions.append(Action(what, page_name, seconds, self.meter.received - received))
        if await shown_exceptions(self.page):
            self.session.errors.append(f"an exception shown on {page_name} after {what}")
        return seconds

    async def lesson(self) -> None:
        page = self.page

        async def first_page() -> None:
            started = time.perf_counter()
            await page.goto(f"{self.url}/?classroom={self.session.index}", timeout=self.timeout)
            await page.locator(".js-plotly-plot").first.wait_for(timeout=self.timeout)
            self.session.first_chart = time.perf_counter() - started
            await ended(page, self.timeout)

        self.session.opened = time.time()
        await self.timed("first_page", FIRST_PAGE, first_page)
        if self.session.trainer:
            await self.switch("Train", TRAIN_TITLE)
            await self.train()
            await self.switch(FIRST_PAGE, FIRST_PAGE)
        await self.slide_and_play()
        for name in SWITCHES:
            await self.switch(name, name)

    async def switch(self, link: str, title: str) -> None:
        async def steps() -> None:
            await self.page.get_by_role("link", name=link, exact=True).click(timeout=self.timeout)
            await self.page.get_by_role("heading", name=title, exact=True).wait_for(timeout=self.timeout)
            await ended(self.page, self.timeout)

        await self.timed("page_switch", link, steps)

    async def train(self) -> None:
        page = self.page
        if self.quick:
            pills = page.get_by_role("toolbar", name="Losses")
            for name in [t.strip() for t in await pills.get_by_role("button").all_inner_texts()]:
                pill = pills.get_by_role("button", name=name, exact=True)
                if (await pill.get_attribute("aria-pressed") == "true") != (name == QUICK_LOSS):
                    await pill.click(timeout=self.timeout)
                    await settled(page, self.timeout)
        epochs = page.get_by_role("textbox", name="Epochs", exact=True)
        await epochs.fill(str(self.epochs), timeout=self.timeout)
        await epochs.press("Enter")
        await settled(page, self.timeout)

        async def steps() -> None:
            await page.get_by_role("button", name="Start training").click(timeout=self.timeout)
            done = page.get_by_text(re.compile(r"Done: \d+ of \d+ runs finished"))
            await done.first.wait_for(timeout=self.timeout * 4)  # a queue of trainings on a busy server
            self.session.trained = (await done.first.inner_text()).strip()
            await settled(page, self.timeout)

        await self.timed("train", "Train", steps)
        found = re.search(r"Done: (\d+) of (\d+) runs finished", self.session.trained)
        if not found or found[1] != found[2]:
            self.session.errors.append(f"the training ended: {self.session.trained!r}")

    async def slide_and_play(self) -> None:
        page = self.page
        slider = page.get_by_role("slider", name="Epoch")
        first_title = page.locator(".js-plotly-plot .gtitle").first
        if not await slider.count():  # an experiment with one stored epoch has no slider
            return
        last = await slider.get_attribute("max")
        for key, shows in (("Home", "before training"), ("End", f"epoch {last} ")):

            async def steps(key: str = key, shows: str = shows) -> None:
                await slider.focus(timeout=self.timeout)
                await page.keyboard.press(key)
                await first_title.filter(has_text=shows).wait_for(timeout=self.timeout)
                await ended(page, self.timeout)

            await self.timed("slider", FIRST_PAGE, steps)
        play = page.locator(".js-plotly-plot .updatemenu-button").filter(has_text="Play").first
        await play.click(timeout=self.timeout)
        await page.wait_for_timeout(PLAY_SECONDS * 1000)
        self.session.played = not await first_title.filter(has_text=f"epoch {last} ").count()  # it moved


async def run_class(
    url: str, sessions: list[Session], stagger: float, epochs: int, quick: bool, timeout: float, chromium_path: str
) -> None:
    """Every session in its own browser context of one headless Chromium, the n-th starting
    ``n * stagger / len(sessions)`` seconds after the first."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path, args=browser.CHROMIUM_ARGS)

        async def attend(session: Session, delay: float) -> None:
            await asyncio.sleep(delay)
            context = await chromium.new_context(viewport=VIEWPORT)
            # names the browser to the server's timing hook, also in sessions a reload or a native link opens
            await context.add_cookies([{"name": "classroom", "value": str(session.index), "url": url}])
            page = await context.new_page()
            student = Student(session, page, url, epochs, quick, timeout)
            try:
                await student.lesson()
            except Exception as err:  # a timeout or a missing element: this session's error, the class goes on
                session.errors.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            finally:
                session.received = student.meter.received
                await context.close()
                session.closed = time.time()

        try:
            gap = stagger / max(1, len(sessions))
            await asyncio.gather(*(attend(s, i * gap) for i, s in enumerate(sessions)))
        finally:
            await chromium.close()


async def warm_up(url: str, timeout: float, chromium_path: str) -> None:
    """One browser visits every page once, as the teacher would before the class."""
    session = Session(index=-1, trainer=False)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path, args=browser.CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(viewport=VIEWPORT)
            await context.add_cookies([{"name": "classroom", "value": "warmup", "url": url}])
            page = await context.new_page()
            student = Student(session, page, url, 1, True, timeout)
            await page.goto(f"{url}/?classroom=warmup", timeout=timeout * 1000)
            await settled(page, timeout * 1000)
            await student.switch("Train", TRAIN_TITLE)
            for name in SWITCHES:
                await student.switch(name, name)
        finally:
            await chromium.close()
    if session.errors:
        raise RuntimeError(f"the warm-up visit failed: {session.errors}")


# ----------------------------------------------------------------------------------------- the figures


def quantiles(values: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile (nan for none)."""
    if not values:
        return float("nan"), float("nan")
    return float(np.median(values)), float(np.percentile(values, 95))


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclasses.dataclass
class Request:
    """One thing a session asked of the server: its runs from the first starting to the first one that ends
    normally (the runs before it were stopped for a rerun)."""

    browser: str
    what: str  # first_page, page_switch, rerun, fragment
    page: str  # the page the request drew
    start: float
    seconds: float
    cpu: float
    bytes: int
    runs: int
    error: str | None


def requests(events: list[dict]) -> list[Request]:
    """Each session's script runs as requests: its first (``first_page``), those that drew another page than
    the request before (``page_switch``), those that drew the same one (``rerun``), and fragment runs."""
    by_session: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["kind"] == "run":
            by_session[event["session"]].append(event)
    found = []
    for runs in by_session.values():
        runs.sort(key=lambda run: run["start"])
        page = None
        pending: list[dict] = []
        for run in runs:
            if run["fragment"]:
                found.append(
                    Request(run["browser"], "fragment", run["drew"], run["start"], run["wall"], run["cpu"] or 0.0,
                            run["bytes"], 1, run["error"])
                )  # fmt: skip
                continue
            pending.append(run)
            if run["end"] == "SCRIPT_STOPPED_FOR_RERUN":
                continue
            first = pending[0]
            what = "first_page" if page is None else ("page_switch" if run["drew"] != page else "rerun")
            found.append(
                Request(
                    first["browser"],
                    what,
                    run["drew"],
                    first["start"],
                    run["start"] + run["wall"] - first["start"],
                    sum(r["cpu"] or 0.0 for r in pending),
                    sum(r["bytes"] for r in pending),
                    len(pending),
                    next((r["error"] for r in pending if r["error"]), None),
                )
            )
            page = run["drew"]
            pending = []
    return found


def log_problems(log: Path) -> list[str]:
    """Tracebacks and errors in the server's log: the first line of each."""
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    problems = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback") or " ERROR " in line or "Uncaught app execution" in line:
            if line.startswith("Traceback"):
                tail = next((n for n in lines[i + 1 :] if n and not n.startswith(" ")), "")
                problems.append(f"Traceback ... {tail}")
            else:
                problems.append(line)
    return problems


@dataclasses.dataclass
class Profile:
    """py-spy's samples of the server summed up, each as a share of the samples that were not waiting."""

    samples: int
    parts: dict[str, float]  # script runs, training, the event loop
    libraries: dict[str, float]  # the innermost frame's library, in script runs
    own: list[tuple[str, float]]  # the app's functions, inclusive
    leaves: list[tuple[str, float]]  # innermost frames


LIBRARIES = (  # a frame's file (as py-spy prints it) -> the part of the work it names
    (("plotly/", "_plotly_utils/", "narwhals/"), "plotly: building, validating and serializing figures"),
    (("streamlit/runtime/caching/",), "Streamlit's caches: hashing, copying, waiting for another session"),
    (("streamlit/",), "Streamlit: elements and messages"),
    (("google/protobuf/",), "protobuf"),
    (("torch/",), "torch"),
    (("numpy/", "scipy/", "sklearn/", "umap/", "numba/", "pandas/", "PIL/"), "numpy, pandas, scikit-learn"),
)


def library_of(frames: Sequence[str], app_files: tuple[str, ...]) -> str:
    """The part of the work of a stack: its innermost frame in a library or in the app (outer frames of the
    standard library, such as ``copy`` or ``json`` inside plotly, count for the library that called them)."""
    for frame in reversed(frames):
        where = frame[frame.rfind("(") + 1 :]
        for prefixes, name in LIBRARIES:
            if where.startswith(prefixes):
                return name
        if where.startswith(app_files):
            return "the app's own code"
    return "Python's standard library"


def profile_summary(raw: Path, top: int = 15) -> Profile:
    """From py-spy's collapsed stacks (``--format raw``), leaving out threads that wait (:data:`IDLE_FRAMES`)."""
    pages = tuple(page.name for page in (browser.ROOT / "pages").glob("*.py"))  # run as scripts: bare names
    app_files = ("pages/", "ui/", "lab/", "losses/", "models/", "app.py", *pages)
    parts: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or not count.isdigit() or frames[-1].startswith(IDLE_FRAMES):
            continue
        n = int(count)
        total += n
        if "_run_script" in stack:
            part = "script runs (session threads)"
            libraries[library_of(frames, app_files)] += n
        elif "lab/training/jobs.py" in stack or "lab/training/loop.py" in stack:
            part = "training (job threads)"
        elif "asyncio/" in stack or "tornado/" in stack:
            part = "server event loop (websockets, sending messages)"
        else:
            part = "other threads"
        parts[part] += n
        leaves[frames[-1]] += n
        for function in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:  # once per stack, whatever the line
            if function[function.rfind("(") + 1 :].startswith(app_files):
                inclusive[function] += n
    if not total:
        return Profile(0, {}, {}, [], [])
    return Profile(
        total,
        {part: n / total for part, n in parts.most_common()},
        {name: n / total for name, n in libraries.most_common()},
        [(f, n / total) for f, n in inclusive.most_common(top)],
        [(f, n / total) for f, n in leaves.most_common(top)],
    )


def describe(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return ""
    m, p = quantiles(values)
    return f"{m:.3g} / {p:.3g} {unit}"


def report_class(
    report: Report,
    sessions: list[Session],
    events: list[dict],
    sampler: Sampler,
    marks: dict[str, float],
    log: Path,
    runs_dir: Path,
    browser_nice: int,
) -> None:
    n = len(sessions)
    found = [r for r in requests(events) if r.browser not in ("", "warmup")]
    kinds = defaultdict(list)
    for request in found:
        kinds[request.what].append(request)

    # what the browsers saw
    for what, name in (("first_page", "first_page"), ("page_switch", "page_switch"), ("slider", "slider")):
        seconds = [s for session in sessions for s in session.seconds(what)]
        m, p = quantiles(seconds)
        report.figure(f"browser/{name}_median", m, "s", note=f"{len(seconds)} in {n} sessions")
        report.figure(f"browser/{name}_p95", p, "s")
        sizes = [b for session in sessions for b in session.sizes(what)]
        report.figure(f"bytes/{name}_median", quantiles(sizes)[0] / 1e6, "MB", note="websocket frames received")
    charts = [s.first_chart for s in sessions if s.first_chart is not None]
    m, p = quantiles(charts)
    report.figure("browser/first_chart_median", m, "s", note=f"{len(charts)} of {n} sessions")
    report.figure("browser/first_chart_p95", p, "s")
    trainings = [s for session in sessions for s in session.seconds("train")]
    if trainings:
        report.figure("browser/start_to_done_median", quantiles(trainings)[0], "s", note="Start to 'Done' on Train")

    # the server on its own
    for what in ("first_page", "page_switch", "rerun", "fragment"):
        chosen = kinds.get(what, [])
        m, p = quantiles([r.seconds for r in chosen])
        bound = TARGETS.get(what)
        report.figure(
            f"server/{what}_median",
            m,
            "s",
            target=f"< {bound:g} s" if bound else "",
            met=m < bound if bound and chosen else None,
            note=f"{len(chosen)} script runs"
            + (f", CPU median {quantiles([r.cpu for r in chosen])[0]:.3g} s" if chosen else ""),
        )
        report.figure(f"server/{what}_p95", p, "s")
        if chosen:
            report.figure(f"server/{what}_bytes_median", quantiles([r.bytes for r in chosen])[0] / 1e6, "MB")

    start, end = marks["class_start"], marks["class_end"]
    during = sampler.between(start, end)
    first, last = sampler.at(start), sampler.at(end)
    server_cpu = last["server_cpu"] - first["server_cpu"]
    wall = end - start
    report.figure(
        "server/cpu_seconds", server_cpu, "s", note=f"over {wall:.0f} s of class: {server_cpu / wall:.2f} cores"
    )
    report.figure(
        "load/chromium_cpu_seconds",
        last["chromium_cpu"] - first["chromium_cpu"],
        "s",
        note=f"same machine, at nice {browser_nice} ({sampler.lowered} threads that raised themselves put back)",
    )
    report.figure("load/playwright_cpu_seconds", last["driver_cpu"] - first["driver_cpu"], "s", note="its driver")
    report.figure(
        "load/machine_busy_cores",
        (last["machine_cpu"] - first["machine_cpu"]) / wall,
        "cores",
        note=f"of {os.cpu_count()}",
    )
    baseline = sampler.at(marks["baseline"])["rss"]
    report.figure("memory/bare_server", sampler.samples[0]["rss"], "MB", note="server started, no page opened")
    report.figure("memory/start", baseline, "MB", note="after the warm-up visit, before the class")
    report.figure("memory/peak", max(s["rss"] for s in during) if during else float("nan"), "MB")
    for mark in sorted((m for m in marks if m.startswith("after_")), key=lambda m: marks[m]):
        value = sampler.at(marks[mark])["rss"]
        growth = value / baseline - 1
        held = mark == f"after_{AFTER_SECONDS}s"  # the target's reading (quick mode reads earlier)
        report.figure(
            f"memory/{mark}",
            value,
            "MB",
            target="within 10% of start" if held else "",
            met=abs(growth) <= TARGETS["memory"] if held else None,
            note=f"{growth:+.0%} of start, {marks[mark] - marks['class_end']:.0f} s after the last browser closed",
        )

    # errors and jobs
    timed_out_or_shown = [s for s in sessions if s.errors]
    uncaught = [r for r in found if r.error]
    problems = log_problems(log)
    report.figure("errors/sessions", len(timed_out_or_shown), "sessions", target="0", met=not timed_out_or_shown)
    report.figure("errors/uncaught_in_script_runs", len(uncaught), "runs", target="0", met=not uncaught)
    report.figure("errors/server_log", len(problems), "lines", target="0", met=not problems)
    queue = jobs_table(events, runs_dir, start)
    lost = [row for row in queue if row["lost"]]
    trainers = sum(s.trainer for s in sessions)
    report.figure("jobs/started", len(queue), "jobs", note=f"{trainers} trainer sessions")
    report.figure("jobs/lost", len(lost), "jobs", target="0", met=not lost, note="queued, and not every run finished")
    report.figure("jobs/never_asked", max(0, trainers - len(queue)), "jobs",
                  note="trainer sessions whose browser timed out before Start")  # fmt: skip

    report.table(
        "Sessions (browser: what Chromium saw; server: its script runs; median / 95th percentile)",
        ["session", "role", "opened at", "first chart", "first page", "page switch", "slider", "server first page",
         "server page switch", "server reruns", "MB received", "errors"],
        [
            [
                s.index,
                "trainer" if s.trainer else "viewer",
                f"{s.opened - start:.0f} s",
                f"{s.first_chart:.3g} s" if s.first_chart is not None else "",
                describe(s.seconds("first_page")),
                describe(s.seconds("page_switch")),
                describe(s.seconds("slider")),
                describe([r.seconds for r in found if r.browser == str(s.index) and r.what == "first_page"]),
                describe([r.seconds for r in found if r.browser == str(s.index) and r.what == "page_switch"]),
                describe([r.seconds for r in found if r.browser == str(s.index) and r.what == "rerun"]),
                f"{s.received / 1e6:.1f}",
                "; ".join(s.errors),
            ]
            for s in sessions
        ],
    )  # fmt: skip
    report.table(
        "Server script runs by page (median / 95th percentile of wall; median CPU of the script thread)",
        ["kind", "page", "runs", "wall", "CPU", "MB sent"],
        [
            [what, page, len(chosen), describe([r.seconds for r in chosen]),
             f"{quantiles([r.cpu for r in chosen])[0]:.3g} s", f"{quantiles([r.bytes for r in chosen])[0] / 1e6:.3g}"]
            for (what, page), chosen in sorted(group_by(found).items())
        ],
    )  # fmt: skip
    if queue:
        report.table(
            "Training queue, in start order (seconds from the first browser opening)",
            ["job", "session", "experiment", "runs", "queued", "started", "ended", "waited", "trained", "run states"],
            [
                [i + 1, row["browser"], row["experiment"], row["runs"], f"{row['queued']:.0f}",
                 f"{row['started']:.0f}", f"{row['ended']:.0f}", f"{row['started'] - row['queued']:.0f} s",
                 f"{row['ended'] - row['started']:.0f} s", row["states"]]
                for i, row in enumerate(queue)
            ],
        )  # fmt: skip
    for s in timed_out_or_shown:
        report.note(f"session {s.index}: {'; '.join(s.errors)}")
    for r in uncaught:
        report.note(f"uncaught in session {r.browser} on {r.page}: {r.error}")
    for line in problems[:10]:
        report.note(f"server log: {line[:300]}")


def group_by(found: list[Request]) -> dict[tuple[str, str], list[Request]]:
    groups: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for request in found:
        groups[(request.what, request.page)].append(request)
    return groups


def jobs_table(events: list[dict], runs_dir: Path, start: float) -> list[dict]:
    """Each queued job in start order: from the server's events, and its runs' states from their folders."""
    from lab.runs.store import RunStore

    records = RunStore(runs_dir).list()
    rows = []
    for queued in (e for e in events if e["kind"] == "job" and e["what"] == "queued"):
        same = [e for e in events if e["kind"] == "job" and e["experiment"] == queued["experiment"]]
        started = next((e for e in same if e["what"] == "started"), None)
        ended = next((e for e in same if e["what"] == "ended"), None)
        on_disk = [r for r in records if r.config.experiment == queued["experiment"]]
        states = Counter(r.state for r in on_disk)
        finished = states.get("finished", 0) == queued["runs"] and len(on_disk) == queued["runs"]
        rows.append(
            {
                "browser": queued["browser"],
                "experiment": queued["experiment"],
                "runs": queued["runs"],
                "queued": queued["t"] - start,
                "started": (started["t"] - start) if started else float("nan"),
                "ended": (ended["t"] - start) if ended else float("nan"),
                "states": ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no run folders",
                "lost": not (ended and not ended["error"] and finished),
            }
        )
    rows.sort(key=lambda row: (np.isnan(row["started"]), row["started"]))
    return rows


def report_profile(report: Report, raw: Path) -> None:
    found = profile_summary(raw)
    if not found.samples:
        report.note(f"py-spy recorded no samples in {raw}")
        return
    title = f"Server profile (py-spy, {found.samples} samples of threads not waiting)"
    report.table(f"{title}: by part", ["part", "share"], [[k, f"{v:.0%}"] for k, v in found.parts.items()])
    report.table(
        "Script runs by the library their innermost frame is in (share of all samples)",
        ["library", "share"],
        [[k, f"{v:.0%}"] for k, v in found.libraries.items()],
    )
    report.table("The app's functions, inclusive", ["function", "share"], [[f, f"{v:.1%}"] for f, v in found.own])
    report.table("Innermost frames", ["frame", "share"], [[f, f"{v:.1%}"] for f, v in found.leaves])


# ----------------------------------------------------------------------------------------- the lesson


def main(argv: list[str] | None = None) -> Report:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--sessions", type=int, help="browser sessions (default 30; quick 3)")
    parse.add_argument("--stagger", type=float, help="seconds from the first session to the last (default 30; quick 3)")
    parse.add_argument("--trainers", type=int, help="sessions that start a training first (default 4; quick 1)")
    parse.add_argument("--epochs", type=int, help="epochs of each training (default 2; quick 1)")
    parse.add_argument("--timeout", type=float, default=900, help="seconds any one step of a session may take")
    parse.add_argument("--profile", type=Path, help="py-spy record the server during the class into this file")
    parse.add_argument(
        "--browser-nice",
        type=int,
        default=19,
        help="Chromium's niceness (default 19: the browsers get the CPU the server leaves, as if they had their "
        "own computers; 0: they compete with it)",
    )
    parse.add_argument("--keep", action="store_true", help="keep the work folder (server log, events, runs)")
    args = parse.parse_args(argv)
    quick = args.quick
    n = args.sessions if args.sessions is not None else (3 if quick else 30)
    stagger = args.stagger if args.stagger is not None else (3.0 if quick else 30.0)
    trainers = args.trainers if args.trainers is not None else (1 if quick else 4)
    epochs = args.epochs if args.epochs is not None else (1 if quick else 2)
    after = 5 if quick else AFTER_SECONDS
    if not 0 <= trainers <= n:
        parse.error(f"--trainers must be between 0 and --sessions ({n})")
    report = Report(
        "classroom",
        args,
        resolve(args.device),
        f"{n} browser sessions over {stagger:g} s, {trainers} training (digits, "
        f"{'1 loss' if quick else 'the default losses'}, {epochs} epochs); the example's Feature space first",
    )
    if not Path(browser.CHROMIUM).exists() and not shutil.which("chromium"):
        raise SystemExit("bench.classroom needs Debian's chromium")
    if args.profile is not None and not shutil.which("py-spy"):
        parse.error("--profile needs py-spy (pip install py-spy)")
    work = Path(tempfile.mkdtemp(prefix="losslens-classroom-"))
    events = work / "events.jsonl"
    chromium_path = niced_chromium(work, args.browser_nice)
    runs_dir = work / "runs"
    spread = set(np.linspace(0, n - 1, trainers).round().astype(int).tolist()) if trainers else set()
    sessions = [Session(index=i, trainer=i in spread) for i in range(n)]  # trainers spread through the class
    marks: dict[str, float] = {}
    try:
        with server(runs_dir, events) as (url, pid), Sampler(pid, args.browser_nice) as sampler:
            log = next(work.glob("streamlit-*.log"))
            asyncio.run(warm_up(url, args.timeout, chromium_path))
            time.sleep(5 if quick else 15)
            marks["baseline"] = sampler.sample()["t"]
            marks["class_start"] = time.time()
            with profiled(pid, args.profile):
                asyncio.run(run_class(url, sessions, stagger, epochs, quick, args.timeout, chromium_path))
            marks["class_end"] = time.time()
            time.sleep(after)
            marks[f"after_{after}s"] = sampler.sample()["t"]
            if not quick:
                time.sleep(SESSION_TTL + 30 - after)
                marks[f"after_{SESSION_TTL + 30}s"] = sampler.sample()["t"]
            report_class(report, sessions, read_events(events), sampler, marks, log, runs_dir, args.browser_nice)
        if args.profile is not None:
            report_profile(report, args.profile)
            report.note(f"py-spy's collapsed stacks: {args.profile}")
    finally:
        if args.keep:
            print(f"# work folder kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.write()
    return report


if __name__ == "__main__":
    main()
