"""Server-side SVG charts: pure functions returning an SVG string, used by the web pages and the PDF
reports alike (WeasyPrint renders inline SVG), so a chart looks the same on screen and on paper.

Every label and title is escaped here; callers pass plain text, never markup. Values are numbers;
nothing is fetched and no script is emitted.
"""

from html import escape

PALETTE = {"brand": "#2f5bea", "ok": "#1a7f4b", "bad": "#c0362c", "warn": "#b7791f", "muted": "#98a2b3"}
_FONT = 'font-family="DejaVu Sans, sans-serif"'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    label = escape(title or "chart")
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}"><title>{label}</title>'
        + "".join(body) + "</svg>"
    )


def _nice_max(value: float) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _label_every(count: int, room: int) -> int:
    return max(1, -(-count // max(1, room)))


def _empty(width: int, height: int, title: str, message: str) -> str:
    return _svg(width, height, title, [
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafbfc" stroke="#e3e6eb"/>',
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" font-size="12" fill="#667085" '
        f'{_FONT}>{escape(message)}</text>',
    ])


def _axes(width, height, left, bottom, top, y_max, unit="") -> list[str]:
    parts = []
    plot_h = height - bottom - top
    # Whole-number gridlines: y_max from _nice_max is 1, 2 or 5 × 10^n, so one of these divides it.
    ticks = next((n for n in (4, 5, 2, 1) if y_max % n == 0), 4) if float(y_max).is_integer() else 4
    for i in range(ticks + 1):
        value = y_max * i / ticks
        y = height - bottom - plot_h * i / ticks
        text = f"{value:g}{unit}"
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#e3e6eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 3:.1f}" text-anchor="end" font-size="9" fill="#667085" '
                     f'{_FONT}>{escape(text)}</text>')
    return parts


def bar_chart(labels: list[str], values: list[int | float], *, title: str = "", width: int = 640,
              height: int = 200, color: str = PALETTE["brand"], empty_message: str = "No data in this range") -> str:
    """Vertical bars, one per label (e.g. changes per week)."""
    if not values or not any(values):
        return _empty(width, height, title, empty_message)
    left, bottom, top = 44, 30, 10
    y_max = _nice_max(max(values))
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / len(values)
    every = _label_every(len(labels), int(plot_w // 60))
    parts = _axes(width, height, left, bottom, top, y_max)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / y_max
        x = left + i * slot + slot * 0.15
        y = height - bottom - bar_h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" fill="{color}">'
                     f'<title>{escape(str(label))}: {value:g}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                         f'font-size="9" fill="#667085" {_FONT}>{escape(str(label))}</text>')
    return _svg(width, height, title, parts)


def stacked_bar_chart(labels: list[str], series: list[tuple[str, list[int], str]], *, title: str = "",
                      width: int = 640, height: int = 220, empty_message: str = "No data in this range") -> str:
    """Stacked bars: ``series`` is ``[(name, values, color), ...]`` (e.g. compliant / non-compliant
    snapshots per week), with a legend."""
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    if not totals or not any(totals):
        return _empty(width, height, title, empty_message)
    left, bottom, top = 44, 30, 26
    y_max = _nice_max(max(totals))
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / len(labels)
    every = _label_every(len(labels), int(plot_w // 60))
    parts = _axes(width, height, left, bottom, top, y_max)
    for i, label in enumerate(labels):
        base = height - bottom
        x = left + i * slot + slot * 0.15
        for name, values, color in series:
            bar_h = plot_h * values[i] / y_max
            if bar_h <= 0:
                continue
            base -= bar_h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
                         f'fill="{color}"><title>{escape(str(label))} {escape(name)}: {values[i]}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                         f'font-size="9" fill="#667085" {_FONT}>{escape(str(label))}</text>')
    parts.extend(_legend(series, left))
    return _svg(width, height, title, parts)


def _legend(series, left) -> list[str]:
    parts, x = [], left
    for name, _values, color in series:
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="15" font-size="10" fill="#1c2330" {_FONT}>{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def line_chart(labels: list[str], series: list[tuple[str, list[float | None], str]], *, title: str = "",
               width: int = 640, height: int = 220, y_max: float | None = None, unit: str = "",
               empty_message: str = "No data in this range") -> str:
    """One line per series (e.g. % of compliant snapshots per week, ``y_max=100, unit="%"``). ``None``
    values leave a gap (no data in that period)."""
    known = [v for _, values, _ in series for v in values if v is not None]
    if not labels or not known:
        return _empty(width, height, title, empty_message)
    left, bottom, top = 44, 30, 26
    y_top = y_max if y_max is not None else _nice_max(max(known))
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / len(labels)  # points sit at slot centres, like the bars of bar_chart
    every = _label_every(len(labels), int(plot_w // 60))
    parts = _axes(width, height, left, bottom, top, y_top, unit)
    for name, values, color in series:
        segment: list[str] = []
        segments = []
        for i, value in enumerate(values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = left + (i + 0.5) * slot
            y = height - bottom - plot_h * value / y_top
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{escape(str(labels[i]))} '
                         f'{escape(name)}: {value:g}{escape(unit)}</title></circle>')
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) > 1:
                parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, label in enumerate(labels):
        if i % every == 0:
            x = left + (i + 0.5) * slot
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="9" '
                         f'fill="#667085" {_FONT}>{escape(str(label))}</text>')
    parts.extend(_legend(series, left))
    return _svg(width, height, title, parts)


def sparkline(values: list[float], *, width: int = 120, height: int = 24, color: str = PALETTE["brand"],
              title: str = "") -> str:
    """A tiny trend line without axes, for tables and stat tiles."""
    if len(values) < 2:
        return _svg(width, height, title, [f'<line x1="0" y1="{height / 2}" x2="{width}" y2="{height / 2}" '
                                           f'stroke="{PALETTE["muted"]}"/>'])
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (width - 2) / (len(values) - 1)
    points = " ".join(f"{1 + i * step:.1f},{height - 2 - (height - 4) * (v - low) / span:.1f}"
                      for i, v in enumerate(values))
    line = f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>'
    return _svg(width, height, title, [line])


def timeline_chart(lanes: list[tuple[str, list[tuple]]], *, start, end, now, title: str = "", width: int = 760,
                   label_width: int = 220, empty_message: str = "Nothing ran in this range") -> str:
    """Horizontal bars on a time axis, one lane per label (e.g. an exposure window chart: one lane per
    environment × artifact, a bar per window). ``lanes`` is ``[(label, [(start, end or None, text), ...]),
    ...]``; a bar without an end is still open and runs to ``now`` (drawn in the "bad" colour: it is
    running now), a closed one in the "warn" colour. ``start`` / ``end`` bound the axis (datetimes, or any
    numbers alike); ``now`` is marked by a vertical line. Every bar carries its ``text`` as a tooltip and
    a ``data-window`` attribute (``open`` / ``closed``), so tests and scripts can count windows."""
    if not lanes or not any(windows for _, windows in lanes):
        return _empty(width, 60, title, empty_message)
    lane_h, top, bottom, right = 22, 22, 28, 12
    height = top + lane_h * len(lanes) + bottom
    plot_w = width - label_width - right
    span = _seconds(end - start) or 1.0

    def x_of(moment) -> float:
        offset = min(max(_seconds(moment - start), 0.0), span)
        return label_width + plot_w * offset / span

    parts = [f'<rect x="{label_width}" y="{top}" width="{plot_w}" height="{lane_h * len(lanes)}" fill="#fafbfc" '
             f'stroke="#e3e6eb"/>']
    for i in range(5):  # five time ticks, first and last at the ends of the axis
        moment = start + (end - start) * i / 4
        x = x_of(moment)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#e3e6eb"/>')
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="{anchor}" font-size="9" '
                     f'fill="#667085" {_FONT}>{escape(_tick_label(moment))}</text>')
    for row, (label, windows) in enumerate(lanes):
        y = top + row * lane_h
        text = str(label)
        room = label_width // 6
        # Long labels lose their middle: the start names the lane, the end tells similar ones apart (a tag).
        shown = text if len(text) <= room else text[: room // 2 - 1] + "…" + text[len(text) - room // 2:]
        parts.append(f'<text x="{label_width - 6}" y="{y + lane_h * 0.65:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#1c2330" {_FONT}><title>{escape(text)}</title>{escape(shown)}</text>')
        for begin, finish, tip in windows:
            x1 = x_of(begin)
            x2 = x_of(now if finish is None else finish)
            state, color = ("open", PALETTE["bad"]) if finish is None else ("closed", PALETTE["warn"])
            parts.append(f'<rect data-window="{state}" x="{x1:.1f}" y="{y + 4}" width="{max(x2 - x1, 2.0):.1f}" '
                         f'height="{lane_h - 8}" rx="2" fill="{color}"><title>{escape(str(tip))}</title></rect>')
    now_x = x_of(now)
    parts.append(f'<line data-now="1" x1="{now_x:.1f}" y1="{top - 4}" x2="{now_x:.1f}" y2="{height - bottom}" '
                 f'stroke="#1c2330" stroke-dasharray="3 2"/>')
    parts.append(f'<text x="{now_x:.1f}" y="{top - 8}" text-anchor="end" font-size="10" fill="#1c2330" '
                 f'{_FONT}>now</text>')
    return _svg(width, height, title, parts)


def _seconds(delta) -> float:
    return delta.total_seconds() if hasattr(delta, "total_seconds") else float(delta)


def _tick_label(moment) -> str:
    return moment.strftime("%Y-%m-%d") if hasattr(moment, "strftime") else f"{moment:g}"
