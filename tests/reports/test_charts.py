"""csm/lib/charts.py: pure SVG functions; labels are escaped, empty data says so, gaps stay gaps."""

import xml.etree.ElementTree as ET

from csm.lib import charts

HOSTILE = '<script>alert(1)</script>&"'


def parse(svg: str):
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well-formed


def test_bar_chart_escapes_labels_and_scales():
    svg = charts.bar_chart([HOSTILE, "w2"], [3, 7], title=HOSTILE)
    root = parse(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    bars = [el for el in root.iter() if el.tag.endswith("rect")]
    assert len(bars) == 2 and float(bars[1].get("height")) > float(bars[0].get("height"))


def test_empty_data_is_a_message_not_an_error():
    for svg in (charts.bar_chart([], []), charts.bar_chart(["a"], [0]),
                charts.line_chart(["a"], [("x", [None], "#000")]),
                charts.stacked_bar_chart(["a"], [("x", [0], "#000")])):
        assert "No data in this range" in svg
        parse(svg)


def test_line_chart_leaves_gaps_for_missing_periods():
    svg = charts.line_chart(["w1", "w2", "w3", "w4"], [("Compliant", [100, None, 50, 75], "#1a7f4b")], y_max=100,
                            unit="%")
    root = parse(svg)
    lines = [el for el in root.iter() if el.tag.endswith("polyline")]
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # w3-w4; w1 stands alone
    assert "100%" in svg


def test_stacked_chart_and_sparkline_are_well_formed():
    parse(charts.stacked_bar_chart(["a", "b"], [("ok", [1, 2], "#0f0"), (HOSTILE, [3, 0], "#f00")], title="t"))
    parse(charts.sparkline([1, 5, 2, 8]))
    parse(charts.sparkline([4]))
