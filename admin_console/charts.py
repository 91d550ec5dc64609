"""Server-side SVG charts for the dashboard: no JavaScript, no CDN, readable without a browser plugin."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]
    color: str = ""


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f}%".replace(".00%", "%")
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _open_svg(title: str, width: int, height: int, x0: float, y0: float, x1: float, y1: float) -> str:
    """The <svg> element; data-plot is the axis box (x0 y0 x1 y1) every mark must stay inside (tested)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" data-plot="{x0:g} {y0:g} {x1:g} {y1:g}" '
            f'aria-label="{escape(title)}">')


def line_chart(*, title: str, x_labels: list[str], series: list[Series], thresholds: list[tuple[float, str]] = (),
               unit: str = "", width: int = 560, height: int = 220) -> str:
    """Lines over shared x labels, with dashed horizontal threshold lines (e.g. 0.3 % hard bounces)."""
    # The right margin holds half of the last x label (text-anchor middle), so it is never cut off.
    left, right, top, bottom = 52, 24, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None] + [t for t, _ in thresholds]
    y_max = _nice_max(max(values, default=0) * 1.1)
    # One x slot per point of the longest series as well as per label: a series longer than its labels
    # would otherwise be drawn past the right axis.
    n = max(len(x_labels), *(len(s.values) for s in series), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * min(max(v, 0.0), y_max) / y_max

    out = [_open_svg(title, width, height, left, top, width - right, top + plot_h),
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    for i in range(5):
        v = y_max * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="axis" text-anchor="end">{_fmt(v, unit)}</text>')
    step = max(1, math.ceil(n / 8))  # at most ~8 labels: they never overlap
    last = len(x_labels) - 1
    for i, label in enumerate(x_labels):
        if (i % step == 0 and last - i >= step) or i == last:  # the last label never crowds the one before
            out.append(f'<text x="{x(i):.1f}" y="{height - 14}" class="axis" text-anchor="middle">{escape(label)}</text>')
    label_x = width - right - 4
    for value, label in sorted(thresholds, reverse=True):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="threshold"/>'
                   f'<text x="{label_x}" y="{y(value) - 4:.1f}" class="threshold-label" '
                   f'text-anchor="end">{escape(label)}</text>')
        label_x -= 8 + 6 * len(label)  # close thresholds: labels side by side, not on top of each other
    legend_x = left + 8
    for index, s in enumerate(series):
        color = s.color or PALETTE[index % len(PALETTE)]
        points = [(x(i), y(v)) for i, v in enumerate(s.values) if v is not None]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            out.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}"/>' for px, py in points)
        out.append(f'<rect x="{legend_x}" y="{top + 2}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{legend_x + 14}" y="{top + 11}" class="legend">{escape(s.label)}</text>')
        legend_x += 24 + 7 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def bar_chart(*, title: str, bars: list[tuple[str, float, str]], unit: str = "", width: int = 560,
              height: int = 220, color: str = PALETTE[0]) -> str:
    """Vertical bars (label, value, link); each bar links to the messages behind it."""
    left, right, top, bottom = 52, 24, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = _nice_max(max((v for _, v, _ in bars), default=0))
    n = max(len(bars), 1)
    slot = plot_w / n
    out = [_open_svg(title, width, height, left, top, width - right, top + plot_h),
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    for i in range(5):
        v = y_max * i / 4
        yy = top + plot_h - plot_h * v / y_max
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{yy + 4:.1f}" class="axis" text-anchor="end">{_fmt(v, unit)}</text>')
    step = max(1, math.ceil(n / 8))
    for i, (label, value, href) in enumerate(bars):
        h = plot_h * value / y_max
        bx = left + i * slot + slot * 0.15
        bar = (f'<rect x="{bx:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
               f'fill="{color}"><title>{escape(label)}: {_fmt(value, unit)}</title></rect>')
        out.append(f'<a href="{escape(href)}">{bar}</a>' if href else bar)
        if (i % step == 0 and n - 1 - i >= step) or i == n - 1:
            out.append(f'<text x="{bx + slot * 0.35:.1f}" y="{height - 14}" class="axis" '
                       f'text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
