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


@contextlib.contextmanager
def streamlit_server(runs_dir: Path, root: Path = ROOT, **env: str) -> Iterator[str]:
    """A real ``streamlit run app.py`` of the checkout at ``root`` (its own ``.streamlit`` settings) on a
    free loopback port; yields its base URL once its health check answers."""
    port = free_port()
    log = open(runs_dir.parent / f"streamlit-{port}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
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


def first_heading_seconds(root: str | Path = ROOT) -> dict[str, float] | None:
    """Seconds from a real ``streamlit run app.py`` at ``root`` accepting connections (its health check
    answers) to the first heading in headless Chromium (``first_heading``), and to the first script run's
    end (``first_page_settled``); None without Chromium."""
    if not Path(CHROMIUM).exists():
        return None
    with (
        tempfile.TemporaryDirectory(prefix="losslens-bench-") as runs,
        chromium() as browser,
        streamlit_server(Path(runs) / "runs", Path(root)) as url,
    ):
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("h1, h2, h3", timeout=300_000)
        heading = time.perf_counter() - started
        wait_until_idle(page, timeout=300_000)
        return {"first_heading": heading, "first_page_settled": time.perf_counter() - started}


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
    places = ("lab.analysis.projection", "lab.projection", "lab.analysis")
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
