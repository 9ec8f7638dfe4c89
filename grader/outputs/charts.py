"""Small inline SVG charts for the class summary, drawn once a run (a report's training
curves are drawn without matplotlib: grader/outputs/curves.py).

Figures are built with matplotlib's object API rather than pyplot, so no global figure
state leaks between the charts of one run. The SVG is meant to be pasted straight
into HTML: no XML prolog, text kept as text (small, selectable) and no external resources.
"""

from __future__ import annotations

import io
import re
from html import escape

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

from grader.outputs.curves import REFERENCE_COLOUR, STUDENT_COLOUR

RATIO_TICKS = (1.0, 2.0, 5.0)  # the log axis's ticks: 0.5×, 1×, 2×, 5×, 10×…
HISTOGRAM_BINS = 10

_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "grader",  # deterministic ids, so identical inputs give identical reports
    "font.size": 8,
    "font.sans-serif": ["DejaVu Sans"],
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_styled = matplotlib.rc_context(_STYLE)  # rcParams are read both when drawing and when saving
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
_GROUP_ID = re.compile(r'<g id="[^"]*"')


def _to_svg(fig: Figure, kind: str, title: str) -> str:
    """Serialise for inline use: drop the prolog, tag the root and give it a title."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    # Group ids (figure_1, axes_1, ...) repeat across charts and nothing refers to them;
    # dropping them keeps ids unique on a page holding several charts.
    svg = _GROUP_ID.sub("<g", svg)
    root_end = svg.index(">") + 1
    root = svg[:root_end].replace("<svg ", f'<svg class="chart chart-{kind}" role="img" ', 1)
    return f"{root}\n <title>{escape(title)}</title>{svg[root_end:]}"


@_styled
def histogram_svg(scores: list[float], max_score: float) -> str:
    """How the class's scores spread between zero and the maximum; "" when there are none."""
    if not scores:
        return ""
    top = max_score if max_score > 0 else 1.0
    fig = Figure(figsize=(5.0, 2.4), layout="constrained")
    ax = fig.add_subplot()
    clipped = [min(max(score, 0.0), top) for score in scores]
    ax.hist(clipped, bins=HISTOGRAM_BINS, range=(0, top), color=STUDENT_COLOUR, edgecolor="white")
    ax.set_xlim(0, top)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("score")
    ax.set_ylabel("students")
    return _to_svg(fig, "histogram", f"Histogram of {len(scores)} scores out of {top:g}")


@_styled
def pass_rates_svg(rates: dict[str, float], what: str = "test") -> str:
    """One horizontal bar per test (or exercise), in the given order from the top; "" when
    there are none. Wide enough that long test names and the labels read at 1280 px."""
    if not rates:
        return ""
    names = list(rates)
    values = [min(max(rate, 0.0), 1.0) for rate in rates.values()]
    fig = Figure(figsize=(8.0, 0.7 + 0.24 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.barh(names, values, color=STUDENT_COLOUR)
    ax.bar_label(bars, labels=[f"{value:.0%}" for value in values], padding=2)
    ax.set_xlim(0, 1.12)  # room for the label of a full bar
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.invert_yaxis()
    ax.set_xlabel("students passing")
    kind = "pass-rates" if what == "test" else f"{what}-pass-rates"
    return _to_svg(fig, kind, f"Pass rate per {what} across {len(names)} {what}s")


@_styled
def timing_spread_svg(ratios: dict[str, list[float]], limits: dict[str, float]) -> str:
    """Each timed step's ratios to the reference as dots on a log axis, its limit a dashed
    line; "" when nothing was timed."""
    measured = {step: values for step, values in ratios.items() if values}
    if not measured:
        return ""
    fig = Figure(figsize=(8.0, 0.9 + 0.45 * len(measured)), layout="constrained")
    ax = fig.add_subplot()
    for row, (step, values) in enumerate(measured.items()):
        ax.plot(values, [row] * len(values), "o", color=STUDENT_COLOUR, alpha=0.6)
        ax.plot([limits[step]] * 2, [row - 0.35, row + 0.35], "--", color=REFERENCE_COLOUR)
    ax.set_yticks(range(len(measured)), list(measured))
    ax.set_ylim(len(measured) - 0.5, -0.5)
    ax.set_xscale("log")
    shown = [value for values in measured.values() for value in values if value > 0]
    ends = [*shown, 1.0, *(limits[step] for step in measured)]  # 1×: as fast as the reference
    ax.set_xlim(min(ends) / 1.25, max(ends) * 1.25)
    plain_ratio_ticks(ax)
    ax.set_xlabel("time / reference's time (dashed: the limit)")
    return _to_svg(fig, "timing", f"Timing ratios of {len(measured)} timed steps")


def ratio_label(value: float, _position: object = None) -> str:
    """A tick of a ratio axis as people say it: 0.5×, 1×, 20×, not 5×10⁻¹ or 2×10⁰."""
    return f"{value:.3g}×"


def plain_ratio_ticks(ax: Axes) -> None:
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=RATIO_TICKS))
    ax.xaxis.set_major_formatter(FuncFormatter(ratio_label))
    ax.xaxis.set_minor_formatter(NullFormatter())
