"""The server-drawn SVG charts: scaled to the data, empty when there is none, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from web.admin_page.charts import PLOT_H, Series, bar_chart, line_chart, ranking_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # also proves the SVG is well-formed XML


def _bars(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter(f"{SVG}rect") if el.get("class") == "bar"]


def test_bars_scale_to_the_largest_value() -> None:
    root = _parse(bar_chart([("a", 5), ("b", 10), ("c", 0)], chart_id="c", title="T", desc="D"))

    heights = [float(bar.get("height", "nan")) for bar in _bars(root)]

    assert heights == [PLOT_H / 2, PLOT_H, 0.0]
    bottoms = {float(b.get("y", "0")) + float(b.get("height", "0")) for b in _bars(root)}
    assert len(bottoms) == 1  # every bar stands on the same baseline


def test_a_chart_is_an_image_named_by_its_title_and_description() -> None:
    root = _parse(bar_chart([("a", 1)], chart_id="q", title="Questions", desc="One a day"))

    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "q-title q-desc"
    assert root.find(f"{SVG}title").text == "Questions"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "One a day"  # type: ignore[union-attr]


def test_no_data_draws_an_empty_chart_with_a_message() -> None:
    for chart in (
        bar_chart([], chart_id="e", title="T", desc="D", empty_message="Nothing yet"),
        bar_chart([("a", 0)], chart_id="e", title="T", desc="D", empty_message="Nothing yet"),
        ranking_chart([], chart_id="e", title="T", desc="D", empty_message="Nothing yet"),
        line_chart(["d1"], [Series("s", [None])], chart_id="e", title="T", desc="D",
                   empty_message="Nothing yet"),
    ):  # fmt: skip
        root = _parse(chart)
        assert _bars(root) == []
        assert root.find(f"{SVG}polyline") is None
        texts = [t.text for t in root.iter(f"{SVG}text")]
        assert texts == ["Nothing yet"]


def test_labels_titles_and_messages_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & "q"'
    charts = [
        bar_chart([(hostile, 3)], chart_id="x", title=hostile, desc=hostile),
        ranking_chart([(hostile, 3)], chart_id="x", title=hostile, desc=hostile),
        line_chart([hostile], [Series(hostile, [0.5])], chart_id="x", title=hostile, desc=hostile),
        bar_chart([], chart_id="x", title="T", desc="D", empty_message=hostile),
    ]

    for chart in charts:
        assert "<script>" not in str(chart)
        root = _parse(chart)
        assert hostile in "".join(root.itertext())  # shown as text, intact


def test_a_hostile_chart_id_cannot_break_out_of_its_attribute() -> None:
    chart = str(bar_chart([("a", 1)], chart_id='x" onload="evil()', title="T", desc="D"))

    assert 'onload="' not in chart
    assert _parse(chart).get("id") == 'x" onload="evil()'


def test_the_ranking_scales_its_first_bar_to_the_full_width() -> None:
    root = _parse(ranking_chart([("p1", 8), ("p2", 2)], chart_id="r", title="T", desc="D"))

    widths = [float(bar.get("width", "nan")) for bar in _bars(root)]

    assert widths[0] == 4 * widths[1] > 0


def test_lines_break_at_missing_days_and_stay_within_the_plot() -> None:
    rates = Series("refused", [0.5, None, 1.0, 0.25])
    root = _parse(line_chart(["d1", "d2", "d3", "d4"], [rates], chart_id="l", title="T", desc="D"))

    lines = [p.get("points", "") for p in root.iter(f"{SVG}polyline")]

    assert len(lines) == 2  # d1 alone, then d3-d4
    assert [len(points.split()) for points in lines] == [1, 2]
    ys = [float(y) for points in lines for y in re.findall(r",([\d.]+)", points)]
    assert min(ys) >= 0 and max(ys) <= 240
    assert len(list(root.iter(f"{SVG}circle"))) == 3


def test_many_days_show_at_most_ten_axis_labels() -> None:
    days = [(f"12-{n:02d}", n) for n in range(1, 31)]
    root = _parse(bar_chart(days, chart_id="m", title="T", desc="D"))

    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("12-")]

    assert len(_bars(root)) == 30
    assert 1 < len(labels) <= 10
