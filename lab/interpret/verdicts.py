"""What the interpretability statistics mean, in words: whether maps do what maps should against the random map,
the outcome of a loss against the reference, and the sentences the app and the CLI show."""

from __future__ import annotations

import math

from lab.interpret.statistics import (
    BETTER,
    METRICS,
    NO_DIFFERENCE,
    NOT_DISTINGUISHABLE,
    WORSE,
    Comparison,
    MetricResult,
    SeedResult,
)


def meets_baseline(result: MetricResult | SeedResult) -> bool:
    """Whether ``result``'s maps do what maps should against the random map on its metric: better than
    it, and for the randomization check no more like the trained model's maps than a random map is."""
    if result.name == "randomization_similarity":
        return result.verdict in (BETTER, NOT_DISTINGUISHABLE)
    return result.verdict == BETTER


def against_random(result: MetricResult | SeedResult) -> str:
    """The verdict against the random map in words: "worse than a random map", "passes the sanity check"."""
    verdict = result.verdict
    if result.name == "randomization_similarity":
        if verdict is None:
            return "sanity check not tested"
        return "partly fails the sanity check" if verdict == WORSE else "passes the sanity check"
    if verdict is None:
        return "not tested against a random map"
    return {BETTER: "better than", WORSE: "worse than", NOT_DISTINGUISHABLE: "not distinguishable from"}[
        verdict
    ] + " a random map"


def _maps_are(result: MetricResult | SeedResult) -> str:
    if result.name == "randomization_similarity":
        return "partly fail the sanity check" if result.verdict == WORSE else "were not tested against a random map"
    return f"are {against_random(result)}" if result.verdict is not None else "were not tested against a random map"


def outcome(comparison: Comparison, own: MetricResult | SeedResult) -> str:
    """A against the reference in a word or a qualified phrase: ``better`` only where A's own maps meet
    the random-map baseline (:func:`meets_baseline`); a significant difference in the good direction by
    maps that do not reads "higher, but worse than a random map"; else ``worse`` or
    ``no significant difference``."""
    if comparison.better is None:
        return NO_DIFFERENCE
    if not comparison.better:
        return WORSE
    if meets_baseline(own):
        return BETTER
    side = "higher" if (comparison.difference or 0.0) > 0 else "lower"
    return f"{side}, but {against_random(own)}"


def _magnitude(value: float, half_width: float, percent: bool) -> str:
    """``12 ± 3%`` / ``0.031 ± 0.008``: the half width shown to one significant digit, the value to match."""
    scale = 100.0 if percent else 1.0
    value, half_width = abs(value) * scale, half_width * scale
    decimals = max(0, -math.floor(math.log10(half_width))) if half_width > 0 else (0 if percent else 3)
    unit = "%" if percent else ""
    return f"{value:.{decimals}f} ± {half_width:.{decimals}f}{unit}"


def p_text(p: float | None) -> str:
    """An adjusted p-value as the page and sentences show it: ``p = 0.034``, ``p < 0.001``."""
    if p is None:
        return "p: untested"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def sentence(comparison: Comparison, a: str, b: str, own: MetricResult | SeedResult | None = None) -> str:
    """A plain sentence with the number, e.g. "AMC puts 12 ± 3% more of the map on the object than softmax
    on these 500 images (better; Holm-adjusted p = 0.002)." ± is half the CI's width. With ``own`` (A's
    result on this metric), a difference in the good direction by maps that do not beat a random map says
    so instead of "better"."""
    spec = METRICS[comparison.name]
    on = comparison.where()
    if comparison.difference is None or comparison.ci_low is None or comparison.ci_high is None:
        unit = "seeds" if comparison.over == "seeds" else "images"
        return f"Too few {unit} with a {spec.label} to compare {a} and {b} ({comparison.n})."
    half = (comparison.ci_high - comparison.ci_low) / 2
    shown = _magnitude(comparison.difference, half, spec.percent)
    p = f"Holm-adjusted {p_text(comparison.p_adjusted)}"
    if not comparison.significant:
        sign = "-" if comparison.difference < 0 else "+"
        return (
            f"No significant difference in {spec.label} between {a} and {b} {on} ({a} minus {b}: {sign}{shown}; {p})."
        )
    template = spec.more if comparison.difference > 0 else spec.less
    text = template.format(a=a, b=b, m=shown, on=on)
    if comparison.better and own is not None and not meets_baseline(own):
        return f"{text}; not better maps, since {a}'s maps {_maps_are(own)} on this metric ({p})."
    return f"{text} ({'better' if comparison.better else 'worse'}; {p})."
