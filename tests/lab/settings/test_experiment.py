"""Experiments as variants x seeds: each variant labelled by its paper's name and its own settings, malformed
variants and seeds refused (repeats found in one look at each seed), and every variant run with every seed."""

from __future__ import annotations

import pytest

from lab.settings.config import RunConfig
from lab.settings.errors import ConfigError
from lab.settings.experiment import Variant, make_experiment, parse_seeds, parse_variants, variant_label


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("lsoftmax:margin=4", "L-Softmax m=4"),
        ("center:weight=0.001", "Center loss lambda=0.001"),
        ("amc:margin=0.4:weight=0.2", "AMC-Loss margin=0.4 lambda=0.2"),
        ("cosface:margin=0.1:scale=8", "CosFace (AM-Softmax) m=0.1 s=8"),
        ("arcface:margin=0.3", "ArcFace margin=0.3"),  # its help names no symbol first
        ("softmax", "Softmax cross-entropy"),
    ],
)
def test_a_variant_is_labelled_by_its_papers_name_and_its_own_settings(spec, label):
    variant = Variant.parse(spec)
    assert variant.default_label() == label and variant.spec == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lsoftmax:margin", "write a variant as NAME or NAME:key=value"),
        ("lsoftmax:margin=2:margin=3", "sets margin twice"),
        (":margin=2", "a variant starts with a loss name"),
    ],
)
def test_a_malformed_variant_says_how_to_write_one(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_variants(text)


def test_an_experiment_is_every_variant_with_every_seed_seed_by_seed():
    template = RunConfig(epochs=3, experiment="exp")
    configs = make_experiment(
        template,
        ["softmax", "lsoftmax:margin=2", "lsoftmax:margin=4"],
        {"lsoftmax": {"lambda_min": "0", "margin": "3"}},
        seeds=[0, 1],
    )
    assert [(c.seed, c.variant) for c in configs] == [
        (0, "Softmax cross-entropy"),
        (0, "L-Softmax m=2"),
        (0, "L-Softmax m=4"),
        (1, "Softmax cross-entropy"),
        (1, "L-Softmax m=2"),
        (1, "L-Softmax m=4"),
    ]
    # --hparam reaches every variant of its loss; a variant's own setting wins over it
    assert [(c.loss_params["margin"], c.loss_params["lambda_min"]) for c in configs[1:3]] == [(2, 0.0), (4, 0.0)]
    assert {c.experiment for c in configs} == {"exp"} and {c.epochs for c in configs} == {3}
    assert make_experiment(RunConfig(seed=7), ["softmax"])[0].seed == 7, "no seeds: the template's"


@pytest.mark.parametrize(
    ("variants", "seeds", "message"),
    [
        (["lsoftmax:margin=2", "lsoftmax"], None, "lsoftmax named more than once with the same settings"),
        (["softmax"], [0, 1, 0], "seeds: 0 named more than once"),
        (["softmax"], [], "seeds: choose at least one seed"),
        (["lsoftmax:margin=9"], None, "lsoftmax.margin: must be"),
        (["lsoftmax:width=2"], None, "unknown hyperparameter width"),
        ([Variant("softmax", label="A"), Variant("lsoftmax", label="A")], None, "two variants are labelled 'A'"),
        (["softmax"], [-1], "seed: must be an integer from 0"),
    ],
)
def test_an_experiment_refuses_ambiguous_variants_and_seeds(variants, seeds, message):
    with pytest.raises(ConfigError, match=message):
        make_experiment(RunConfig(), variants, seeds=seeds)


def test_seeds_parse_from_a_comma_separated_list():
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(ConfigError, match="seeds: 'x' is not a number: .*; write them as 0,1,2"):
        parse_seeds("0,x")


def test_a_run_made_before_variants_is_labelled_by_its_loss():
    assert variant_label(RunConfig(loss="lsoftmax")) == "L-Softmax"
    assert variant_label(RunConfig(loss="lsoftmax", variant="L-Softmax m=4")) == "L-Softmax m=4"


class CountedSeed(int):
    """A seed that counts how often it is compared with another."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedSeed.comparisons += 1
        return int(self) == other

    __hash__ = int.__hash__


def test_checking_seeds_for_repeats_takes_a_look_at_each_seed_not_each_pair():
    seeds = [CountedSeed(n) for n in range(2000)]
    CountedSeed.comparisons = 0
    assert len(make_experiment(RunConfig(), ["softmax"], seeds=seeds)) == 2000
    assert CountedSeed.comparisons < 10 * len(seeds), CountedSeed.comparisons
