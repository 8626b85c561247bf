"""Drive and measure the real app: ``streamlit run app.py`` with Debian's Chromium, and the app's pages in
Streamlit's ``AppTest``, of this checkout or of any other one (``root``). Shared by the browser benchmarks
here, ``bench.app_latency`` and the real-browser tests.

Only the standard library is imported at the top, and Streamlit, Playwright and numpy inside the functions;
nothing from ``lab/`` or ``ui/``. So :func:`in_checkout` can load this file into a fresh Python process whose
working folder and first import path are another checkout (an older revision in a ``git worktree``): the app
code measured there (``app.py``, ``pages/``, ``ui/``, ``lab/``) is that checkout's own, measured by the same
functions as this checkout's.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OWNER = "benchowner0001"  # ``?u=``, how the app told browsers apart before its cookie (harmless after)
PAGES = {  # the app's pages by the name their figures use
    "train": "pages/train.py",
    "feature_space": "pages/features.py",
    "angles": "pages/angles.py",
    "gradcam": "pages/gradcam.py",
    "compare": "pages/compare.py",
    "learn": "pages/learn.py",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER_PROBE = """\
import cProfile, json, os, sys, threading, time
from streamlit.runtime.scriptrunner import script_runner
from streamlit.runtime.scriptrunner_utils import script_run_context

out = open(os.environ["LOSSLENS_BENCH_PROBE"], "a", buffering=1)
root = os.getcwd() + os.sep
local = threading.local()
enqueue, execute = script_run_context.ScriptRunContext.enqueue, script_runner.exec_func_with_error_handling


def where():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(root) and "site-packages" not in name:
            return f"{name[len(root):]}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def probed_enqueue(self, msg):
    started = time.perf_counter()
    enqueue(self, msg)
    kind = msg.WhichOneof("type")
    if kind == "delta":
        kind = msg.delta.WhichOneof("type")
        if kind == "new_element":
            kind = msg.delta.new_element.WhichOneof("type")
    reference = msg.metadata.cacheable and msg.hash in self.cached_message_hashes
    out.write(json.dumps({
        "t": time.time(), "kind": kind, "bytes": msg.ByteSize(), "sent_as_reference": bool(reference),
        "python_s": started - getattr(local, "last", started), "enqueue_s": time.perf_counter() - started,
        "where": where(),
    }) + "\\n")
    local.last = time.perf_counter()


def probed_execute(function, ctx):
    local.last = started = time.perf_counter()
    profile = cProfile.Profile() if os.environ.get("LOSSLENS_BENCH_CPROFILE") else None
    if profile:
        profile.enable()
    try:
        return execute(function, ctx)
    finally:
        if profile:
            profile.disable()
            profile.dump_stats(os.path.join(os.environ["LOSSLENS_BENCH_CPROFILE"], f"run-{time.time():.3f}.pstats"))
        out.write(json.dumps({"t": time.time(), "kind": "script_run", "seconds": time.perf_counter() - started,
                              "page": ctx.page_script_hash}) + "\\n")


script_run_context.ScriptRunContext.enqueue = probed_enqueue
script_runner.exec_func_with_error_handling = probed_execute
from streamlit.web.cli import main
sys.argv = ["streamlit", *sys.argv[1:]]
main(prog_name="streamlit")
"""


@contextlib.contextmanager
def streamlit_server(runs_dir: Path, root: Path = ROOT, probe: Path | None = None, **env: str) -> Iterator[str]:
    """A real ``streamlit run app.py`` of the checkout at ``root`` (its own ``.streamlit`` settings) on a
    free loopback port; yields its base URL once its health check answers. With ``probe``, the server
    appends a JSON line to that file for every message a script run sends (its element, size, whether the
    browser had it cached, the Python seconds before it, where in the app) and one at each run's end
    (:data:`SERVER_PROBE`), and with ``$LOSSLENS_BENCH_CPROFILE`` (a folder) dumps each run's cProfile."""
    port = free_port()
    runs_dir.parent.mkdir(parents=True, exist_ok=True)
    log = open(runs_dir.parent / f"streamlit-{port}.log", "w")  # noqa: SIM115 (closed below)
    if probe is not None:
        env = {**env, "LOSSLENS_BENCH_PROBE": str(probe)}
    process = subprocess.Popen(
        [
            sys.executable,
            *(["-c", SERVER_PROBE] if probe is not None else ["-m", "streamlit"]),
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=root,
        env={**os.environ, "LOSSLENS_RUNS_DIR": str(runs_dir), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_until_idle(page, timeout: float = 120_000) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_timeout(500)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


VIEWPORT = {"width": 1400, "height": 1000}
SETTLE_SCRIPT = Path(__file__).with_name("settle.js")
NAVIGATION = "[data-testid='stTopNavLink'], [data-testid='stSidebarNavLink']"
PAGE_TITLES = {  # the navigation's name of each page
    "train": "Train",
    "feature_space": "Feature space",
    "angles": "Angles",
    "gradcam": "Grad-CAM",
    "compare": "Compare",
    "learn": "Learn",
}
DIAGNOSTICS = {  # what each step of the journey also reports: its last name part, unit and meaning
    "first_chart": ("s", "to the first chart drawn"),
    "received_kB": ("kB", "websocket bytes received"),
    "script_runs": ("", "script runs"),
    "charts": ("", "charts on the page"),
    "charts_drawn": ("", "chart draws (plotly_afterplot)"),
    "webgl_contexts": ("", "WebGL contexts on the page"),
    "plotly_frames": ("", "animation frames held by its charts"),
}
SWITCH_FROM, SWITCH_TO = "example-fashion-3d", "example-digits-2d"  # the examples a new user switches between


class Tab:
    """A new browser (its own context: nothing cached, a new Streamlit session) on one tab, with
    ``settle.js`` in every page it opens, counting the bytes its websocket receives. ``around``, when set,
    is a context manager factory ``around(tab, name)`` entered around each measured step; the dictionary it
    yields is merged into the step's result after the page has settled (the profile adds its readings)."""

    def __init__(self, browser, around=None) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.add_init_script(path=str(SETTLE_SCRIPT))
        self.page = self.context.new_page()
        self.received: list[int] = []
        self.page.on("websocket", lambda socket: socket.on("framereceived", self._received))
        self.around = around

    def _received(self, payload: bytes | str) -> None:
        self.received.append(len(payload))

    def measure(self, name: str, act, feedback: str | None = None, navigation: bool = False) -> dict:
        """Run ``act`` (a click, or with ``navigation`` the page load) and time it in the page: seconds from
        the input (or the navigation's start) to the page settled (``settle.js``: every script run over, nothing
        stale, heading, charts and images drawn, the frame painted), to the first heading, the first chart
        drawn and ``feedback`` appearing in the sidebar; the kilobytes the websocket received until then, the
        script runs and charts drawn, the WebGL contexts on the page and the animation frames its charts hold."""
        if not navigation:
            self.page.evaluate("feedback => window.__losslens.watch(true, feedback)", feedback)
        first = len(self.received)
        with self.around(self, name) if self.around else contextlib.nullcontext({}) as extra:
            act()
            self.page.wait_for_function("() => window.__losslens.watching.done", timeout=300_000, polling=100)
        watch = self.page.evaluate("() => window.__losslens.watching")
        since = lambda key: None if watch[key] is None else (watch[key] - watch["start"]) / 1000  # noqa: E731
        return {
            "settled": since("settled"),
            "heading": since("heading"),
            "first_chart": since("firstChart"),
            "feedback": since("feedback"),
            "greyed": since("greyed"),
            "mixed": watch["mixedMs"] / 1000,
            "received_kB": sum(self.received[first:]) / 1000,
            "script_runs": watch["runs"],
            "charts": watch["charts"],
            "charts_drawn": watch["plotsDrawn"],
            "webgl_contexts": watch["liveWebglCanvases"],
            "plotly_frames": sum(watch["plotlyFrames"]),
            **extra,
        }

    def open(self, name: str, url: str) -> dict:
        return self.measure(name, lambda: self.page.goto(url), navigation=True)

    def visit(self, name: str, page: str) -> dict | None:
        """Click ``page``'s link in the navigation; None where this checkout has no such page."""
        link = self.page.locator(NAVIGATION).filter(has_text=PAGE_TITLES[page]).first
        if link.count() == 0:
            return None
        return self.measure(name, link.click)

    def choose_experiment(self, name: str, experiment: str, feedback: str) -> dict | None:
        """Choose ``experiment`` in the sidebar's Experiment box (the option naming its dataset); None where
        it is not offered. Timed from the click on the option."""
        self.page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
        options = self.page.get_by_role("option")
        options.first.wait_for(timeout=30_000)
        dataset = experiment.removeprefix("example-").split("-")[0]
        option = options.filter(has_text=dataset).first
        if option.count() == 0:
            self.page.keyboard.press("Escape")
            return None
        return self.measure(name, option.click, feedback=feedback)


def browser_journey(
    root: str | Path = ROOT, quick: bool = False, around=None, probe: Path | None = None, steps: dict | None = None
) -> dict[str, float]:
    """What a user of the app at ``root`` waits for in headless Chromium, in seconds from the input, each
    server a fresh ``streamlit run app.py`` with its own runs folder (seeded with the examples) and an empty
    projection cache, as on a new machine:

    * ``first_heading``, ``first_page_settled``: a new browser opens the app (the Fashion-MNIST 3-D example's
      Feature space) on a server that has just started accepting connections;
    * ``<page>/first``: a new browser on a second fresh server opens Train, then clicks each page in turn
      (the server has not drawn it yet); ``<page>/warm``: each page again, all of them cached;
    * ``switch_example``: on the warm Feature space, choosing the digits example in the sidebar, to the page
      settled; ``switch_example/feedback``: to the first sign of it (the sidebar's description names
      digits); ``/greyed``: to the old run's elements fading; ``/mixed``: how long charts of the two examples
      share the page; then ``switch_back`` to the Fashion-MNIST example (cached).

    Each step also reports ``<step>/<what>`` for what :data:`DIAGNOSTICS` names. With ``quick``, one
    server: the first page, Train, Feature space warm and the switch. ``steps`` (a dictionary), when given,
    receives every step's whole reading (with whatever ``around`` adds); ``probe`` is passed to
    :func:`streamlit_server`. Empty without Chromium."""
    if not Path(CHROMIUM).exists():
        return {}
    figures: dict[str, float] = {}
    steps = {} if steps is None else steps

    def record(name: str, step: dict | None, times: tuple[str, ...] = ()) -> None:
        if step is not None:
            steps[name] = step
            figures[name] = step["settled"]
            figures.update({f"{name}/{key}": step[key] for key in (*times, *DIAGNOSTICS) if step[key] is not None})

    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as folder, chromium() as browser:
        env = {"LOSSLENS_CACHE_DIR": str(Path(folder) / "cache")}
        with streamlit_server(Path(folder) / "first" / "runs", Path(root), probe, **env) as url:
            tab = Tab(browser, around)
            first = tab.open("first_page_settled", url)
            figures["first_heading"] = first["heading"]
            record("first_page_settled", first)
            if quick:
                record("train/first", tab.visit("train/first", "train"))
                record("feature_space/warm", tab.visit("feature_space/warm", "feature_space"))
                _switch(tab, record)
                return figures
        with streamlit_server(Path(folder) / "pages" / "runs", Path(root), probe, **env) as url:
            tab = Tab(browser, around)
            tab.open("train/opened", f"{url}/train")
            for page in ("feature_space", "angles", "gradcam", "compare", "learn"):
                record(f"{page}/first", tab.visit(f"{page}/first", page))
            for page in ("train", "angles", "gradcam", "compare", "learn", "feature_space"):
                record(f"{page}/warm", tab.visit(f"{page}/warm", page))
            _switch(tab, record)
    return figures


def _switch(tab: Tab, record) -> None:
    """From the Fashion-MNIST example to the digits one in the sidebar, and back."""
    times = ("feedback", "greyed", "mixed")
    record("switch_example", tab.choose_experiment("switch_example", SWITCH_TO, "digits · model"), times)
    record("switch_back", tab.choose_experiment("switch_back", SWITCH_FROM, "fashion-mnist · model"), times)


def app_test(root: str | Path, runs_dir: str | Path, **query: str):
    """The app at ``root`` in ``AppTest`` over ``runs_dir`` (a new folder is seeded with the shipped
    examples), every Streamlit cache cleared, run once with ``query`` in its URL; raises if it fails."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["LOSSLENS_RUNS_DIR"] = str(runs_dir)
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(str(Path(root) / "app.py"), default_timeout=600)
    app.query_params["u"] = OWNER
    for key, value in query.items():
        app.query_params[key] = value
    timed_run(app, "the app")
    return app


def timed_run(app, what: str) -> float:
    """Seconds of one script run of ``app`` (after a widget change or a page switch)."""
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{what} failed: {[e.value for e in app.exception]}")
    return seconds


def page_seconds(root: str | Path = ROOT) -> dict[str, float]:
    """Every page of the default example of the app at ``root`` in ``AppTest``: the script run of a first
    visit (``pages/first/<page>``), then of a second one after visiting every other page
    (``pages/warm/<page>``: everything the page caches is cached)."""
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as runs:
        app = app_test(root, Path(runs) / "runs")
        for visit in ("first", "warm"):
            for name, path in PAGES.items():
                app.switch_page(path)
                seconds[f"pages/{visit}/{name}"] = timed_run(app, f"the {name} page")
    return seconds


def gradcam_method_seconds(root: str | Path = ROOT) -> dict[str, float]:
    """The Grad-CAM page of the app at ``root`` with 8 images of its default example: the script run after
    choosing another method (its maps not yet computed), and after changing back (cached)."""
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as runs:
        app = app_test(root, Path(runs) / "runs")
        app.switch_page(PAGES["gradcam"])
        timed_run(app, "the Grad-CAM page")
        app.slider(key="cam_count").set_value(8)
        timed_run(app, "8 images")
        for method in ("HiResCAM", "GradCAM++"):
            app.selectbox(key="cam_method").set_value(method)
            seconds[f"gradcam/method_change/{method}"] = timed_run(app, f"method {method}")
        app.selectbox(key="cam_method").set_value("HiResCAM")
        seconds["gradcam/method_change/back_cached"] = timed_run(app, "back")
    return seconds


def umap_seconds(root: str | Path, points: str) -> dict[str, float]:
    """UMAP of the points saved in the ``.npy`` file ``points`` by ``lab.analysis.projection.umap`` of the checkout at
    ``root`` (first on this process's import path: see :func:`in_checkout`): importing umap, the first
    projection (numba compiles UMAP's kernels), the two together, and a second projection. (The app keeps
    every projection it makes: a rerun's cost is a dictionary lookup, not measured here.)"""
    import warnings

    import numpy as np

    # the measured code, not a helper, wherever the checkout being measured keeps it
    places = ("lab.analysis.projection", "lab.analysis.projection", "lab.analysis")
    measured = importlib.import_module(
        next(name for name in places if (Path(root) / (name.replace(".", "/") + ".py")).exists())
    )

    if not Path(measured.__file__).resolve().is_relative_to(Path(root).resolve()):
        raise RuntimeError(f"{measured.__name__} came from {measured.__file__}, not from {root}")
    x = np.load(points)
    n = len(x)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # noqa: F401
    imported = time.perf_counter() - started
    started = time.perf_counter()
    measured.umap(x)
    first = time.perf_counter() - started
    started = time.perf_counter()
    measured.umap(x)
    return {
        "umap/import": imported,
        f"umap/first_{n}": first,
        f"umap/import_and_first_{n}": imported + first,
        f"umap/second_{n}": time.perf_counter() - started,
    }


CHILD = """\
import importlib.util, json, sys
root, here, function, arguments, out = sys.argv[1:]
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("losslens_bench_measure", here)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
result = getattr(module, function)(root, *json.loads(arguments))
imported = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("lab", "ui")}
stray = {name: path for name, path in imported.items() if path and not path.startswith(root + "/")}
if stray:
    raise SystemExit(f"imported from outside {root}: {stray}")
with open(out, "w") as handle:
    json.dump(result, handle)
"""


def in_checkout(root: str | Path, function: str, *arguments, timeout: float = 1800):
    """``function(root, *arguments)`` of this module (its name; JSON arguments and result) in a fresh
    Python process whose working folder and first import path are the checkout at ``root``, with this file
    loaded by its path: every ``lab``/``ui``/``app.py`` it imports is that checkout's (checked: it fails if
    ``lab`` or ``ui`` came from elsewhere). The result comes back in a file, so the app may print anything."""
    root = str(Path(root).resolve())
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as folder:
        out = Path(folder) / "result.json"
        child = [sys.executable, "-c", CHILD, root, str(Path(__file__).resolve()), function, json.dumps(arguments)]
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        done = subprocess.run([*child, str(out)], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"{function} at {root} failed (exit {done.returncode}): {done.stderr[-3000:]}")
        return json.loads(out.read_text())
