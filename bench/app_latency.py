"""App latency: what a user waits for in the app, measured through the code the app runs.

    python -m bench.app_latency           # the default experiment on digits; UMAP of 10,000 points
    python -m bench.app_latency --quick   # 1 epoch, UMAP of 300 points (CI)
    python -m bench.app_latency --sections pages,first_heading   # some of the sections in SECTIONS

* ``train/start_to_done``: from 'Start' to all five default losses trained on digits with the
  default settings. 'Start' submits the Train form's configs (``ui.train_form.DEFAULT_LOSSES``, each
  loss's default hyperparameters, ``RunConfig`` defaults) to a :class:`lab.jobs.JobManager`, exactly
  as the Train page does; the clock stops when the job is done (runs written). The process is in the
  state a user's click meets: the app's ``JobManager`` has warmed up (it does on creation, at app
  start) and the example's pages have imported scikit-learn; the dataset cache is cleared, so reading
  the data counts. Target: under 20 s on 2 CPU cores. ``train/start_to_done_fresh_process`` is the
  same in a new Python process that presses Start at once (every import and the warm-up paid inside).
  ``train/start_to_done_in_browser`` is what a user on a laptop waits for: a real ``streamlit run
  app.py`` and headless Chromium on the same machine, the Train page's Start clicked with the
  defaults, until the page says the five runs are done (the live view's reruns and the browser's
  drawing share the cores with training). It needs Debian's ``chromium`` and is skipped without it.
* ``gradcam/grid_8x5``: GradCAM maps of 8 test images under each of the 5 models (the Grad-CAM page's
  defaults: method GradCAM, predicted class, faithfulness off), once the models are loaded, through
  ``lab.gradcam.compute_cams``. Target: under 2 s on CPU. ``gradcam/grid_8x5_faithfulness`` adds the
  ROAD scores (the page's optional toggle); ``gradcam/cached_rerun`` is the same grid again through
  ``ui.cams.cams`` (``st.cache_data``), as a page rerun gets it.
* ``analysis/first`` and ``analysis/cached_rerun``: the Angles page's per-run analysis (run arrays,
  angle statistics, summary numbers) for the five runs through ``ui.loaders``' ``st.cache_data``
  functions, called in bare mode (no server) twice; the second call is what a rerun pays. Target for
  the rerun: under 0.2 s. ``analysis/angles_page_rerun`` reruns the whole Angles page in Streamlit's
  ``AppTest`` (analysis from the cache plus drawing the figures).
* ``umap/...``: UMAP of 10,000 points (128-d penultimate activations of ``small`` on 28x28 test
  images, Fashion-MNIST when present): importing umap, the first projection in a process (numba
  compiles UMAP's kernels), a second one (compiled), and a cached rerun through ``st.cache_data``.
* ``pages/first/<page>`` and ``pages/warm/<page>``: every page of the default example (the app's own
  runs folder, seeded with the shipped examples) in ``AppTest``: the script run of a first visit, then of
  a second visit after all the others, everything the page caches cached. Target for the warm visits:
  under 0.5 s.
* ``gradcam/method_change/<method>``: the Grad-CAM page in ``AppTest`` with 8 images of the example's 5
  losses: the script run after choosing another method (maps not yet computed). Target: under 1 s.
* ``first_heading``: a real ``streamlit run app.py``; from its health check answering (the server accepts
  connections) to the first heading in headless Chromium, then to the first script run's end. Target:
  under 3 s. Needs Debian's ``chromium``.

The AppTest and browser sections run in full mode only (minutes): ``--quick`` keeps CI to seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import models
from bench.common import Report, fashion_or_synthetic, parse_sections, parser, resolve
from lab import datasets
from lab.config import RunConfig
from lab.data import load_dataset, normalize
from lab.experiment import make_experiment
from lab.jobs import JobManager
from lab.runstore import RunStore

OWNER = "benchowner0001"
ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def default_configs(experiment: str, epochs: int | None) -> list[RunConfig]:
    """What the Train form submits with its defaults: every default loss with its default hyperparameters."""
    from ui.train_form import DEFAULT_LOSSES

    template = RunConfig(experiment=experiment)
    return make_experiment(template.replace(epochs=epochs) if epochs else template, DEFAULT_LOSSES)


def train_default_experiment(
    store: RunStore, experiment: str, epochs: int | None, app_open: bool = True
) -> tuple[float, list]:
    """Seconds from submitting the default experiment to its job being done, and its records. With
    ``app_open``, first bring the process to where the app is when a user can click Start."""
    manager = JobManager(store, max_running=1)
    if app_open:
        load_dataset("digits")  # the example's pages did, importing scikit-learn
        manager.warmed.wait()
    datasets.load.cache_clear()
    started = time.perf_counter()
    job_id = manager.submit(default_configs(experiment, epochs), OWNER)
    job = manager.get(job_id, OWNER)
    job.join()
    seconds = time.perf_counter() - started
    if job.error:
        raise RuntimeError(job.error)
    return seconds, job.records


def fresh_process_seconds(epochs: int | None) -> float:
    """:func:`train_default_experiment` in a new Python process that presses Start at once."""
    code = (
        "import tempfile\n"
        "from bench.app_latency import train_default_experiment\n"
        "from lab.runstore import RunStore\n"
        "with tempfile.TemporaryDirectory() as root:\n"
        f"    print(train_default_experiment(RunStore(root), 'fresh', {epochs!r}, app_open=False)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(done.stdout.strip().splitlines()[-1])


def in_browser_seconds(epochs: int | None) -> float | None:
    """Seconds from clicking Start on the Train page (defaults, or ``epochs``) to the page saying the
    default losses' runs are done, with the app served by ``streamlit run`` and driven by headless Chromium on
    this machine; None when Chromium is not installed."""
    from bench.browser import CHROMIUM, chromium, streamlit_server, wait_until_idle
    from ui.train_form import DEFAULT_LOSSES

    if not Path(CHROMIUM).exists():
        return None
    with tempfile.TemporaryDirectory() as root, streamlit_server(Path(root) / "runs") as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/train")
        wait_until_idle(page)
        if epochs is not None:
            field = page.get_by_role("spinbutton", name="Epochs")
            field.fill(str(epochs))
            field.press("Enter")
            wait_until_idle(page)
        started = time.perf_counter()
        page.get_by_role("button", name="Start training").click()
        done = f"Done: {len(DEFAULT_LOSSES)} of {len(DEFAULT_LOSSES)} runs finished"
        page.get_by_text(done).wait_for(timeout=600_000)
        return time.perf_counter() - started


def gradcam_grid(store: RunStore, records: list, report: Report, quick: bool) -> None:
    from lab.gradcam import compute_cams, resolve_targets
    from lab.restore import load_trained
    from ui import cams

    digits = load_dataset("digits")
    loaded = [load_trained(store, record, digits) for record in records]
    predictions = []
    for model, head in loaded:
        with torch.inference_mode():
            predictions.append(head.logits(model(digits.test.normalized)).argmax(1).numpy())
    indices = cams.pick_images(digits.test.labels.numpy(), predictions, "random", 8, seed=0)
    pixels = digits.test.images[indices]
    images = normalize(pixels, digits.train.mean, digits.train.std)

    def grid(images: torch.Tensor, loaded: list, faithfulness: bool) -> float:
        started = time.perf_counter()
        for model, head in loaded:
            with torch.inference_mode():
                logits = head.logits(model(images))
            targets = resolve_targets(logits, None, "predicted", None)
            compute_cams(model, head, images, "GradCAM", targets, faithfulness=faithfulness)
        return time.perf_counter() - started

    grid(images, loaded, False)  # the first call sets the library up; the page's models are already loaded
    seconds = min(grid(images, loaded, False) for _ in range(1 if quick else 3))
    report.figure(
        f"gradcam/grid_{len(images)}x{len(loaded)}", seconds, "s", target="< 2 s", met=seconds < 2.0, note="GradCAM"
    )
    few = (images[:1], loaded[:2]) if quick else (images, loaded)  # ROAD is slow: CI keeps it tiny
    report.figure(
        f"gradcam/grid_{len(few[0])}x{len(few[1])}_faithfulness",
        grid(*few, True),
        "s",
        note="GradCAM + ROAD of the maps and of random maps",
    )
    labels = digits.test.labels[indices].numpy()
    through_cache = lambda: [  # noqa: E731
        cams.cams(record, pixels.numpy(), labels, "GradCAM", "predicted", None, False) for record in records
    ]
    through_cache()
    started = time.perf_counter()
    through_cache()
    report.figure("gradcam/cached_rerun", time.perf_counter() - started, "s", note="ui.cams.cams, st.cache_data")


def analysis_latency(records: list, report: Report) -> None:
    import streamlit as st

    from ui import loaders

    st.cache_data.clear()

    def analyze() -> float:
        started = time.perf_counter()
        for record in records:
            arrays = loaders.run_arrays(record)
            loaders.angle_stats(record, arrays)
            loaders.summary(record, 10.0)
        return time.perf_counter() - started

    report.figure("analysis/first", analyze(), "s", note=f"{len(records)} runs, ui.loaders in bare mode")
    rerun = analyze()
    report.figure("analysis/cached_rerun", rerun, "s", target="< 0.2 s", met=rerun < 0.2, note="st.cache_data hit")


def angles_page_rerun(root: Path, experiment: str, report: Report) -> None:
    """The Angles page in AppTest: first draw, then a rerun (what a slider move or page revisit costs)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    previous = os.environ.get("LOSSLENS_RUNS_DIR")
    os.environ["LOSSLENS_RUNS_DIR"] = str(root)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        app = AppTest.from_file(APP, default_timeout=300)
        app.query_params["u"] = OWNER
        app.query_params["exp"] = experiment
        app.run()
        app.switch_page("pages/angles.py")
        started = time.perf_counter()
        app.run()
        first = time.perf_counter() - started
        if app.exception:
            raise RuntimeError(f"the Angles page failed: {[e.value for e in app.exception]}")
        started = time.perf_counter()
        app.run()
        rerun = time.perf_counter() - started
    finally:
        if previous is None:
            os.environ.pop("LOSSLENS_RUNS_DIR", None)
        else:
            os.environ["LOSSLENS_RUNS_DIR"] = previous
        st.cache_resource.clear()
        st.cache_data.clear()
    report.figure("analysis/angles_page_first", first, "s", note="AppTest, includes drawing")
    report.figure("analysis/angles_page_rerun", rerun, "s", note="AppTest rerun, includes drawing")


def umap_latency(report: Report, quick: bool) -> None:
    import streamlit as st

    from lab import analysis

    n = 300 if quick else 10_000
    dataset, source = fashion_or_synthetic(quick, n_train=10, n_test=n)
    torch.manual_seed(0)
    model = models.build("small", 1, 28, 2).eval()
    with torch.inference_mode():
        points = model.trunk(dataset.test.normalized[:n]).numpy()
    already = "umap" in __import__("sys").modules
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # noqa: F401
    report.figure("umap/import", time.perf_counter() - started, "s", note="already imported" if already else "")
    started = time.perf_counter()
    analysis.umap(points)
    report.figure(f"umap/first_{n}", time.perf_counter() - started, "s", note=f"{source} penultimate, JIT included")
    started = time.perf_counter()
    analysis.umap(points)
    report.figure(f"umap/second_{n}", time.perf_counter() - started, "s", note="compiled, not cached")
    cached = st.cache_data(show_spinner=False)(analysis.umap)
    cached(points)
    started = time.perf_counter()
    cached(points)
    report.figure(f"umap/cached_rerun_{n}", time.perf_counter() - started, "s", note="st.cache_data hit")


PAGES = {  # the app's pages by the name their figures use
    "train": "pages/train.py",
    "feature_space": "pages/feature_space.py",
    "angles": "pages/angles.py",
    "gradcam": "pages/gradcam.py",
    "compare": "pages/compare.py",
    "learn": "pages/learn.py",
}
SECTIONS = ("train", "gradcam", "analysis", "umap", "pages", "gradcam_method", "first_heading")


def examples_app(runs_dir: Path):
    """The app in ``AppTest`` over a fresh runs folder (which the app seeds with the shipped examples),
    opened on the default example; every Streamlit cache cleared first."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["LOSSLENS_RUNS_DIR"] = str(runs_dir)
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(APP, default_timeout=600)
    app.query_params["u"] = OWNER
    app.run()
    if app.exception:
        raise RuntimeError(f"the app failed: {[e.value for e in app.exception]}")
    return app


def timed_run(app, what: str) -> float:
    """Seconds of one script run of ``app`` (after a widget change or a page switch)."""
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{what} failed: {[e.value for e in app.exception]}")
    return seconds


def page_switches(report: Report) -> None:
    """Every page of the default example in ``AppTest``: a first visit, then a second (warm: everything the
    page caches is cached) after visiting every other page. Target for the warm visits: under 0.5 s."""
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
        app = examples_app(Path(root) / "runs")
        for visit in ("first", "warm"):
            for name, path in PAGES.items():
                app.switch_page(path)
                seconds = timed_run(app, f"the {name} page")
                warm = visit == "warm"
                report.figure(
                    f"pages/{visit}/{name}",
                    seconds,
                    "s",
                    target="< 0.5 s" if warm else "",
                    met=seconds < 0.5 if warm else None,
                    note="AppTest script run, the default example",
                )


def gradcam_method_change(report: Report) -> None:
    """The Grad-CAM page with 8 images of the default example's 5 losses: changing the method (the maps of
    a method not yet computed), and changing back (cached). Target: under 1 s."""
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
        app = examples_app(Path(root) / "runs")
        app.switch_page(PAGES["gradcam"])
        timed_run(app, "the Grad-CAM page")
        app.slider(key="cam_count").set_value(8)
        timed_run(app, "8 images")
        for method in ("HiResCAM", "GradCAM++"):
            app.selectbox(key="cam_method").set_value(method)
            seconds = timed_run(app, f"method {method}")
            report.figure(
                f"gradcam/method_change/{method}",
                seconds,
                "s",
                target="< 1 s",
                met=seconds < 1.0,
                note="AppTest script run, 8 images x 5 losses, maps not cached",
            )
        app.selectbox(key="cam_method").set_value("HiResCAM")
        report.figure("gradcam/method_change/back_cached", timed_run(app, "back"), "s", note="maps cached")


def first_heading_seconds() -> tuple[float, float] | None:
    """Seconds from a real ``streamlit run app.py`` accepting connections (its health check answers) to
    the first heading in headless Chromium, and to the first script run's end; None without Chromium."""
    from bench.browser import CHROMIUM, chromium, streamlit_server, wait_until_idle

    if not Path(CHROMIUM).exists():
        return None
    with tempfile.TemporaryDirectory() as root, chromium() as browser, streamlit_server(Path(root) / "runs") as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("h1, h2, h3", timeout=300_000)
        heading = time.perf_counter() - started
        wait_until_idle(page, timeout=300_000)
        return heading, time.perf_counter() - started


def main(argv: list[str] | None = None) -> Report:
    args, sections = parse_sections(parser(__doc__.splitlines()[0]), argv, SECTIONS)
    device = resolve(args.device)
    epochs = 1 if args.quick else None
    report = Report(
        "app_latency",
        args,
        device,
        (
            f"digits, default settings ({RunConfig().epochs} epochs, batch {RunConfig().batch_size})"
            if not args.quick
            else "digits, 1 epoch"
        )
        + f"; sections {', '.join(sections)}",
    )
    previous_runs_dir = os.environ.get("LOSSLENS_RUNS_DIR")
    try:
        if {"train", "gradcam", "analysis"} & set(sections):
            trained_sections(report, args.quick, epochs, sections)
        if "umap" in sections:
            umap_latency(report, args.quick)
        if "pages" in sections and not args.quick:  # AppTest over every page: minutes, not CI's seconds
            page_switches(report)
        if "gradcam_method" in sections and not args.quick:
            gradcam_method_change(report)
        if "first_heading" in sections and not args.quick:
            seconds = first_heading_seconds()
            if seconds is None:
                report.note("first_heading: skipped (Debian's chromium is not installed)")
            else:
                report.figure(
                    "first_heading",
                    seconds[0],
                    "s",
                    target="< 3 s",
                    met=seconds[0] < 3.0,
                    note="from the server accepting connections, headless Chromium",
                )
                report.figure("first_page_settled", seconds[1], "s", note="the first script run done")
    finally:
        if previous_runs_dir is None:
            os.environ.pop("LOSSLENS_RUNS_DIR", None)
        else:
            os.environ["LOSSLENS_RUNS_DIR"] = previous_runs_dir
    report.write()
    return report


def trained_sections(report: Report, quick: bool, epochs: int | None, sections: list[str]) -> None:
    """Start-to-done, then the Grad-CAM grid and the analysis of the five runs it trained."""
    root = Path(tempfile.mkdtemp(prefix="losslens-bench-"))
    store = RunStore(root)
    experiment = "bench-app-latency"
    seconds, records = train_default_experiment(store, experiment, epochs)
    if "train" in sections:

        def start_to_done(name: str, value: float, note: str) -> None:
            target = not quick  # the 20 s target is for the default settings
            report.figure(
                name, value, "s", target="< 20 s" if target else "", met=value < 20.0 if target else None, note=note
            )

        start_to_done("train/start_to_done", seconds, f"{len(records)} losses")
        fresh = fresh_process_seconds(epochs)
        report.figure("train/start_to_done_fresh_process", fresh, "s", note="imports and warm-up included")
        in_browser = in_browser_seconds(epochs)
        if in_browser is None:
            report.note("train/start_to_done_in_browser: skipped (Debian's chromium is not installed)")
        else:
            start_to_done(
                "train/start_to_done_in_browser", in_browser, "streamlit run app.py, headless Chromium, one machine"
            )
        for record in records:
            report.figure(
                f"train/test_acc/{record.config.loss}", float(record.status.get("test_acc", float("nan"))), ""
            )
    finished = [r for r in records if r.state == "finished"]
    if len(finished) != len(records):
        report.note(f"not every run finished: {[(r.config.loss, r.state) for r in records]}")
    if "gradcam" in sections:
        gradcam_grid(store, finished, report, quick)
    if "analysis" in sections:
        analysis_latency(finished, report)
        angles_page_rerun(root, experiment, report)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
