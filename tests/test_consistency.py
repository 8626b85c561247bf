"""One source for every number a page shows: each accuracy, epoch and angle on every page equals its value in
the run files, on the shipped examples and on a fresh experiment of 2 variants x 2 seeds trained here.

Each page is opened once per experiment through AppTest and everything it displays is read back: markdown,
captions, alerts, image captions, progress texts, table cells, and the figures' titles, frames, annotations,
hover texts and data. An explicit pattern per page element parses its numbers, and each is compared, as text,
with its source formatted by the app's one rule for its kind (:func:`lab.analysis.wording.percent_text` for a share,
one decimal and a degree sign for an angle, :meth:`lab.analysis.seed_stats.SeedMetric.format` for a figure over seeds)
at the precision the page chose. The sources: status.json's ``test_acc`` for a run's test accuracy (the whole
test set), metrics.jsonl and the snapshots for an epoch's figure (the evaluation subset, named by its size),
the stored test features for angles, and :mod:`lab.analysis.seed_stats` for means and intervals over seeds (whose
per-run accuracy must equal status.json's). Any percentage, angle or epoch left in a text that no pattern
read fails the test with that text, so a number added to a page without a source does not pass unseen.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lab import datasets
from lab.analysis import geometry, projection, wording
from lab.analysis.lessons import check_lessons as lesson_checks
from lab.analysis.seed_stats import MARGIN_DEGREES, SEED_METRICS, VariantSummary, summarize_experiment
from lab.analysis.statistics import CONFIDENCE
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment, variant_label
from losses.geometry import best_spacing_degrees
from tests import apptest
from tests.apptest import app_reads, values
from ui import seeds, session, titles

FRESH = "consistency-fresh"
FRESH_SETTINGS = {"dataset": "digits", "epochs": 2, "train_limit": 300, "snapshot_points": 100, "eval_images": 200}
EXPERIMENTS = ["example-digits-2d", "example-fashion-3d", FRESH]
CREDENTIAL = "consistency-test-credential-".ljust(43, "0")  # the browser that trains the fresh experiment

NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?"
# what a page may not show without a source: a share or accuracy, an angle, a difference in points, an epoch
CLAIM = re.compile(rf"{NUMBER}\s*(?:%|°|pts\b)|\bepochs? {NUMBER}|{NUMBER} epochs?\b")
# numbers that are declarations, not measurements: the confidence level, the tests' level, the figures' ranges,
# the margin the summary counts beyond, the tolerance of one ray
STATIC = [
    re.compile(rf"\b{CONFIDENCE:.0%} (?:confidence intervals?|CIs?)\b"),
    re.compile(r"\b(?:significant|taken) at 5%"),
    re.compile(r"accuracy 0 to 100%, angles 0 to 180°"),
    re.compile(rf"\b(?:a|beyond) {MARGIN_DEGREES:g}°(?: margin)?"),
    re.compile(rf"\bwithin {geometry.SAME_RAY_DEGREES:g}°"),  # directions this close are drawn as one ray
]


# ---------------------------------------------------------------- the one formatting rule of each kind


def percent_digits(shown: str) -> int:
    """The decimals of a percentage as shown ("86.4%": 1, "76%": 0)."""
    number = shown.rstrip("%").strip()
    return len(number.split(".")[1]) if "." in number else 0


def as_percent(fraction: float, like: str) -> str:
    """``fraction`` as the app writes a share, with the decimals of ``like``."""
    return wording.percent_text(fraction, percent_digits(like))


def as_degrees(angle: float, like: str) -> str:
    """``angle`` as the app writes an angle, with the decimals of ``like`` ("12.3°")."""
    number = like.rstrip("°").strip()
    digits = len(number.split(".")[1]) if "." in number else 0
    return f"{angle:.{digits}f}" + ("°" if like.endswith("°") else "")


# ---------------------------------------------------------------- the run files


@dataclasses.dataclass
class Run:
    """One run's files as read from the run store, not through the app."""

    record: RunRecord
    features: RunFeatures
    snapshots: RunSnapshots

    @property
    def label(self) -> str:
        return titles.loss_label(self.record)

    @property
    def seed(self) -> int:
        return self.record.config.seed

    @property
    def test_accuracy(self) -> float:
        assert self.record.state == "finished", self.record.status
        return float(self.record.status["test_acc"])

    @property
    def n_classes(self) -> int:
        return int(self.features.test_logits.shape[1])

    @property
    def labels(self) -> np.ndarray:
        return self.features.test_labels.numpy()

    @property
    def test_features(self) -> np.ndarray:
        return self.features.test_features.numpy()

    @property
    def directions(self) -> np.ndarray | None:
        directions = self.features.class_directions
        return None if directions is None else directions.numpy()

    def metrics_of(self, epoch: int) -> dict:
        (line,) = [line for line in self.record.metrics if line["epoch"] == epoch]
        return line


@dataclasses.dataclass
class Experiment:
    """An experiment's runs and its summary over seeds, read from the run files."""

    name: str
    runs: list[Run]  # in the order the sidebar lists them
    summaries: list[VariantSummary]

    @property
    def seeds(self) -> list[int]:
        return sorted({run.seed for run in self.runs})

    def of_seed(self, seed: int) -> list[Run]:
        return [run for run in self.runs if run.seed == seed]

    def run(self, label: str, seed: int) -> Run:
        (found,) = [run for run in self.runs if run.label == label and run.seed == seed]
        return found

    @property
    def class_names(self) -> list[str]:
        return list(datasets.info(self.runs[0].record.config.dataset).class_names)


def read_experiment(store: RunStore, name: str) -> Experiment:
    records = store.experiments()[name]
    runs = [Run(r, store.load_features(r.run_id), store.load_snapshots(r.run_id)) for r in records]
    return Experiment(name, runs, summarize_experiment(store, name))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A runs folder holding the shipped examples (the app copies them in) and the fresh experiment, trained as
    the Train page trains one: a job of the app's job manager, owned by :data:`CREDENTIAL`'s browser."""
    root = tmp_path_factory.mktemp("consistency-runs")
    with app_reads(root, LOSSLENS_CACHE_DIR=str(root.parent / "consistency-cache")):
        configs = make_experiment(RunConfig(experiment=FRESH, **FRESH_SETTINGS), ["softmax", "amc"], seeds=[0, 1])
        owner = session.owner_of(CREDENTIAL)
        manager = session.job_manager()
        job = manager.get(manager.submit(configs, owner), owner)
        deadline = time.monotonic() + 600
        while not job.done and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [record.state for record in job.records] == ["finished"] * 4
        yield root


@pytest.fixture(params=EXPERIMENTS)
def experiment(request) -> str:
    return request.param


@functools.cache
def _experiment(root: str, name: str) -> Experiment:
    return read_experiment(RunStore(Path(root)), name)


def experiment_of(runs_dir: Path, name: str) -> Experiment:
    """``name``'s run files (read once per module; the examples are there once the app has opened a page)."""
    return _experiment(str(runs_dir), name)


# ---------------------------------------------------------------- what a page shows


@dataclasses.dataclass
class Shown:
    """One text the page displays, where it is (and its chart's id, for a figure's), and whether a check has
    read its numbers."""

    where: str
    text: str
    chart: str = ""
    read: bool = False


class Page:
    """Everything an opened page displays, as text, with the figures' JSON; checks mark what they read."""

    def __init__(self, app: AppTest) -> None:
        self.app = app
        self.shown: list[Shown] = []
        self.charts: dict[str, dict] = {}  # by the chart's element id, which ends with its key
        for where, node in _elements(app):
            self._collect(where, node)

    def _add(self, where: str, text: object, chart: str = "") -> None:
        if isinstance(text, str) and text.strip():
            self.shown.append(Shown(where, text, chart))

    def _collect(self, where: str, node) -> None:
        kind = type(node).__name__
        if kind in (
            "Markdown",
            "Caption",
            "Title",
            "Header",
            "Subheader",
            "Text",
            "Info",
            "Warning",
            "Error",
            "Success",
        ):
            self._add(f"{where} {kind.lower()}", apptest.shown(node.value))
            self._add(f"{where} {kind.lower()} help", getattr(node.proto, "help", ""))
        elif kind == "Expander":
            self._add(f"{where} expander label", apptest.shown(node.label))
        elif kind == "Image":
            for image in node.proto.imgs:
                self._add(f"{where} image caption", apptest.shown(image.caption))
        elif kind == "Progress":
            self._add(f"{where} progress", apptest.shown(node.proto.text))
        elif kind in ("Dataframe", "Table"):
            frame = node.value
            for column in frame.columns:
                self._add(f"{where} table header", str(column))
                for cell in frame[column]:
                    self._add(f"{where} table column {column!r}", cell)
        elif getattr(node, "type", None) == "plotly_chart":
            spec = json.loads(node.proto.spec)
            self.charts[node.proto.id] = spec
            for place, text in _figure_texts(spec):
                self._add(f"{where} figure {place}", text, chart=node.proto.id)

    def texts(self, where: str = "") -> list[Shown]:
        return [s for s in self.shown if where in s.where]

    def take(self, pattern: str, where: str = "") -> list[tuple[Shown, re.Match]]:
        """Every text in ``where`` that ``pattern`` matches in full, marked read, with its match."""
        found = []
        for shown in self.texts(where):
            match = re.fullmatch(pattern, shown.text, flags=re.S)
            if match:
                shown.read = True
                found.append((shown, match))
        return found

    def chart(self, key: str) -> tuple[str, dict]:
        """The figure drawn with ``key``: its element id and its JSON."""
        ((found, spec),) = [(chart, spec) for chart, spec in self.charts.items() if chart.endswith(f"-{key}")]
        return found, spec

    def read_figure(self, chart: str, where: str = "") -> None:
        """Mark the texts of the figure ``chart`` (those at ``where`` in it) as read by the check just made."""
        for shown in self.shown:
            if shown.chart == chart and where in shown.where:
                shown.read = True

    def unread_claims(self) -> list[str]:
        """Every percentage, angle or epoch in a text no check read (declared constants aside)."""
        left = []
        for shown in self.shown:
            if shown.read:
                continue
            text = shown.text
            for static in STATIC:
                text = static.sub("", text)
            claims = CLAIM.findall(text)
            if claims:
                left.append(f"{claims} in {shown.where}: {shown.text!r}")
        return left


def _elements(app: AppTest) -> Iterator[tuple[str, object]]:
    def walk(node, where: str) -> Iterator[tuple[str, object]]:
        for child in getattr(node, "children", {}).values():
            yield where, child
            yield from walk(child, where)

    yield from walk(app.main, "main")
    yield from walk(app.sidebar, "sidebar")


def _title(spec: dict) -> str:
    return spec["layout"].get("title", {}).get("text", "")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _trace_texts(traces: list[dict], where: str) -> Iterator[tuple[str, str]]:
    for trace in traces:
        name = trace.get("name", "")
        yield f"{where}trace name", name
        for field in ("text", "hovertext"):
            for text in _strings(trace.get(field)):
                yield f"{where}trace {name!r} {field}", text


def _figure_texts(spec: dict) -> Iterator[tuple[str, str]]:
    """The texts a figure displays: its title and each frame's (with the frame's traces), axis titles and tick
    labels, annotations, and its traces' names, texts and hover texts."""
    layout = spec["layout"]
    yield "title", _title(spec)
    for frame in spec.get("frames", []):
        yield f"frame {frame.get('name')} title", frame.get("layout", {}).get("title", {}).get("text", "")
        yield from _trace_texts(frame.get("data", []), f"frame {frame.get('name')} ")
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            yield f"{name} title", axis.get("title", {}).get("text", "")
            for tick in _strings(axis.get("ticktext")):
                yield f"{name} tick", tick
    for annotation in layout.get("annotations", []):
        yield "annotation", annotation.get("text", "")
    yield from _trace_texts(spec["data"], "")


def open_page(page: str, experiment: str, **kwargs) -> Page:
    return Page(apptest.open_page(page, experiment=experiment, timeout=600, **kwargs))


def no_unread_claims(page: Page) -> None:
    left = page.unread_claims()
    assert not left, "numbers shown without a source:\n" + "\n".join(left)


# ---------------------------------------------------------------- the sidebar, on every page


def check_sidebar(page: Page, exp: Experiment) -> None:
    """The experiment's epochs and seeds, and each run's test accuracy (status.json, whole test set)."""
    ((_, caption),) = page.take(
        r"\S+ · model `\w+` · \d+-D features · (?P<epochs>\d+) epochs · seeds? (?P<seeds>[\d, ]+)", "sidebar caption"
    )
    assert {run.record.config.epochs for run in exp.runs} == {int(caption["epochs"])}
    assert [int(s) for s in caption["seeds"].split(", ")] == exp.seeds
    lines = page.take(
        r"\*\*(?P<name>.+?)\*\*(?: · seed (?P<seed>\d+))? :\w+\[[^\]]+\](?: · (?P<accuracy>[\d.]+%))?",
        "sidebar markdown",
    )
    assert len(lines) == len(exp.runs), [s.text for s, _ in lines]
    for (shown, line), run in zip(lines, exp.runs, strict=True):
        assert line["name"] == run.label, shown.text
        if len(exp.seeds) > 1:
            assert int(line["seed"]) == run.seed, shown.text
        assert line["accuracy"] == wording.percent_text(run.test_accuracy), (shown.text, run.record.status)


def shown_seed(page: Page, exp: Experiment) -> int:
    """The training seed whose runs a one-seed-at-a-time page shows."""
    return page.app.button_group(key=seeds.SEED_WIDGET).value if len(exp.seeds) > 1 else exp.seeds[0]


# ---------------------------------------------------------------- Feature space

FRAME_DETAIL = (
    r"(?:before training|epoch (?P<epoch>\d+))"
    r"(?: · (?P<kind>test accuracy|accuracy) (?P<accuracy>[\d.]+%)"
    r"(?: on (?P<the>the )?(?P<images>[\d,]+) (?P<what>test images|images shown)| on a test subset)?)?"
)


def check_frame_title(title: str, run: Run, row: int) -> None:
    """A feature panel's title after the stored epoch ``row``: the loss, that epoch, and the accuracy measured
    then, named by the images it was measured on."""
    lines = re.sub(r"</?b>", "", title).split("<br>")
    assert html.unescape(" ".join(lines[:-1])) == run.label, title
    detail = re.fullmatch(FRAME_DETAIL, lines[-1])
    assert detail, f"a feature panel's title not understood: {title!r}"
    epochs = run.snapshots.epochs.tolist()
    epoch = int(detail["epoch"] or 0)
    assert epoch == epochs[row], (title, epochs, row)
    if detail["accuracy"] is None:
        return
    shown = detail["accuracy"]
    measured = float(run.snapshots.test_acc[row])
    test_images = len(run.labels)
    if detail["kind"] == "test accuracy":  # the whole test set: the run's own, or an epoch measured on all of it
        final = row == len(epochs) - 1 and run.record.state == "finished"
        source = run.test_accuracy if final else measured
        measured_on = len(run.snapshots.indices) if epoch == 0 else run.metrics_of(epoch)["eval_images"]
        assert final or measured_on == test_images, title
        assert shown == as_percent(source, shown), (title, source)
    elif detail["what"] == "images shown":  # before training: the snapshot subset only
        assert epoch == 0 and int(detail["images"].replace(",", "")) == len(run.snapshots.indices), title
        assert shown == as_percent(measured, shown), (title, measured)
    else:
        assert detail["images"], f"an epoch's accuracy must name the images it was measured on: {title!r}"
        metrics = run.metrics_of(epoch)
        assert int(detail["images"].replace(",", "")) == metrics["eval_images"] < test_images, (title, metrics)
        assert shown == as_percent(metrics["test_acc"], shown) == as_percent(measured, shown), (title, metrics)


def check_feature_panels(page: Page, exp: Experiment, seed: int) -> None:
    panels = [(chart, spec) for chart, spec in page.charts.items() if spec.get("frames")]
    runs = exp.of_seed(seed)
    assert len(panels) == len(runs)
    for chart, spec in panels:
        name = html.unescape(" ".join(re.sub(r"</?b>", "", _title(spec)).split("<br>")[:-1]))
        run = exp.run(name, seed)
        frames = spec["frames"]
        assert [int(f["name"]) for f in frames] == run.snapshots.epochs.tolist()
        for row, frame in enumerate(frames):
            check_frame_title(frame["layout"]["title"]["text"], run, row)
        check_frame_title(_title(spec), run, len(frames) - 1)  # the slider opens on the last epoch
        page.read_figure(chart, "title")


def check_same_ray_notes(page: Page, exp: Experiment, seed: int) -> None:
    """Classes drawn on one ray at the epoch shown (the last): the angle between their directions and, for a
    head that decides by angle alone, the share of their images it takes for another of them."""
    notes = page.take(r":material/call_merge: On the unit (?:circle|sphere), .*", "main caption")
    noted = {}
    for shown, _ in notes:
        (run,) = [
            run for run in exp.of_seed(seed) if f": {run.label}'s " in shown.text or f". {run.label} has" in shown.text
        ]
        noted[run.label] = shown.text
    for run in exp.of_seed(seed):
        directions = run.snapshots.class_directions
        directions = run.directions if directions is None else directions[-1].numpy()
        groups = geometry.shared_directions(directions) if directions is not None else []
        if not groups:
            assert run.label not in noted, noted.get(run.label)
            continue
        text = noted[run.label]
        said = re.findall(r"classes (.+?) share a direction \(([\d.]+°) apart\)", text)
        assert len(said) == len(groups), text
        for (names, spread), group in zip(said, groups, strict=True):
            assert names == " and ".join(
                [", ".join(exp.class_names[c] for c in group[:-1]), exp.class_names[group[-1]]]
            )
            angle = float(geometry.angles_deg(directions[group], directions[group]).max())
            assert spread == as_degrees(angle, spread), (text, angle)
        shares = re.findall(r"(\d+%) of (?:their|the (\d+) of classes .+?)(?: (\d+) images shown)?[,.]", text)
        if wording.decides_by_angle(run.record.config.loss):
            features = run.snapshots.features[-1].numpy().astype(np.float64)
            labels = run.labels[run.snapshots.indices.numpy()]
            decided = np.argmax(features @ directions.astype(np.float64).T, axis=1)
            assert len(shares) == len(groups), text
            for (share, _, _), group in zip(shares, groups, strict=True):
                mine = np.isin(labels, group)
                confused = float((np.isin(decided[mine], group) & (decided[mine] != labels[mine])).mean())
                assert share == as_percent(confused, share), (text, confused)
        else:
            assert not shares, text


def check_lessons(page: Page, exp: Experiment) -> None:
    """Each lesson's figures: the variant's and softmax's means over the seeds both finished (seed_stats)."""
    checks = lesson_checks(exp.summaries)
    lines = page.take(
        r":material/\w+: \*\*(?P<variant>.+?)\*\*: (?P<title>.+?) (?P<mine>\S+) against (?P<baseline>.+?)'s "
        r"(?P<theirs>\S+) \((?P<n>\d+) seeds?\): .*",
        "main",
    )
    assert len(lines) == len(checks)
    for (shown, line), check in zip(lines, checks, strict=True):
        metric = SEED_METRICS[check.expected.figure]
        assert (line["variant"], line["title"], line["baseline"]) == (check.variant, metric.title, check.baseline)
        mine = next(s for s in exp.summaries if s.variant == check.variant).values[check.expected.figure]
        theirs = next(s for s in exp.summaries if s.variant == check.baseline).values[check.expected.figure]
        paired = sorted(set(mine) & set(theirs))
        assert int(line["n"]) == len(paired), shown.text
        for shown_value, by_seed in ((line["mine"], mine), (line["theirs"], theirs)):
            mean = sum(by_seed[s] for s in paired) / len(paired)
            assert shown_value == seed_metric_text(check.expected.figure, mean, shown_value), (shown.text, mean)
    if checks:
        (label,) = page.take(r"Does each loss do what the Learn page says\? Checked on this experiment \((\d+) seeds\)")
        assert int(label[1][1]) == max(len(c.seeds) for c in checks)


def seed_metric_text(metric: str, value: float, like: str) -> str:
    """A figure over seeds in the one rule of its kind: a share in percent, an angle in degrees, else 3
    significant digits."""
    declared = SEED_METRICS[metric]
    if declared.percent:
        return as_percent(value, like)
    if declared.unit == "°":
        return as_degrees(value, like)
    return f"{value:.3g}{declared.unit}"


def check_projections(page: Page, exp: Experiment, seed: int) -> None:
    """PCA's share of variance per panel, from the stored penultimate activations (2-D) or features (3-D)."""
    (source,) = [c.value for c in page.app.segmented_control if str(c.key).startswith("projection_source_")]
    for shown, title in page.take(r"<b>(?P<name>.+)<br>PC1 (?P<pc1>\d+%) · PC2 (?P<pc2>\d+%) of variance</b>"):
        run = exp.run(html.unescape(title["name"].replace("<br>", " ")), seed)
        indices = run.features.snapshot_indices.numpy()
        data = run.features.penultimate.numpy() if source == "penultimate" else run.test_features[indices]
        _, ratio = projection.pca(data, 2)
        assert (title["pc1"], title["pc2"]) == (as_percent(ratio[0], "0%"), as_percent(ratio[1], "0%")), shown.text


def check_inspector(page: Page, exp: Experiment, seed: int) -> None:
    """The picked image's true class, and each loss's prediction and confidence from its stored logits."""
    ((_, picked),) = page.take(r"#(?P<index>\d+) · true class (?P<name>.+)", "image caption")
    index = int(picked["index"])
    runs = exp.of_seed(seed)
    label = int(runs[0].labels[index])
    assert picked["name"] == exp.class_names[label]
    cells = page.take(
        r"(?::red\[✗ )?(?P<name>.+): (?P<predicted>.+) \((?P<confidence>\d+%), (?P<verdict>right|wrong)\)\]?",
        "image caption",
    )
    assert len(cells) == len(runs)
    for shown, cell in cells:
        run = exp.run(cell["name"], seed)
        probabilities = softmax(run.features.test_logits.numpy()[index])
        predicted = int(probabilities.argmax())
        assert cell["predicted"] == exp.class_names[predicted], shown.text
        assert cell["verdict"] == ("right" if predicted == label else "wrong"), shown.text
        assert same_confidence(cell["confidence"], probabilities[predicted]), (shown.text, probabilities[predicted])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    return shifted / shifted.sum()


def same_confidence(shown: str, probability: float) -> bool:
    """A model's confidence, recomputed on an image rather than read from the stored logits, may differ from
    them in its last bits: only a value on the edge of a rounding step may then round the other way."""
    if shown == as_percent(probability, shown):
        return True
    return abs(abs(probability * 100 - int(shown.rstrip("%"))) - 0.5) < 1e-3


def test_feature_space(runs_dir, experiment):
    """Every panel's title at every epoch, the same-ray notes, the lessons over seeds, the projections' shares
    of variance, the inspector's predictions, and the sidebar; then another seed's panels."""
    page = open_page("pages/features.py", experiment)
    exp = experiment_of(runs_dir, experiment)
    seed = shown_seed(page, exp)
    check_sidebar(page, exp)
    check_feature_panels(page, exp, seed)
    check_same_ray_notes(page, exp, seed)
    check_lessons(page, exp)
    check_projections(page, exp, seed)
    check_inspector(page, exp, seed)
    ((_, caption),) = page.take(r"(?P<n>[\d,]+) test images, coloured by class; .*", "main caption")
    assert int(caption["n"].replace(",", "")) == len(exp.of_seed(seed)[0].snapshots.indices)
    no_unread_claims(page)
    if len(exp.seeds) > 1:  # another seed's panels: each its own run's numbers
        page.app.button_group(key=seeds.SEED_WIDGET).set_value(exp.seeds[-1]).run()
        again = Page(page.app)
        check_feature_panels(again, exp, exp.seeds[-1])
        check_same_ray_notes(again, exp, exp.seeds[-1])


# ---------------------------------------------------------------- Angles


def test_angles(runs_dir, experiment):
    """Each loss's angles and share beyond the margin, its three figures' data and labels, and the bound."""
    page = open_page("pages/angles.py", experiment)
    exp = experiment_of(runs_dir, experiment)
    seed = shown_seed(page, exp)
    check_sidebar(page, exp)
    runs = exp.of_seed(seed)
    dim = runs[0].record.config.feat_dim
    best = best_spacing_degrees(len(exp.class_names), dim)
    margin = page.app.slider(key="angle_margin").value
    ((shown, caption),) = page.take(
        r"All (?P<n>[\d,]+) test images\. .* at most (?:about )?(?P<best>[\d.]+°) apart.*", "main caption"
    )
    assert int(caption["n"].replace(",", "")) == len(runs[0].labels)
    assert caption["best"] == as_degrees(best, caption["best"]), shown.text
    headers = [shown.text.removeprefix("#### ") for shown, _ in page.take(r"#### .+", "main markdown")]
    numbers = page.take(
        r"\*\*(?P<within>[\d.]+°)\*\* within class · \*\*(?P<between>[\d.]+°)\*\* min between class means · "
        r"\*\*(?P<vector>[\d.]+°)\*\* min between (?P<vectors>.+?) · \*\*(?P<share>[\d.]+%)\*\* beyond "
        r"(?P<margin>\d+)°",
        "main markdown",
    )
    assert len(headers) == len(numbers) == len(runs)
    for header, (shown, line) in zip(headers, numbers, strict=True):
        run = exp.run(header, seed)
        features, labels, k = run.test_features, run.labels, run.n_classes
        angles = geometry.class_angles(features, labels, k)
        own, nearest, directions, uses_head = geometry.own_and_nearest_other(features, labels, k, run.directions)
        spacing = geometry.angles_deg(directions, directions)
        closest = geometry.min_off_diagonal(spacing)
        share = float(np.mean(nearest - own >= margin))
        assert line["within"] == as_degrees(angles["mean_within_class_angle"], line["within"]), shown.text
        assert line["between"] == as_degrees(angles["min_between_class_angle"], line["between"]), shown.text
        assert line["vector"] == as_degrees(closest, line["vector"]), shown.text
        assert (line["vectors"] == "class means") == (not uses_head), shown.text
        assert int(line["margin"]) == margin and line["share"] == as_percent(share, line["share"]), (shown.text, share)
        # the figures: each feature's angle to its own and nearest other class vector, pairs of features, and
        # each class vector's angle to its nearest other one
        bins = np.linspace(0, 180, 61)
        _, own_chart = page.chart(f"own-{run.record.run_id}")
        assert _title(own_chart) == f"angle of a feature to the {line['vectors']}"
        for trace, angles_of in zip(own_chart["data"], (own, nearest), strict=True):
            counts, _ = np.histogram(angles_of, bins=bins)
            assert np.allclose(values(trace, "y"), counts / len(angles_of)), trace["name"]
            assert np.allclose(values(trace, "x"), (bins[:-1] + bins[1:]) / 2)
        stats = geometry.angle_stats(features, labels, k, run.directions)
        _, pairs_chart = page.chart(f"pairs-{run.record.run_id}")
        for trace, angles_of in zip(pairs_chart["data"], (stats.within_pairs, stats.between_pairs), strict=True):
            counts, _ = np.histogram(angles_of, bins=bins)
            assert np.allclose(values(trace, "y"), counts / len(angles_of)), trace["name"]
        chart, spacing_chart = page.chart(f"spacing-{run.record.run_id}")
        title = re.fullmatch(
            r"(?P<vectors>.+): angle to the nearest other<br>\(min (?P<min>[\d.]+°)\)", _title(spacing_chart)
        )
        assert title and title["vectors"] == line["vectors"] and title["min"] == line["vector"], _title(spacing_chart)
        (bars,) = spacing_chart["data"]
        assert list(bars["x"]) == exp.class_names
        assert np.allclose(values(bars, "y"), geometry.nearest_off_diagonal(spacing))
        (label,) = spacing_chart["layout"]["annotations"]
        bound = re.fullmatch(r"closest pair at most (?:about )?(?P<best>[\d.]+°)(?: \(estimate\))?", label["text"])
        assert bound and bound["best"] == as_degrees(best, bound["best"]), label["text"]
        page.read_figure(chart)
    no_unread_claims(page)


# ---------------------------------------------------------------- Grad-CAM


def test_gradcam(runs_dir, experiment):
    """Each column's model (and its test accuracy where the header gives one), each image's true class, and
    each model's prediction and confidence on it, against the run's stored labels and logits."""
    page = open_page("pages/gradcam.py", experiment)
    exp = experiment_of(runs_dir, experiment)
    seed = shown_seed(page, exp)
    check_sidebar(page, exp)
    runs = exp.of_seed(seed)
    markdown = page.texts("main markdown")
    first = [shown.text for shown in markdown].index("**image**")  # the grid's header: then a column per model
    for shown, run in zip(markdown[first + 1 : first + 1 + len(runs)], runs, strict=True):
        shown.read = True
        assert shown.text.startswith(f"**{run.label}"), shown.text
        for accuracy in re.findall(r"[\d.]+%", shown.text):  # a model's accuracy beside its name is its own
            assert accuracy == as_percent(run.test_accuracy, accuracy), (shown.text, run.record.status)
    rows = page.take(r"#(?P<index>\d+) · (?P<name>.+)", "main image caption")
    assert rows
    cells = page.take(
        r"(?::red\[✗ )?predicted (?P<predicted>.+?) \((?P<confidence>\d+%)\)(?: · explains (?P<explains>.+?))?\]?",
        "main image caption",
    )
    assert len(cells) == len(rows) * len(runs)
    for row, (_, image) in enumerate(rows):
        index = int(image["index"])
        label = int(runs[0].labels[index])
        assert image["name"] == exp.class_names[label]
        for run, (shown, cell) in zip(runs, cells[row * len(runs) : (row + 1) * len(runs)], strict=True):
            probabilities = softmax(run.features.test_logits.numpy()[index])
            predicted = int(probabilities.argmax())
            assert cell["predicted"] == exp.class_names[predicted], (run.label, shown.text)
            assert shown.text.startswith(":red[✗") == (predicted != label), (run.label, shown.text)
            assert same_confidence(cell["confidence"], probabilities[predicted]), (shown.text, probabilities[predicted])
    stored = page.take(r"Images: the (?P<n>[\d,]+) test images .*", "main caption")
    for shown, line in stored:
        assert int(line["n"].replace(",", "")) == len(runs[0].labels), shown.text
    no_unread_claims(page)


# ---------------------------------------------------------------- Compare


def seed_metric_of(title: str) -> str:
    """The figure over seeds that a Compare figure's title names (its axis title comes first)."""
    (metric,) = [m for m, declared in SEED_METRICS.items() if title.startswith(f"{declared.axis_title} ")]
    return metric


def interval_text(metric: str, stats, like: str, signed: bool = False) -> str:
    """A mean with its interval as the app writes one ("96.1% [95.3, 96.9]": the ends without the unit), in
    the rule of the metric's kind at the decimals of ``like``; a paired difference in accuracy is signed and in
    points ("-0.8 pts [-28.3, +26.7]")."""
    mean_like = like.split(" [")[0].replace(" pts", "%")

    def number(value: float) -> str:
        if signed:
            digits = percent_digits(mean_like)
            return f"{wording.percent(value, digits):+.{digits}f}"
        return seed_metric_text(metric, value, mean_like).rstrip("%°")

    mean = f"{number(stats.mean)} pts" if signed else seed_metric_text(metric, stats.mean, mean_like)
    if stats.ci_low is None:
        return mean
    return f"{mean} [{number(stats.ci_low)}, {number(stats.ci_high)}]"


def check_summary_sources(exp: Experiment) -> None:
    """seed_stats' per-run test accuracy is the run's own (status.json, whole test set), as the sidebar's."""
    for summary in exp.summaries:
        for seed, accuracy in summary.values["test_acc"].items():
            run = exp.run(summary.variant, seed)
            assert wording.percent_text(accuracy) == wording.percent_text(run.test_accuracy), (summary.variant, seed)


def check_by_variant_table(page: Page, exp: Experiment, table) -> None:
    rows = table.value
    assert list(rows["variant"]) == [s.variant for s in exp.summaries]
    for (_, row), summary in zip(rows.iterrows(), exp.summaries, strict=True):
        assert row["seeds"] == f"{summary.n} of {summary.n + len(summary.left_out)}"
        for metric, declared in SEED_METRICS.items():
            cell = row[declared.axis_title]
            assert cell == interval_text(metric, summary.stats[metric], cell), (summary.variant, metric, cell)
        difference = row["accuracy vs baseline"]
        if summary.baseline is None:
            assert difference == "baseline"
        else:
            stats = summary.difference["test_acc"]
            assert difference == interval_text("test_acc", stats, difference, signed=True), (
                summary.variant,
                difference,
            )
    for shown in page.texts("table column"):
        if any(shown.text == str(cell) for cell in rows.to_numpy().ravel()):
            shown.read = True


def check_seed_figures(page: Page, exp: Experiment) -> None:
    """Each figure over seeds (by variant, and against a swept setting): every seed's dot and hover text, each
    mean and its interval's ends, from lab.analysis.seed_stats."""
    by_variant = {s.variant: s for s in exp.summaries}
    checked = 0
    for chart, spec in page.charts.items():
        title = _title(spec)
        if "by variant" not in title and " against " not in title:
            continue
        checked += 1
        metric = seed_metric_of(title)
        axis = "x" if "by variant" in title else "y"
        for trace in spec["data"]:
            hovers = _strings(trace.get("hovertext"))
            coordinates = values(trace, axis)
            for hover, coordinate in zip(hovers, coordinates, strict=True):
                dot = re.fullmatch(r"(?P<name>.+?)<br>seed (?P<seed>\d+): (?P<value>.+)", hover)
                if dot:
                    value = by_variant[dot["name"]].values[metric][int(dot["seed"])]
                    assert coordinate == value, (title, hover)
                    assert dot["value"] == seed_metric_text(metric, value, dot["value"]), (title, hover, value)
                    continue
                mean = re.fullmatch(
                    r"(?P<name>.+?)<br>(?:mean (?P<mean>.+) over (?P<n>\d+) seeds<br>95% CI (?P<low>.+) to (?P<high>.+)"
                    r"|(?P<one>.+) \(one seed: no interval\))",
                    hover,
                )
                assert mean, f"a hover text not understood: {hover!r} in {title!r}"
                stats = by_variant[mean["name"]].stats[metric]
                assert coordinate == stats.mean, (title, hover)
                if mean["one"]:
                    assert stats.n == 1 and mean["one"] == seed_metric_text(metric, stats.mean, mean["one"])
                    continue
                assert int(mean["n"]) == stats.n, hover
                for shown_value, source in (
                    (mean["mean"], stats.mean),
                    (mean["low"], stats.ci_low),
                    (mean["high"], stats.ci_high),
                ):
                    assert shown_value == seed_metric_text(metric, source, shown_value), (title, hover, source)
            error = trace.get("error_x" if axis == "x" else "error_y", {})
            if error.get("array") and "mean" in trace["name"] and axis == "x":
                stats = by_variant[trace["name"].removesuffix(": mean")].stats[metric]
                assert np.allclose(
                    [stats.mean + error["array"][0], stats.mean - error["arrayminus"][0]], [stats.ci_high, stats.ci_low]
                ), title
        page.read_figure(chart)
    assert checked >= len(SEED_METRICS), "a figure per figure over seeds"


def check_every_run_table(page: Page, exp: Experiment, table) -> None:
    rows = table.value
    columns = json.loads(table.proto.columns)
    assert columns["test accuracy"]["type_config"]["format"] == "%.1f%%"
    assert columns["k-NN accuracy"]["type_config"]["format"] == "%.1f%%"
    assert columns["within-class angle (°)"]["type_config"]["format"] == "%.1f"
    assert columns["min between-class angle (°)"]["type_config"]["format"] == "%.1f"
    assert len(rows) == len(exp.runs)
    for (_, row), run in zip(rows.iterrows(), exp.runs, strict=True):
        assert row["loss"] == run.label
        if "seed" in rows:
            assert row["seed"] == run.seed
        assert row["status"] == run.record.state
        assert row["test accuracy"] == wording.percent(run.test_accuracy), (run.label, row["test accuracy"])
        angles = geometry.class_angles(run.test_features, run.labels, run.n_classes)
        assert row["within-class angle (°)"] == pytest.approx(angles["mean_within_class_angle"], abs=1e-9)
        assert row["min between-class angle (°)"] == pytest.approx(angles["min_between_class_angle"], abs=1e-9)
        assert row["k-NN accuracy"] == wording.percent(geometry.knn_accuracy(run.test_features, run.labels))
        assert row["training time (s)"] == run.record.status["train_seconds"]
    for shown in page.texts("table column"):
        if any(shown.text == str(cell) for cell in rows.to_numpy().ravel()):
            shown.read = True


def check_run_bars(page: Page, exp: Experiment) -> None:
    """One experiment seed: a bar per run for accuracy and the two angles, each bar's length and its label."""
    sources = {
        "test accuracy": lambda run: run.test_accuracy,
        "within-class angle (°)": lambda run: geometry.class_angles(run.test_features, run.labels, run.n_classes)[
            "mean_within_class_angle"
        ],
        "min between-class angle (°)": lambda run: geometry.class_angles(run.test_features, run.labels, run.n_classes)[
            "min_between_class_angle"
        ],
    }
    bars = {_title(spec): (chart, spec) for chart, spec in page.charts.items() if spec["data"][0]["type"] == "bar"}
    assert set(sources) <= set(bars)
    for title, source in sources.items():
        chart, spec = bars[title]
        (trace,) = spec["data"]
        assert list(trace["y"]) == [run.label for run in exp.runs]
        for run, length, text in zip(exp.runs, values(trace, "x"), trace["text"], strict=True):
            value = source(run)
            if title == "test accuracy":
                assert length == pytest.approx(wording.percent(value) / 100) and text == as_percent(value, text), text
            else:
                assert length == pytest.approx(value, abs=1e-9) and text == as_degrees(value, text), (title, text)
        page.read_figure(chart)


def test_compare(runs_dir, experiment):
    """The table of every run, and by variant over seeds the summary table and figures (several seeds) or a bar
    per run (one seed)."""
    page = open_page("pages/compare.py", experiment)
    exp = experiment_of(runs_dir, experiment)
    check_sidebar(page, exp)
    check_summary_sources(exp)
    tables = page.app.dataframe
    several = any(s.n > 1 for s in exp.summaries)
    if several:
        check_by_variant_table(page, exp, tables[0])
        check_seed_figures(page, exp)
        check_every_run_table(page, exp, tables[1])
    else:
        check_every_run_table(page, exp, tables[0])
        check_run_bars(page, exp)
    for shown, line in page.take(r"\*\*(?P<name>.+?)(?: · seed (?P<seed>\d+))?\*\*", "main markdown"):
        assert exp.run(line["name"], int(line["seed"] or exp.seeds[0])), shown.text
    no_unread_claims(page)


# ---------------------------------------------------------------- Train and Learn


def run_names(exp: Experiment) -> dict[str, Run]:
    """Each run by the name the live view gives it: its variant, and its seed when there are several."""
    several = len(exp.seeds) > 1
    return {variant_label(run.record.config) + (f" · seed {run.seed}" if several else ""): run for run in exp.runs}


def check_curves(page: Page, exp: Experiment) -> None:
    """The live view's curves: every run's training loss and accuracy after each epoch (metrics.jsonl), the
    accuracy named by the images it was measured on."""
    names = run_names(exp)
    curves = {
        _title(spec): (chart, spec)
        for chart, spec in page.charts.items()
        if "after each epoch" in _title(spec) or _title(spec) == "training loss"
    }
    (accuracy_title,) = [title for title in curves if "accuracy" in title]
    named = re.fullmatch(
        r"(?:test accuracy|accuracy on (?P<images>[\d,]+) test images), after each epoch", accuracy_title
    )
    assert named, f"each epoch's accuracy must say what it was measured on: {accuracy_title!r}"
    measured_on = int(named["images"].replace(",", "")) if named["images"] else len(exp.runs[0].labels)
    for title, (chart, spec) in curves.items():
        key = "train_loss" if title == "training loss" else "test_acc"
        assert [trace["name"] for trace in spec["data"]] == list(names)
        for trace in spec["data"]:
            metrics = names[trace["name"]].record.metrics
            assert list(values(trace, "x")) == [line["epoch"] for line in metrics]
            assert list(values(trace, "y")) == [line[key] for line in metrics]
            if key == "test_acc":  # the title names the images each run's figures were measured on
                assert {line["eval_images"] for line in metrics} == {measured_on}, (accuracy_title, trace["name"])
        page.read_figure(chart)


def test_train_as_a_viewer(runs_dir, experiment):
    """The Train page of a viewer who followed the experiment's training to its end (from its run files): each
    run's state and test accuracy, and the curves."""
    page = open_page("pages/train.py", experiment, state={session.FOLLOWED: experiment})
    exp = experiment_of(runs_dir, experiment)
    check_sidebar(page, exp)
    names = run_names(exp)
    bars = page.take(r"\*\*(?P<name>.+?)\*\*: (?P<state>\w+)(?: · test accuracy (?P<accuracy>[\d.]+%))?", "progress")
    assert [bar["name"] for _, bar in bars] == list(names)
    for shown, bar in bars:
        run = names[bar["name"]]
        assert bar["state"] == run.record.state, shown.text
        assert bar["accuracy"] == as_percent(run.test_accuracy, bar["accuracy"]), shown.text
    check_curves(page, exp)
    no_unread_claims(page)


def test_train_of_the_browser_that_trained_it(runs_dir):
    """The Train page of the browser whose job trained the fresh experiment (from the job's progress): each run's
    end, the epochs it trained, the curves, and each feature preview's epoch."""
    page = open_page("pages/train.py", FRESH, credential=CREDENTIAL)
    exp = experiment_of(runs_dir, FRESH)
    check_sidebar(page, exp)
    names = run_names(exp)
    bars = page.take(r"\*\*(?P<name>.+?)\*\*: (?P<state>\w+)(?P<message>.*)", "progress")
    assert [bar["name"] for _, bar in bars] == list(names)
    for shown, bar in bars:
        run = names[bar["name"]]
        assert bar["state"] == run.record.state, shown.text
        for epochs in re.findall(r"(\d+) epochs", bar["message"]):
            assert int(epochs) == run.record.config.epochs, shown.text
    check_curves(page, exp)
    # the previews: a heading per variant over a preview per seed, each after the run's last epoch
    variant, previews = None, 0
    for shown in page.texts("main markdown"):
        heading = re.fullmatch(r"\*\*(?P<variant>.+)\*\*", shown.text)
        preview = re.fullmatch(r"seed (?P<seed>\d+) · epoch (?P<epoch>\d+)", shown.text)
        if heading and heading["variant"] in {run.label for run in exp.runs}:
            variant = heading["variant"]
        elif preview:
            run = exp.run(variant, int(preview["seed"]))
            assert int(preview["epoch"]) == run.record.metrics[-1]["epoch"], shown.text
            shown.read, previews = True, previews + 1
    assert previews == len(exp.runs)
    no_unread_claims(page)


ACCURACY_OR_EPOCH = re.compile(rf"accuracy[^.]*?{NUMBER}\s*%|\bepochs? {NUMBER}|{NUMBER} epochs?\b", re.I)


def test_learn_shows_no_run_numbers(runs_dir):
    """Learn states no run's accuracy or epoch, and its angles and shares (a loss's default margin, the lesson's
    10° margin) are the same whichever experiment is open: they come from the losses' declarations."""
    shown = {}
    for experiment in EXPERIMENTS:
        page = open_page("pages/learn.py", experiment)
        main = [s.text for s in page.texts("main")]
        assert not [t for t in main if ACCURACY_OR_EPOCH.search(t)], [t for t in main if ACCURACY_OR_EPOCH.search(t)]
        shown[experiment] = sorted(t for t in main if CLAIM.search(t))
    assert shown[EXPERIMENTS[0]], "Learn's lessons name angles"
    assert all(texts == shown[EXPERIMENTS[0]] for texts in shown.values())
