"""Charts as SVG drawn on the server: no script, every text escaped, readable by screen readers.

Each chart is an `<svg role="img">` named by its `<title>` and described by its `<desc>`; the
page puts a table of the same numbers beside it. An empty series draws the frame and a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 10
ROW_H = 26  # one bar of a horizontal chart


@dataclass(frozen=True)
class Series:
    """One line of a line chart: its name and a value (or a gap, None) per x label."""

    name: str
    values: Sequence[float | None]


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def _open(chart_id: str, title: str, desc: str, height: int = HEIGHT) -> list[str]:
    ids = f"{chart_id}-title {chart_id}-desc"
    return [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-labelledby="{escape(ids)}"'
        f' viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def _empty(parts: list[str], message: str, height: int = HEIGHT) -> Markup:
    parts.append(
        f'<text class="chart-empty" x="{WIDTH / 2:g}" y="{height / 2:g}"'
        f' text-anchor="middle">{escape(message)}</text></svg>'
    )
    return Markup("".join(parts))


def _axes(parts: list[str], top_label: str) -> None:
    base = TOP + PLOT_H
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{LEFT + PLOT_W}" y2="{base}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>'
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
        f"{escape(top_label)}</text>"
        f'<text class="tick" x="{LEFT - 6}" y="{base}" text-anchor="end">0</text>'
    )


def _x_labels(parts: list[str], labels: Sequence[str], slot: float) -> None:
    step = max(1, -(-len(labels) // MAX_X_LABELS))  # ceiling: at most MAX_X_LABELS shown
    for i in range(0, len(labels), step):
        x = LEFT + slot * (i + 0.5)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    empty_message: str = "No data in this window",
) -> Markup:
    """Vertical bars, one per (label, value), the tallest filling the plot's height."""
    parts = _open(chart_id, title, desc)
    top = max((value for _label, value in points), default=0)
    if top <= 0:
        return _empty(parts, empty_message)
    _axes(parts, _number(top))
    slot = PLOT_W / len(points)
    width = max(1.0, slot * 0.8)
    for i, (label, value) in enumerate(points):
        height = PLOT_H * max(value, 0) / top
        x, y = LEFT + slot * i + (slot - width) / 2, TOP + PLOT_H - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></rect>"
        )
    _x_labels(parts, [label for label, _value in points], slot)
    parts.append("</svg>")
    return Markup("".join(parts))


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, value))
    return [run for run in runs if run]


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    desc: str,
    percent: bool = True,
    empty_message: str = "No data in this window",
) -> Markup:
    """Lines over shared x labels; None is a gap; rates (0..1) drawn up to 100% when `percent`."""
    parts = _open(chart_id, title, desc)
    present = [v for s in series for v in s.values if v is not None]
    if not labels or not present:
        return _empty(parts, empty_message)
    top = 1.0 if percent else max(max(present), 1e-9)
    _axes(parts, "100%" if percent else _number(top))
    slot = PLOT_W / len(labels)
    for number, line in enumerate(series):
        for run in _segments(line.values):
            coords = [
                (LEFT + slot * (i + 0.5), TOP + PLOT_H - PLOT_H * min(max(v, 0), top) / top)
                for i, v in run
            ]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline class="line line-{number}" points="{path}"/>')
            parts.extend(
                f'<circle class="dot line-{number}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(line.name)}, {escape(labels[i])}: "
                f"{escape(f'{v:.0%}' if percent else _number(v))}</title></circle>"
                for (x, y), (i, v) in zip(coords, run, strict=True)
            )
    _x_labels(parts, labels, slot)
    for number, line in enumerate(series):  # the legend, top right
        y = TOP + 4 + 16 * number
        parts.append(
            f'<rect class="key line-{number}" x="{WIDTH - 150}" y="{y}" width="10" height="10"/>'
            f'<text class="tick" x="{WIDTH - 134}" y="{y + 9}">{escape(line.name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def ranking_chart(
    points: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    empty_message: str = "Nothing to rank in this window",
) -> Markup:
    """Horizontal bars for a ranking, label above each bar, the first scaled to the full width."""
    height = max(HEIGHT // 2, TOP + ROW_H * len(points) + 8)
    parts = _open(chart_id, title, desc, height)
    top = max((value for _label, value in points), default=0)
    if top <= 0:
        return _empty(parts, empty_message, height)
    span = WIDTH - RIGHT - 60
    for i, (label, value) in enumerate(points):
        y = TOP + ROW_H * i
        width = span * max(value, 0) / top
        parts.append(
            f'<text class="tick" x="0" y="{y + 9}">{escape(label)}</text>'
            f'<rect class="bar" x="0" y="{y + 12}" width="{width:.1f}" height="10">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></rect>"
            f'<text class="tick" x="{width + 6:.1f}" y="{y + 21}">{escape(_number(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
