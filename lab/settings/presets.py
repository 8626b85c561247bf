"""The papers' experiments, each declared once: ``python -m lab preset NAME`` and the Train page's preset
picker read these declarations.

A :class:`Preset` names its variants and seeds, the settings that keep it to a few minutes on two CPU
cores, the paper it reproduces with a sentence on what the paper showed and what to look for here, and
the time it took when measured (``seconds``, under ``measured``). Its dataset is the first of
``datasets`` with a copy on this machine: MNIST as the papers used, else Fashion-MNIST (Debian's
package folder counts), else scikit-learn's bundled 8x8 digits with a note that the picture is rougher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lab import datasets
from lab.settings.config import RunConfig
from lab.settings.experiment import Variant, experiment_name, make_experiment

BUNDLED_FALLBACK_NOTE = (
    "scikit-learn's 8x8 digits (1,797 images) stand in: the shapes are rougher than the paper's 28x28 "
    "pictures; put MNIST in the data folder for the real thing"
)


class PresetError(ValueError):
    """No preset of that name."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One paper experiment. ``variants`` are ``--losses`` variants (``lsoftmax:margin=4``), ``hparams``
    apply to every variant of a loss; ``seconds`` is how long the whole preset took on two CPU cores,
    measured as ``measured`` says."""

    name: str
    title: str
    paper: str
    showed: str
    look_for: str
    variants: tuple[str, ...]
    seconds: float
    measured: str
    hparams: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    feat_dim: int = 2
    model: str = "small"
    epochs: int = 6
    train_limit: int = 10_000
    datasets: tuple[str, ...] = ("mnist", "fashion-mnist", "digits")

    @property
    def n_runs(self) -> int:
        return len(self.variants) * len(self.seeds)

    def sentence(self) -> str:
        """What the paper showed and what to look for, as the picker and the CLI say it."""
        return f"{self.paper}: {self.showed} Look for: {self.look_for}"

    def duration(self) -> str:
        """The measured time in words: ``about 3 min on 2 CPU cores``."""
        minutes = self.seconds / 60
        amount = f"{minutes:.0f} min" if minutes >= 1.5 else f"{self.seconds:.0f} s"
        return f"about {amount} on 2 CPU cores"

    def choose_dataset(self, data_root: str | None = None, dataset: str | None = None) -> tuple[str, str]:
        """The dataset to train on and a note when it is not the paper's: ``dataset`` when asked for (one of
        ``datasets``), else the first of ``datasets`` that is bundled or has a copy here; with none, the first
        (downloaded, or its usual missing-files error)."""
        first = datasets.info(self.datasets[0])
        if dataset is not None:
            if dataset not in self.datasets:
                raise PresetError(
                    f"dataset: preset {self.name} trains on {', '.join(self.datasets)}, not {dataset!r}; "
                    "pick one of those or leave --dataset out"
                )
            if dataset == first.name:
                return dataset, ""
            return dataset, f"the paper used {first.label}: training on {datasets.info(dataset).label} as asked"
        for name in self.datasets:
            entry = datasets.info(name)
            found = None if entry.offline else entry.local_copy(data_root)
            if entry.offline or found is not None:
                if name == self.datasets[0]:
                    # a folder that simply holds four IDX files is a copy of MNIST and of Fashion-MNIST alike
                    alike = [o for o in self.datasets[1:] if datasets.info(o).local_copy(data_root) == found]
                    if alike:
                        return name, (
                            f"the files in {found} do not say which dataset they are: training on {entry.label}; "
                            f"add --dataset {alike[0]} if they are {datasets.info(alike[0]).label}"
                        )
                    return name, ""
                if entry.offline:
                    return (
                        name,
                        f"{first.label} and the other 28x28 datasets are not on this machine: {BUNDLED_FALLBACK_NOTE}",
                    )
                return (
                    name,
                    f"{first.label} is not on this machine: training on {entry.label}, the same size and layout",
                )
        return first.name, f"{first.label} is not on this machine: LossLens will try to download it"

    def configs(
        self,
        data_root: str | None = None,
        device: str = "auto",
        *,
        dataset: str | None = None,
        seeds: Sequence[int] | None = None,
        epochs: int | None = None,
        train_limit: int | None = None,
    ) -> list[RunConfig]:
        """The preset's runs on the chosen dataset (:meth:`choose_dataset`), in a new experiment named after the
        preset; ``seeds``, ``epochs`` and ``train_limit`` replace the preset's own where given."""
        dataset, _ = self.choose_dataset(data_root, dataset)
        template = RunConfig(
            dataset=dataset,
            data_root=data_root,
            model=self.model,
            feat_dim=self.feat_dim,
            epochs=self.epochs if epochs is None else epochs,
            train_limit=self.train_limit if train_limit is None else train_limit,
            device=device,
        )
        template = template.replace(experiment=experiment_name(template, preset=self.name))
        chosen = self.seeds if seeds is None else tuple(seeds)
        return make_experiment(template, [Variant.parse(spec) for spec in self.variants], self.hparams, chosen)

    def to_json(self, data_root: str | None = None) -> dict[str, Any]:
        """The line ``python -m lab preset --list`` prints."""
        dataset, note = self.choose_dataset(data_root)
        return {
            "name": self.name,
            "title": self.title,
            "about": self.sentence(),
            "variants": list(self.variants),
            "seeds": list(self.seeds),
            "runs": self.n_runs,
            "dataset": dataset,
            "dataset_note": note,
            "feat_dim": self.feat_dim,
            "epochs": self.epochs,
            "train_limit": self.train_limit,
            "seconds": self.seconds,
            "measured": self.measured,
        }


# The times are bench/presets.py's (bench/RESULTS.md, "presets (full)"): each preset trained in full, as
# declared, on Fashion-MNIST with two torch threads on an otherwise quiet 2-core machine, one preset after
# another in one process (so imports and the first read of the dataset are not in these figures; a fresh
# ``python -m lab preset`` adds a few seconds). MNIST is the same size; the 8x8 digits stand-in is faster.
# On a machine whose cores other work keeps busy, expect two to four times longer.
MEASURED = "wall time of the whole preset on 2 quiet CPU cores, Fashion-MNIST"


def against_softmax(loss: str, **declared: Any) -> Preset:
    """A preset that trains ``loss`` beside softmax over three seeds, 5 epochs on 6,000 images: the paired
    comparisons."""
    return Preset(variants=("softmax", loss), seeds=(0, 1, 2), epochs=5, train_limit=6_000, **declared)


PRESETS: tuple[Preset, ...] = (
    Preset(
        name="lsoftmax-fig2",
        title="L-Softmax margins in 2-D (m = 1, 2, 3, 4)",
        paper="Liu et al. 2016, Large-Margin Softmax Loss, Fig. 2",
        showed=(
            "On MNIST with 2-D features, a larger margin m squeezed each class into a thinner ray and left wider "
            "empty angles between the classes (m = 1 is softmax without a bias)."
        ),
        look_for=(
            "on Feature space the rays narrowing from m=1 to m=4, and in the summary the mean within-class angle "
            "falling as m grows."
        ),
        variants=("lsoftmax:margin=1", "lsoftmax:margin=2", "lsoftmax:margin=3", "lsoftmax:margin=4"),
        seconds=208,
        measured=MEASURED,
    ),
    Preset(
        name="center-lambda",
        title="Center loss weight lambda in 2-D (0.0001 to 0.1)",
        paper="Wen et al. 2016, A Discriminative Feature Learning Approach for Deep Face Recognition, Fig. 3",
        showed=(
            "With softmax plus center loss on MNIST's 2-D features (alpha 0.5), raising lambda pulled every "
            "feature towards its class center: long spokes became compact blobs."
        ),
        look_for=(
            "on Feature space the clusters tightening as lambda grows, most between 0.01 and 0.1. This app's "
            "features leave a BatchNorm with norms of 4 to 8, not the paper's tens, so the same lambda pulls "
            "less here; add a variant with lambda=1 on the Train page to push further (on Fashion-MNIST it cost "
            "about 5 points of accuracy, bench/RESULTS.md)."
        ),
        # the paper's four values only: the preset reproduces its figure, and a fifth would be a guess
        variants=("center:weight=0.0001", "center:weight=0.001", "center:weight=0.01", "center:weight=0.1"),
        hparams={"center": {"alpha": 0.5}},
        seconds=210,
        measured=MEASURED,
    ),
    against_softmax(
        "amc",
        name="amc-gradcam",
        title="Softmax vs AMC-Loss on 28x28 images, 3 seeds",
        paper="Choi et al. 2020, AMC-Loss: Angular Margin Contrastive Loss for Improved Explainability",
        showed=(
            "Adding the angular margin contrastive term to cross-entropy gave a modest accuracy gain and Grad-CAM "
            "maps that sat more tightly on the object."
        ),
        look_for=(
            "on Grad-CAM the maps and faithfulness of each variant seed by seed, and in the summary whether the "
            "accuracy difference is larger than its confidence interval."
        ),
        feat_dim=16,
        datasets=("mnist", "fashion-mnist"),
        seconds=139,
        measured=MEASURED,
    ),
    against_softmax(
        "opl",
        name="opl-vs-ce",
        title="Orthogonal Projection Loss vs cross-entropy, 3 seeds",
        paper="Ranasinghe et al. 2021, Orthogonal Projection Loss",
        showed=(
            "Adding OPL to cross-entropy made the classes' features orthogonal to each other and raised accuracy "
            "by about a point on CIFAR-100 and ImageNet."
        ),
        look_for=(
            "in the summary the paired accuracy difference and its interval, and between-class angles near 90 "
            "degrees on Angles (16-D features: room for 10 orthogonal classes)."
        ),
        feat_dim=16,
        seconds=142,
        measured=MEASURED,
    ),
    against_softmax(
        "lmd",
        name="lmd-vs-softmax",
        title="Large Margin Discriminative loss vs softmax, 3 seeds",
        paper="Nguyen et al. 2024, Large Margin Discriminative Loss for Classification",
        showed=(
            "Adding LMD's compactness and margin terms to cross-entropy gave compact classes whose centers sit "
            "away from the decision boundaries (CIFAR-10 with a ResNet-18: 91.3% to 93.9%, one run)."
        ),
        look_for=(
            "on Feature space round blobs instead of softmax's wedges, and in the summary whether a one-run "
            "accuracy gap survives three seeds."
        ),
        seconds=145,
        measured=MEASURED,
    ),
    Preset(
        name="face-margins",
        title="SphereFace, CosFace and ArcFace vs softmax on the 3-D sphere",
        paper="Liu et al. 2017 (SphereFace), Wang et al. 2018 (CosFace), Deng et al. 2019 (ArcFace)",
        showed=(
            "The face-recognition margins normalize the class weights (and, for CosFace and ArcFace, the features) "
            "so only angles decide, and each margin leaves gaps between the classes on the sphere."
        ),
        look_for=(
            "on Feature space each class a tight patch on the sphere with empty bands between them, and in the "
            "summary a lower within-class angle and a larger minimum between-class angle than softmax."
        ),
        variants=("softmax", "sphereface", "cosface", "arcface"),
        feat_dim=3,
        seconds=137,
        measured=MEASURED,
    ),
)


def names() -> list[str]:
    return [preset.name for preset in PRESETS]


def get(name: str) -> Preset:
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise PresetError(f"preset: no preset called {name!r} (choose from: {', '.join(names())})")
