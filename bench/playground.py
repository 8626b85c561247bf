"""Loss playground: how long the Learn page's playground takes to update on two CPU threads.

    python -m bench.playground           # every loss the playground offers, 10 classes, 5 repetitions
    python -m bench.playground --quick   # one loss, 2 repetitions (CI)

One update is what a change of a control costs the server: the loss over the plane and its arrows
(``lab.analysis.playground.loss_field``: the real head on a 51 x 51 grid and a 15 x 15 grid of gradients), the
plotly figure (``lab.figures.loss_field_figure``) serialised to the JSON Streamlit sends, and the
readings of every loss at a picked point (``lab.analysis.playground.readings``). Torch runs on two threads, as
on the two-core machines the target is set for; the browser's drawing is not included. The figure per
loss is the median over the repetitions, after one warm-up update.
"""

from __future__ import annotations

import numpy as np

from bench.common import Report, median, parser, resolve, timed, torch_threads
from lab import figures
from lab.analysis import playground
from losses import names

THREADS = 2
TARGET_SECONDS = 0.5
CLASSES = 10


def update(name: str, label: int, point: tuple[float, float], offered: list[str]) -> None:
    """Everything the server computes when a playground control changes."""
    directions = playground.evenly_spaced(CLASSES)
    field = playground.loss_field(name, directions, label)
    fig = figures.loss_field_figure(
        field,
        directions,
        [str(c) for c in range(CLASSES)],
        label,
        picked=np.array(point),
    )
    fig.to_json()
    playground.readings(offered, directions, label, np.array(point))


def main(argv: list[str] | None = None) -> Report:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    device = resolve("cpu")
    offered = [name for name in names() if playground.has_own_value(name)]
    measured = offered[:1] if args.quick else offered
    repeats = 2 if args.quick else 5
    with torch_threads(THREADS):  # before the report, whose header records the thread count
        report = Report(
            "playground",
            args,
            device,
            f"{CLASSES} classes, {playground.FIELD_RESOLUTION}^2 loss grid, {playground.ARROWS_PER_SIDE}^2 arrows, "
            f"readings of {len(offered)} losses, torch on {THREADS} threads, {repeats} repetitions, median",
        )
        worst = 0.0
        for name in measured:
            update(name, 0, (0.5, 1.0), offered)  # warm-up: vmap's first trace of this head
            seconds = [
                timed(lambda n=name, r=r: update(n, r % CLASSES, (0.5, 1.0), offered))[0] for r in range(repeats)
            ]
            took = median(seconds)
            worst = max(worst, took)
            report.figure(
                f"update/{name}",
                took,
                "s",
                target=f"<= {TARGET_SECONDS} s",
                met=took <= TARGET_SECONDS,
                note=", ".join(f"{s:.3f}" for s in seconds),
            )
        report.figure("update/slowest", worst, "s", target=f"<= {TARGET_SECONDS} s", met=worst <= TARGET_SECONDS)
    report.write()
    return report


if __name__ == "__main__":
    main()
