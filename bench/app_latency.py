"""App latency: what a user waits for in the app, measured through the code the app runs.

    python -m bench.app_latency           # the default experiment on digits; UMAP of 10,000 points
    python -m bench.app_latency --quick   # 1 epoch, UMAP of 300 points (CI)
    python -m bench.app_latency --sections pages,browser   # some of the sections in SECTIONS
    python -m bench.app_latency --sections browser --checkout HEAD~1   # before and after, alternating

* ``train/start_to_done``: from 'Start' to all five default losses trained on digits with the
  default settings. 'Start' submits the Train form's configs (``lab.settings.form.DEFAULT_LOSSES``, each
  loss's default hyperparameters, ``RunConfig`` defaults) to a :class:`lab.training.jobs.JobManager`, exactly
  as the Train page does; the clock stops when the job is done (runs written). The process is in the
  state a user's click meets: the app's ``JobManager`` has warmed up (it does on creation, at app
  start) and the example's pages have imported scikit-learn; the dataset cache is cleared, so reading
  the data counts. Target: under 20 s on 2 CPU cores. ``train/start_to_done_fresh_process`` is the
  same in a new Python process that presses Start at once (every import and the warm-up paid inside).
  ``train/start_to_done_in_browser`` is what a user on a laptop waits for: a real ``streamlit run
  app.py`` and headless Chromium on the same machine, the Train page's Start clicked with the
  defaults, until the page says the five runs are done (the live view's reruns and the browser's
  drawing share the cores with training). It needs Debian's ``chromium`` and is skipped without it.
* ``gradcam/grid_8x5``: GradCAM maps of 8 test images under each of the 5 models (the Grad-CAM page's defaults:
  method GradCAM, predicted class), once the models are loaded, through ``lab.interpret.gradcam.compute_cams``.
  Target: under 2 s on CPU. ``gradcam/cached_rerun`` is the same grid again through ``ui.cams.cams``
  (``st.cache_data``), as a page rerun gets it.
* ``analysis/first`` and ``analysis/cached_rerun``: the Angles page's per-run analysis (run arrays,
  angle statistics, summary numbers) for the five runs through ``ui.loaders``' ``st.cache_data``
  functions, called in bare mode (no server) twice; the second call is what a rerun pays. Target for
  the rerun: under 0.2 s. ``analysis/angles_page_rerun`` reruns the whole Angles page in Streamlit's
  ``AppTest`` (analysis from the cache plus drawing the figures).
* ``umap/...``: UMAP of 10,000 points (128-d penultimate activations of ``small``, seed 0, untrained, on
  28x28 test images, Fashion-MNIST when present; made once and saved as ``.npy``) by ``lab.analysis.projection.umap``
  in a fresh process: importing umap, the first projection (numba compiles UMAP's kernels), the two
  together (``umap/import_and_first_10000``, what the first UMAP costs a server that has not imported
  umap; target: under 15 s) and a second one (compiled).
* ``pages/first/<page>`` and ``pages/warm/<page>``: every page of the default example (the app's own
  runs folder, seeded with the shipped examples) in ``AppTest``: the script run of a first visit, then of
  a second visit after all the others, everything the page caches cached. Target for the warm visits:
  under 0.5 s.
* ``gradcam/method_change/<method>``: the Grad-CAM page in ``AppTest`` with 8 images of the example's 5
  losses: the script run after choosing another method (maps not yet computed). Target: under 1 s.
* ``browser``: what a user waits for in headless Chromium (``bench.browser.browser_journey``), each from the
  click (or the navigation's start) to the page *settled*: every script run the click started has finished
  (Streamlit's running indicator is gone), nothing of an older run is left on the page, the heading is
  drawn, every visible plotly chart has drawn its SVG or WebGL scene (its ``plotly_afterplot``) and every
  visible image has loaded, and one more animation frame has been painted (``bench/settle.js``, timed in the
  page's own clock). Each server is a fresh ``streamlit run app.py`` with its own runs folder (seeded with
  the examples) and an empty projection cache. ``first_heading`` and ``first_page_settled``: a new browser
  opening the app (the Fashion-MNIST 3-D example's Feature space) on a server that has just started
  accepting connections (targets 2 s and 4 s); ``<page>/first``: on a second fresh server, from Train, each
  page's first visit (Feature space: 2 s); ``<page>/warm``: each page again, everything cached (Feature
  space 1 s, the others 0.5 s); ``switch_example``: on the warm Feature space, choosing the digits example
  in the sidebar, settled (3 s), ``/feedback`` to the sidebar naming digits (0.5 s), ``/greyed`` to the old
  page fading, ``/mixed`` how long charts of both examples share the page; ``switch_back`` to the
  Fashion-MNIST example. Each step's kilobytes received, script runs, charts, chart draws, WebGL contexts
  and animation frames are tabled. Needs Debian's ``chromium``. In ``--quick`` mode, once, on one server:
  the first page, Train, Feature space warm and the switch.

The last four (``APP_SECTIONS``) are measured by :mod:`bench.browser` in a fresh Python process started in
the checkout it measures, 3 times (UMAP once), and the figures are medians. ``--checkout REV`` measures them
also for git revision REV (e.g. ``3e85ef3``, an earlier app): a temporary ``git
worktree`` of REV, whose process imports REV's own ``app.py``, ``pages/``, ``ui/`` and ``lab/``; the runs of
the two alternate (before, after, then after, before, ...), REV's figures are named ``before/...``, and a
table sets the two side by side. The worktree is removed at the end. The AppTest sections run in full mode
only (minutes): ``--quick`` keeps CI short (UMAP of 300 points, and the short browser journey, once per
checkout).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import models
from bench import browser
from bench.common import Report, fashion_or_synthetic, median, parse_sections, parser, resolve
from lab import datasets
from lab.datasets.registry import load_dataset
from lab.datasets.tensors import normalize
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.jobs import JobManager

OWNER = browser.OWNER
ROOT = browser.ROOT


def default_configs(experiment: str, epochs: int | None) -> list[RunConfig]:
    """What the Train form submits with its defaults: every default loss with its default hyperparameters."""
    from lab.settings.form import DEFAULT_LOSSES

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
    datasets.load_dataset.cache_clear()
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
        "from lab.runs.store import RunStore\n"
        "with tempfile.TemporaryDirectory() as root:\n"
        f"    print(train_default_experiment(RunStore(root), 'fresh', {epochs!r}, app_open=False)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(done.stdout.strip().splitlines()[-1])


def in_browser_seconds(epochs: int | None) -> float | None:
    """Seconds from clicking Start on the Train page (defaults, or ``epochs``) to the page saying the
    default losses' runs are done, with the app served by ``streamlit run`` and driven by headless Chromium on
    this machine; None when Chromium is not installed."""
    from lab.settings.form import DEFAULT_LOSSES

    if not Path(browser.CHROMIUM).exists():
        return None
    with (
        tempfile.TemporaryDirectory() as root,
        browser.streamlit_server(Path(root) / "runs") as url,
        browser.chromium() as chromium,
    ):
        page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/train")
        browser.wait_until_idle(page)
        if epochs is not None:
            field = page.get_by_role("textbox", name="Epochs")
            field.fill(str(epochs))
            field.press("Enter")
            browser.wait_until_idle(page)
        started = time.perf_counter()
        page.get_by_role("button", name="Start training").click()
        done = f"Done: {len(DEFAULT_LOSSES)} of {len(DEFAULT_LOSSES)} runs finished"
        page.get_by_text(done).wait_for(timeout=600_000)
        return time.perf_counter() - started


def gradcam_grid(store: RunStore, records: list, report: Report, quick: bool) -> None:
    from lab.interpret.gradcam import compute_cams, resolve_targets
    from lab.runs.restore import load_trained
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

    def grid(images: torch.Tensor, loaded: list) -> float:
        started = time.perf_counter()
        for model, head in loaded:
            with torch.inference_mode():
                logits = head.logits(model(images))
            targets = resolve_targets(logits, None, "predicted", None)
            compute_cams(model, head, images, "GradCAM", targets)
        return time.perf_counter() - started

    grid(images, loaded)  # the first call sets the library up; the page's models are already loaded
    seconds = min(grid(images, loaded) for _ in range(1 if quick else 3))
    report.figure(
        f"gradcam/grid_{len(images)}x{len(loaded)}", seconds, "s", target="< 2 s", met=seconds < 2.0, note="GradCAM"
    )
    labels = digits.test.labels[indices].numpy()
    through_cache = lambda: [  # noqa: E731
        cams.cams(record, pixels.numpy(), labels, "GradCAM", "predicted", None) for record in records
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

    previous = os.environ.get("LOSSLENS_RUNS_DIR")
    try:
        app = browser.app_test(ROOT, root, exp=experiment)
        app.switch_page(browser.PAGES["angles"])
        first = browser.timed_run(app, "the Angles page")
        rerun = browser.timed_run(app, "the Angles page's rerun")
    finally:
        if previous is None:
            os.environ.pop("LOSSLENS_RUNS_DIR", None)
        else:
            os.environ["LOSSLENS_RUNS_DIR"] = previous
        st.cache_resource.clear()
        st.cache_data.clear()
    report.figure("analysis/angles_page_first", first, "s", note="AppTest, includes drawing")
    report.figure("analysis/angles_page_rerun", rerun, "s", note="AppTest rerun, includes drawing")


SECTIONS = ("train", "gradcam", "analysis", "umap", "pages", "gradcam_method", "browser")
APP_SECTIONS = {  # measured in a fresh process at each checkout: (function in bench.browser, runs per arm)
    "pages": ("page_seconds", 3),
    "gradcam_method": ("gradcam_method_seconds", 3),
    "browser": ("browser_journey", 3),
    "umap": ("umap_seconds", 1),
}
QUICK_SECTIONS = ("umap", "browser")  # the app sections --quick runs (once)
TARGETS = {  # a figure's name (or, ending in "/", the start of it): (target, the bound it must stay under)
    "pages/warm/": ("< 0.5 s", 0.5),
    "gradcam/method_change/HiResCAM": ("< 1 s", 1.0),
    "gradcam/method_change/GradCAM++": ("< 1 s", 1.0),
    "umap/import_and_first_10000": ("< 15 s", 15.0),
    # what users wait for in the browser, on a quiet 2-core machine
    "first_heading": ("<= 2 s", 2.0),
    "first_page_settled": ("<= 4 s", 4.0),
    "feature_space/first": ("<= 2 s", 2.0),
    "feature_space/warm": ("<= 1 s", 1.0),
    "train/warm": ("<= 0.5 s", 0.5),
    "angles/warm": ("<= 0.5 s", 0.5),
    "gradcam/warm": ("<= 0.5 s", 0.5),
    "learn/warm": ("<= 0.5 s", 0.5),
    "switch_example": ("<= 3 s", 3.0),
    "switch_example/feedback": ("<= 0.5 s", 0.5),
}
WAITS_TABLE = [  # what a user waits for: (what, the figures that answer it)
    ("first heading after the server accepts connections", ["first_heading"]),
    ("first page settled (Fashion-MNIST 3-D example)", ["first_page_settled"]),
    ("Feature space, first visit", ["feature_space/first"]),
    ("Feature space, warm visit (everything cached)", ["feature_space/warm"]),
    ("Train / Angles / Grad-CAM / Learn, warm", ["train/warm", "angles/warm", "gradcam/warm", "learn/warm"]),
    ("switching from the Fashion example to the digits example: feedback", ["switch_example/feedback"]),
    ("switching from the Fashion example to the digits example: settled", ["switch_example"]),
]
NOTES = {  # the same, for the note each figure carries
    "pages/": "AppTest script run, the default example",
    "gradcam/method_change/back_cached": "AppTest script run, maps cached",
    "gradcam/method_change/": "AppTest script run, 8 images x 5 losses, maps not cached",
    "first_heading": "from a fresh server accepting connections to the first heading, headless Chromium",
    "first_page_settled": "from a fresh server accepting connections to the first page settled",
    "switch_example/feedback": "to the sidebar naming the chosen example",
    "switch_example/greyed": "to the old page fading",
    "switch_example/mixed": "time both examples' charts share the page",
    "switch_example": "Fashion-MNIST to digits in the sidebar, to the page settled",
    "switch_back/": "",
    "switch_back": "digits back to Fashion-MNIST, to the page settled",
    "train/": "click to the page settled, headless Chromium",
    "feature_space/": "click to the page settled, headless Chromium",
    "angles/": "click to the page settled, headless Chromium",
    "gradcam/warm": "click to the page settled, headless Chromium",
    "gradcam/first": "click to the page settled, headless Chromium",
    "compare/": "click to the page settled, headless Chromium",
    "learn/": "click to the page settled, headless Chromium",
    "umap/import_and_first": "what the first UMAP costs a process that has not imported umap",
    "umap/import": "fresh process",
    "umap/first": "numba compiles UMAP's kernels",
    "umap/second": "compiled, not cached",
    "umap/cached": "st.cache_data hit",
}


def matching(table: dict, name: str):
    """The value of the first key of ``table`` that ``name`` starts with; else None."""
    return next((value for start, value in table.items() if name.startswith(start)), None)


def target_of(name: str) -> tuple[str, float] | None:
    """``name``'s entry in :data:`TARGETS`: its own, else that of the first key ending in "/" that starts it."""
    if name in TARGETS:
        return TARGETS[name]
    return next((value for start, value in TARGETS.items() if start.endswith("/") and name.startswith(start)), None)


def diagnostic(name: str) -> str | None:
    """The :data:`bench.browser.DIAGNOSTICS` key ``name`` ends with (a browser step's reading that is tabled,
    not a figure); else None."""
    last = name.rsplit("/", 1)[-1]
    return last if "/" in name and last in browser.DIAGNOSTICS else None


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[tuple[Path, str]]:
    """A temporary ``git worktree`` of ``revision`` of this repository and its short commit hash; removed
    (``git worktree remove --force``) at the end."""
    commit = git("rev-parse", "--short", f"{revision}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix="losslens-checkout-"))
    path = folder / commit
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path, commit
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True, check=False)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def umap_points(folder: Path, quick: bool) -> tuple[Path, str]:
    """10,000 (quick: 300) points to project, saved once as ``.npy`` so every checkout projects the same
    ones: the 128-d penultimate activations of ``small`` (seed 0, untrained) on 28x28 test images."""
    n = 300 if quick else 10_000
    dataset, source = fashion_or_synthetic(quick, n_train=10, n_test=n)
    torch.manual_seed(0)
    model = models.build("small", 1, 28, 2).eval()
    with torch.inference_mode():
        points = model.trunk(dataset.test.normalized[:n]).numpy()
    path = folder / f"umap-points-{n}.npy"
    np.save(path, points)
    return path, f"{n} points of {source} penultimate activations"


def app_sections(
    report: Report, sections: list[str], quick: bool, checkout: str | None, runs_per_arm: int | None = None
) -> None:
    """The app's own latencies (``APP_SECTIONS``), each measured by ``bench.browser`` in a fresh process
    at this checkout (the figures under their names, with their targets) and, with ``checkout``, in one at
    that revision's temporary worktree (``before/...``), the two alternating; medians of the runs."""
    chosen = [s for s in APP_SECTIONS if s in sections and (s in QUICK_SECTIONS or not quick)]  # AppTest: minutes
    if not chosen:
        return
    with contextlib.ExitStack() as stack:
        arms = {"after": ROOT}
        if checkout:
            before, commit = stack.enter_context(worktree(checkout))
            arms = {"before": before, **arms}
            dirty = git("status", "--porcelain", "--", "app.py", "pages", "ui", "lab", "losses", "models")
            report.note(
                f"before: {checkout}{f' ({commit})' if commit != checkout else ''} in a temporary git worktree; "
                f"after: this working tree at "
                f"{git('rev-parse', '--short', 'HEAD')}"
                + (f" with {len(dirty.splitlines())} uncommitted app file(s)" if dirty else "")
            )
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="losslens-bench-")))
        rows = []
        for section in chosen:
            function, runs = APP_SECTIONS[section]
            runs = runs_per_arm or (1 if quick else runs)
            arguments: tuple = ()
            if section == "umap":
                points, described = umap_points(folder, quick)
                arguments = (str(points),)
                report.note(f"umap: {described}")
            if section == "browser":
                if not Path(browser.CHROMIUM).exists():
                    report.note("browser: skipped (Debian's chromium is not installed)")
                    continue
                arguments = (quick,)
            measured: dict[str, dict[str, list[float]]] = {arm: {} for arm in arms}
            for run in range(runs):
                for arm in list(arms)[:: 1 if run % 2 == 0 else -1]:  # before first, then after first, ...
                    for name, seconds in browser.in_checkout(arms[arm], function, *arguments).items():
                        measured[arm].setdefault(name, []).append(seconds)
            rows += report_arms(report, measured, quick)
        if checkout and rows:
            report.table(
                f"before ({checkout}) and after (this checkout), medians of alternating fresh-process runs",
                ["figure", "before", "after", "target", "met"],
                rows,
            )


def meets(target: str, bound: float, value: float) -> bool:
    return value <= bound if target.startswith("<=") else value < bound


def report_arms(report: Report, measured: dict[str, dict[str, list[float]]], quick: bool) -> list[list[str]]:
    """One figure per arm and name (before's prefixed ``before/``; the target on after's), and the rows of
    the before/after table; a browser step's readings (:func:`diagnostic`) go to :func:`browser_tables`."""
    rows = []
    for name, values in measured["after"].items():
        if diagnostic(name):
            continue
        target, bound = (None if quick else target_of(name)) or ("", None)
        for arm in measured:
            runs = measured[arm].get(name, [])
            if not runs:
                continue
            note = matching(NOTES, name) or ""
            if len(runs) > 1:
                note += f"; median of {', '.join(f'{s:.3g}' for s in runs)}"
            after = arm == "after"
            report.figure(
                name if after else f"{arm}/{name}",
                median(runs),
                "s",
                target=target if after else "",
                met=meets(target, bound, median(runs)) if after and bound is not None else None,
                note=note.lstrip("; "),
            )
        before = measured.get("before", {}).get(name)
        met = "" if bound is None else ("yes" if meets(target, bound, median(values)) else "**no**")
        rows.append([name, f"{median(before):.3g} s" if before else "", f"{median(values):.3g} s", target, met])
    if "first_heading" in measured["after"]:
        browser_tables(report, measured)
    return rows


def browser_tables(report: Report, measured: dict[str, dict[str, list[float]]]) -> None:
    """The browser journey as a table of what users wait for (medians, every run, target, per arm), and each step's
    readings (medians): what it received, ran and drew."""
    rows = []
    for what, names in WAITS_TABLE:
        for arm, figures in measured.items():
            found = [name for name in names if figures.get(name)]
            if not found:
                continue
            target, bound = target_of(found[0]) or ("", None)
            values = ", ".join(f"{median(figures[name]):.2f}" for name in found)
            runs = "; ".join(", ".join(f"{v:.2f}" for v in figures[name]) for name in found)
            met = (
                "" if bound is None else "yes" if all(meets(target, bound, median(figures[n])) for n in found) else "no"
            )
            rows.append([what, arm, f"{values} s", runs, target, met])
    report.table(
        "what users wait for, in headless Chromium (seconds, medians; each run)",
        ["what", "arm", "median", "runs", "target", "met"],
        rows,
    )
    readings = list(browser.DIAGNOSTICS)
    for arm, figures in measured.items():
        steps = [name for name in figures if not diagnostic(name) and f"{name}/received_kB" in figures]
        report.table(
            f"each browser step's readings ({arm}; medians)",
            ["step", "settled s", *(f"{key} {browser.DIAGNOSTICS[key][0]}".strip() for key in readings)],
            [
                [step, f"{median(figures[step]):.2f}"]
                + [
                    f"{median(figures[f'{step}/{key}']):.4g}" if figures.get(f"{step}/{key}") else ""
                    for key in readings
                ]
                for step in steps
            ],
        )


def main(argv: list[str] | None = None) -> Report:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument(
        "--checkout",
        metavar="REV",
        help="also measure the app sections (pages, gradcam_method, first_heading, umap) at git revision REV, "
        "in a temporary worktree, alternating with this checkout (figures before/...)",
    )
    parse.add_argument(
        "--runs", type=int, help="runs per arm of each app section (default: 3, UMAP 1; --quick: 1); medians"
    )
    args, sections = parse_sections(parse, argv, SECTIONS)
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
        app_sections(report, sections, args.quick, args.checkout, args.runs)
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
        in_browser = None if quick else in_browser_seconds(epochs)  # a server and a browser: not CI's seconds
        if in_browser is None:
            why = "quick mode" if quick else "Debian's chromium is not installed"
            report.note(f"train/start_to_done_in_browser: skipped ({why})")
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
