"""The report's training curves as inline SVG, drawn here rather than by matplotlib.

Every submission's report holds them, so they sit on the path of one student waiting for
feedback: matplotlib's import took 0.4 s of the grader's start and its drawing 0.13 s a
report, for a few lines on two axes. The class charts, drawn once a run, keep matplotlib
(grader/outputs/charts.py). The SVG is pasted straight into HTML: no XML prolog, text kept
as text, no external resources, the same bytes for the same curves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from grader.grading.results import Curve

STUDENT_COLOUR = "#1f6fb2"
REFERENCE_COLOUR = "#555555"
SERIES_COLOURS = ("#e07b39", "#3a9a5b", "#c0392b", "#8e6bbf", "#8c564b", "#d16ba5",
                  "#7f7f7f", "#17becf")
AXIS_COLOUR = "#333333"
# Points: a panel is 4.6 × 3.4 in (about 440 × 330 px), two to a row of the page's 64rem;
# its margins leave room for the tick labels, the axis labels and the title.
PANEL_WIDTH, PANEL_HEIGHT = 331.2, 244.8
LEFT, RIGHT, TOP, BOTTOM = 48.0, 10.0, 24.0, 34.0
PANELS_PER_ROW = 2
TICKS = 6  # at most as many on each axis
MAX_MARKERS = 50  # points a series marks; more would merge into a thick line
TICK_LENGTH = 3.5
PAD = 0.05  # of the data's range, on each side, as matplotlib's margins
DASHES = "5.5,2.4"
FONT = 'font-family="DejaVu Sans, Verdana, sans-serif" font-size="8"'


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: list[tuple[float, float]]
    dashed: bool = False
    markers: bool = False


def finite_points(x: Sequence[float | None],
                  y: Sequence[float | None]) -> list[tuple[float, float]]:
    """Pairs where both coordinates are real numbers; a broken run may log None, NaN or inf."""

    def usable(value: float | None) -> bool:
        return isinstance(value, numbers.Real) and math.isfinite(value)

    return [(float(a), float(b)) for a, b in zip(x, y, strict=False) if usable(a) and usable(b)]


def lines_of(curve: Curve) -> list[Line]:
    """The student's series solid, its points marked (drawn, if empty, where nothing else
    is theirs), their named series solid, the reference dashed."""
    lines = []
    mine = finite_points(curve.x, curve.y)
    if mine or not curve.series:
        lines.append(Line("yours", STUDENT_COLOUR, mine, markers=True))
    for index, (label, values) in enumerate(curve.series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        lines.append(Line(label, colour, finite_points(curve.x, values)))
    if curve.reference_y is not None:
        lines.append(Line("reference", REFERENCE_COLOUR,
                          finite_points(curve.x, curve.reference_y), dashed=True))
    return lines


def axis_range(values: list[float]) -> tuple[float, float]:
    """The data's span, padded; a single value gets a span around it, no data [0, 1]."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high == low:
        spread = abs(low) * 0.1 or 0.5
        return low - spread, high + spread
    pad = (high - low) * PAD
    return low - pad, high + pad


def ticks(low: float, high: float, whole: bool) -> list[float]:
    """About TICKS round values in [low, high], steps of 1, 2, 2.5 or 5 times a power of
    ten; whole numbers only on an axis of whole numbers (epochs, batches)."""
    raw = (high - low) / (TICKS - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if whole:
        step = max(1.0, math.ceil(step))
    first = math.ceil(low / step - 1e-9)
    return [round((first + i) * step, 12)
            for i in range(int(math.floor(high / step + 1e-9)) - first + 1)]


def label(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text == "-0" else text.replace("-", "\u2212")


def tick(mark: str, x: float, y: float, anchor: str, value: float) -> str:
    """A tick's mark (a path) and its label at (x, y)."""
    return (f'<path d="{mark}" stroke="{AXIS_COLOUR}" stroke-width="0.8"/>'
            f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}">{label(value)}</text>')


def panel(curve: Curve, left: float, top: float) -> list[str]:
    """One curve's axes, lines and labels, its panel's corner at (left, top)."""
    x0, y0 = left + LEFT, top + TOP
    width, height = PANEL_WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM
    lines = lines_of(curve)
    points = [point for line in lines for point in line.points]
    x_low, x_high = axis_range([x for x, _ in points])
    y_low, y_high = axis_range([y for _, y in points])
    whole_x = bool(points) and all(x.is_integer() for x, _ in points)

    def across(x: float) -> float:
        return x0 + (x - x_low) / (x_high - x_low) * width

    def up(y: float) -> float:
        return y0 + height - (y - y_low) / (y_high - y_low) * height

    parts = ['<g class="panel">',
             f'<text x="{x0 + width / 2:.2f}" y="{top + 14:.2f}" text-anchor="middle" '
             f'font-size="9">{escape(curve.name)}</text>',
             f'<path d="M{x0:.2f},{y0:.2f}V{y0 + height:.2f}H{x0 + width:.2f}" fill="none" '
             f'stroke="{AXIS_COLOUR}" stroke-width="0.8"/>']
    parts += [tick(f"M{across(value):.2f},{y0 + height:.2f}v{TICK_LENGTH}", across(value),
                   y0 + height + 12, "middle", value)
              for value in ticks(x_low, x_high, whole_x)]
    parts += [tick(f"M{x0:.2f},{up(value):.2f}h{-TICK_LENGTH}", x0 - 5, up(value) + 3, "end",
                   value)
              for value in ticks(y_low, y_high, False)]
    parts += [f'<text x="{x0 + width / 2:.2f}" y="{top + PANEL_HEIGHT - 6:.2f}" '
              f'text-anchor="middle">{escape(curve.x_label)}</text>',
              f'<text transform="translate({left + 10:.2f},{y0 + height / 2:.2f}) rotate(-90)" '
              f'text-anchor="middle">{escape(curve.y_label)}</text>']
    for line in lines:
        dashes = f' stroke-dasharray="{DASHES}"' if line.dashed else ""
        if line.points:
            drawn = " ".join(f"{across(x):.2f},{up(y):.2f}" for x, y in line.points)
            parts.append(f'<polyline points="{drawn}" '
                         f'fill="none" stroke="{line.colour}" stroke-width="1.5"{dashes}/>')
        if line.markers and len(line.points) <= MAX_MARKERS:
            parts += [f'<circle cx="{across(x):.2f}" cy="{up(y):.2f}" '
                      f'r="1.6" fill="{line.colour}"/>' for x, y in line.points]
    if curve.reference_y is not None or curve.series:
        for row, line in enumerate(lines):
            y = y0 + 8 + row * 11
            dashes = f' stroke-dasharray="{DASHES}"' if line.dashed else ""
            parts += [f'<path d="M{x0 + width - 18:.2f},{y - 3:.2f}h14" stroke="{line.colour}" '
                      f'stroke-width="1.5"{dashes}/>',
                      f'<text x="{x0 + width - 22:.2f}" y="{y:.2f}" text-anchor="end">'
                      f'{escape(line.label)}</text>']
    if not any(line.points for line in lines if not line.dashed):
        parts.append(f'<text x="{x0 + width / 2:.2f}" y="{y0 + height / 2:.2f}" '
                     f'text-anchor="middle">no finite values</text>')
    return [*parts, "</g>"]


def curves_svg(curves: list[Curve]) -> str:
    """One panel per curve, two to a row, the student's series solid and the reference
    dashed; "" for no curves."""
    if not curves:
        return ""
    columns = min(len(curves), PANELS_PER_ROW)
    rows = math.ceil(len(curves) / columns)
    width, height = PANEL_WIDTH * columns, PANEL_HEIGHT * rows
    title = "Training curves: " + ", ".join(curve.name for curve in curves)
    parts = [f'<svg class="chart chart-curves" role="img" xmlns="http://www.w3.org/2000/svg" '
             f'width="{width:g}pt" height="{height:g}pt" viewBox="0 0 {width:g} {height:g}" '
             f'{FONT}>', f"<title>{escape(title)}</title>"]
    for index, curve in enumerate(curves):
        row, column = divmod(index, columns)
        parts += panel(curve, column * PANEL_WIDTH, row * PANEL_HEIGHT)
    return "\n".join([*parts, "</svg>"])
