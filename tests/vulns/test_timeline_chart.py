"""csm.lib.charts.timeline_chart, the exposure timeline: a lane per label, a bar per window (open windows
run to now and say so), now marked, labels escaped, an empty chart says why."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from csm.lib import charts

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=10)


def parse(svg: str):
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well-formed


def bars(root):
    return [el for el in root.iter() if el.tag.endswith("rect") and el.get("data-window")]


def test_a_bar_per_window_open_ones_reach_now():
    lanes = [("prod · web", [(T0, T0 + timedelta(days=2), "first"), (T0 + timedelta(days=5), None, "again")]),
             ("staging · web", [(T0 + timedelta(days=1), T0 + timedelta(days=3), "staging")])]
    root = parse(charts.timeline_chart(lanes, start=T0, end=NOW, now=NOW, title="Exposure"))
    found = bars(root)
    assert [b.get("data-window") for b in found] == ["closed", "open", "closed"]
    now_line = next(el for el in root.iter() if el.get("data-now"))
    open_bar = found[1]
    assert abs(float(open_bar.get("x")) + float(open_bar.get("width")) - float(now_line.get("x1"))) < 0.2
    # later windows start further right; the two prod bars share a lane (same y), staging has its own
    assert float(found[0].get("x")) < float(found[2].get("x")) < float(found[1].get("x"))
    assert found[0].get("y") == found[1].get("y") != found[2].get("y")
    assert [t.text for b in found for t in b if t.tag.endswith("title")] == ["first", "again", "staging"]


def test_labels_are_escaped_and_long_ones_shortened_with_the_full_text_kept():
    hostile = '<script>alert(1)</script>&"' + "x" * 80
    svg = charts.timeline_chart([(hostile, [(T0, None, hostile)])], start=T0, end=NOW, now=NOW, title=hostile)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(svg)
    assert "…" in svg


def test_nothing_ran_is_a_message():
    svg = charts.timeline_chart([], start=NOW, end=NOW, now=NOW, title="t", empty_message="Nothing ran")
    assert "Nothing ran" in svg and not bars(parse(svg))
