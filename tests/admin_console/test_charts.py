"""The console's SVG charts draw every mark inside their axis box (issue 13: points past the axis)."""

from __future__ import annotations

import re

from admin_console import charts


def _plot_box(svg: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.search(r'data-plot="([^"]+)"', svg).group(1).split())


def _points(svg: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.-]+)" cy="([\d.-]+)"', svg)]


def test_line_chart_points_stay_inside_the_axes_even_with_more_points_than_labels():
    svg = charts.line_chart(title="t", x_labels=["11-27", "11-28", "11-29"], unit="%",
                            series=[charts.Series("a", [0.1, 0.2, 0.3, 0.4, 0.5]),
                                    charts.Series("b", [None, 0.0, 250.0])],
                            thresholds=[(0.3, "limit 0.3%")])
    x0, y0, x1, y1 = _plot_box(svg)
    points = _points(svg)
    assert len(points) == 7
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in points), points
    assert max(x for x, _ in points) == x1  # the last point sits on the right axis, not past it


def test_line_chart_keeps_room_for_the_last_label_and_labels_do_not_crowd():
    labels = [f"12-{d:02d}" for d in range(1, 15)]
    svg = charts.line_chart(title="t", x_labels=labels, series=[charts.Series("a", [1.0] * 14)])
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="\d+" class="axis" text-anchor="middle"', svg)]
    assert xs[-1] + 18 <= width  # half of a 5-character label fits inside the chart
    assert all(b - a >= 60 for a, b in zip(xs, xs[1:]))  # ~8 labels at most, never on top of each other
    assert "12-14" in svg


def test_bar_chart_bars_stay_inside_the_axes():
    svg = charts.bar_chart(title="t", bars=[(f"{h:02d}:00", float(h), "") for h in range(24)])
    x0, y0, x1, y1 = _plot_box(svg)
    for x, y, w, h in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg):
        assert x0 <= float(x) and float(x) + float(w) <= x1 and y0 <= float(y) and float(y) + float(h) <= y1 + 0.1
