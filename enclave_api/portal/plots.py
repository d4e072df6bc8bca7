"""Plots drawn on the server as inline SVG: no script, no external library, readable by screen readers.

Each plot is a ``<figure>`` with a caption, an SVG with ``role="img"`` and a text description, and the
same numbers as a visually hidden table (screen readers and keyboard users get the data, not a
picture of it). Colours come from CSS classes in ``portal.css`` (contrast ≥ 4.5:1); every text in the
SVG is escaped.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Series:
    """A named line of (time, value) points, in time order."""

    name: str
    points: Sequence[tuple[datetime, float]]


def _ticks(high: float, count: int = 4, integer: bool = False) -> list[float]:
    if high <= 0:
        return [0.0]
    if integer:  # counts: whole steps only
        whole = max(1, math.ceil(high / count))
        return [float(whole * i) for i in range(int(high // whole) + 1)]
    step = high / count
    return [round(step * i, 10) for i in range(count + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _figure(caption: str, description: str, svg: str, table: str) -> Markup:
    ident = "plot-" + secrets.token_hex(4)
    # Every text that went into these fragments was escaped where it was inserted.
    return Markup(  # noqa: S704
        f'<figure class="plot"><figcaption id="{ident}">{escape(caption)}</figcaption>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{ident} {ident}-d"><desc id="{ident}-d">{escape(description)}</desc>{svg}</svg>'
        f'<table class="visually-hidden"><caption>{escape(caption)}</caption>{table}</table></figure>'
    )


def _axes(
    y_max: float, y_label: str, x_labels: Sequence[tuple[float, str]], integer: bool = False
) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for tick in _ticks(y_max, integer=integer):
        y = TOP + plot_h - (tick / y_max * plot_h if y_max else 0)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>')
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>'
    )
    for x, text in x_labels:
        # Labels at the plot's edges are anchored inward so that they are not cut off.
        anchor = "start" if x <= LEFT else "end" if x >= WIDTH - RIGHT else "middle"
        parts.append(
            f'<text class="label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    parts.append(
        f'<text class="label" x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    return parts


def burn_down(
    caption: str, spent: Series, limit: float, start: datetime, end: datetime, unit: str = "ε"
) -> Markup:
    """Cumulative spending over time as a step line, with the total budget as a dashed line.

    ``spent.points`` are (time, cumulative amount); the line starts at 0 at ``start`` and runs to ``end``.
    """
    span = max((end - start).total_seconds(), 1.0)
    y_max = max([limit, *(v for _, v in spent.points)]) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(when: datetime, value: float) -> tuple[float, float]:
        x = LEFT + min(max((when - start).total_seconds() / span, 0.0), 1.0) * plot_w
        return x, TOP + plot_h - value / y_max * plot_h

    points = [xy(start, 0.0)]
    level = 0.0
    for when, value in spent.points:
        x, _ = xy(when, value)
        points.append((x, xy(when, level)[1]))
        points.append(xy(when, value))
        level = value
    points.append((xy(end, level)[0], xy(end, level)[1]))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    limit_y = xy(start, limit)[1]
    x_labels = [(LEFT, start.strftime("%Y-%m-%d")), (WIDTH - RIGHT, end.strftime("%Y-%m-%d"))]
    svg = [
        *_axes(y_max, f"{unit} spent", x_labels),
        f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{limit_y:.1f}" y2="{limit_y:.1f}"/>',
        f'<text class="label" x="{WIDTH - RIGHT}" y="{limit_y - 5:.1f}" text-anchor="end">'
        f"budget {escape(_fmt(limit))}</text>",
        f'<polyline class="line series-0" points="{path}"/>',
    ]
    description = (
        f"{spent.name}: {_fmt(level)} of {_fmt(limit)} {unit} spent "
        f"({len(spent.points)} release{'s' if len(spent.points) != 1 else ''})"
    )
    rows = "".join(
        f"<tr><td>{when.strftime('%Y-%m-%d %H:%M')}</td><td>{_fmt(value)}</td></tr>"
        for when, value in spent.points
    )
    table = f"<tr><th>time (UTC)</th><th>{escape(unit)} spent, cumulative</th></tr>{rows}"
    return _figure(caption, description, "".join(svg), table)


def bars(
    caption: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], y_label: str
) -> Markup:
    """Grouped bars: one group per label (e.g. a week), one bar per series (e.g. approved, rejected)."""
    groups = max(len(labels), 1)
    y_max = max([1, *(v for _, values in series for v in values)]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / groups
    bar_w = slot * 0.8 / max(len(series), 1)
    svg = []
    x_labels = []
    step = max(1, groups // 8)  # at most ~8 axis labels
    for g, label in enumerate(labels):
        if g % step == 0:
            x_labels.append((LEFT + slot * (g + 0.5), label))
        for s, (_, values) in enumerate(series):
            value = values[g] if g < len(values) else 0
            height = value / y_max * plot_h
            x = LEFT + slot * g + slot * 0.1 + bar_w * s
            svg.append(
                f'<rect class="series-{s % 3}" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" '
                f'width="{bar_w:.1f}" height="{height:.1f}"><title>{escape(label)}: {value}</title></rect>'
            )
    legend = []
    for s, (name, _) in enumerate(series):
        x = LEFT + 8 + s * 150
        legend.append(f'<rect class="series-{s % 3}" x="{x}" y="{TOP}" width="12" height="12"/>')
        legend.append(f'<text class="label" x="{x + 18}" y="{TOP + 11}">{escape(name)}</text>')
    totals = ", ".join(f"{name}: {sum(values)}" for name, values in series)
    header = "".join(f"<th>{escape(name)}</th>" for name, _ in series)
    rows = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(f"<td>{values[g] if g < len(values) else 0}</td>" for _, values in series)
        + "</tr>"
        for g, label in enumerate(labels)
    )
    table = f"<tr><th>period</th>{header}</tr>{rows}"
    return _figure(
        caption,
        f"{caption}. Totals: {totals}",
        "".join([*_axes(y_max, y_label, x_labels, integer=True), *svg, *legend]),
        table,
    )
