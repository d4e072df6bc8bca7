"""Server-side SVG plots: accessible (role, description, data table) and inert (every text escaped)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from enclave_api.portal.plots import Series, bars, burn_down

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_burn_down_describes_its_data_for_screen_readers() -> None:
    points = [(START + timedelta(days=2), 0.5), (START + timedelta(days=5), 1.25)]
    figure = str(burn_down("Budget of g-1", Series("wdbc", points), 3.0, START, START + timedelta(days=30)))
    assert 'role="img"' in figure and "<desc" in figure
    assert "wdbc: 1.25 of 3 ε spent (2 releases)" in figure
    assert figure.count("<tr>") == 3  # header + one row per release, for those who cannot see the plot
    assert "budget 3" in figure
    # The step line starts at zero and ends at the last cumulative value, right edge of the plot.
    polyline = re.search(r'points="([^"]+)"', figure)
    assert polyline is not None
    first, last = polyline.group(1).split()[0], polyline.group(1).split()[-1]
    assert float(first.split(",")[0]) < float(last.split(",")[0])


def test_plot_texts_are_escaped() -> None:
    payload = "<script>alert(1)</script>"
    figure = str(bars(payload, [payload], [(payload, [3])], "requests"))
    assert "<script>" not in figure
    assert "&lt;script&gt;" in figure


def test_bar_charts_of_counts_have_whole_ticks() -> None:
    figure = str(
        bars("Access decisions", ["W1", "W2"], [("approved", [1, 0]), ("denied", [0, 1])], "requests")
    )
    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', figure)
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "approved: 1, denied: 1" in figure
