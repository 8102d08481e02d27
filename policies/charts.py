"""Inline SVG chart of an environment's compliance over time: per evaluated snapshot, a stacked bar
of compliant (green), unknown (amber) and non-compliant (red) artifacts. Server-rendered, no script;
every value is a number or escaped text."""

from django.utils.html import escape, format_html, mark_safe

WIDTH, HEIGHT, PAD = 900, 220, 30


def compliance_chart(series: list[dict]) -> str:
    """``series``: oldest first, each with snapshot_index, snapshot_at, compliant_count,
    non_compliant_count, unknown_count, compliant. Returns safe SVG markup ('' when empty)."""
    if not series:
        return ""
    top = max(1, max(r["compliant_count"] + r["non_compliant_count"] + r["unknown_count"] for r in series))
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = plot_w / len(series)
    bar = max(1.0, step * 0.8)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" width="100%" '
        f'aria-label="Compliant and non-compliant artifacts per snapshot">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#9ca3af"/>',
        f'<text x="4" y="{PAD + 4}" font-size="11" fill="#6b7280">{top}</text>',
        f'<text x="4" y="{HEIGHT - PAD}" font-size="11" fill="#6b7280">0</text>',
    ]
    for i, row in enumerate(series):
        x = PAD + i * step + (step - bar) / 2
        y = HEIGHT - PAD
        title = escape(f"#{row['snapshot_index']} {row['snapshot_at']:%Y-%m-%d %H:%M} — "
                       f"{row['compliant_count']} compliant, {row['non_compliant_count']} non-compliant, "
                       f"{row['unknown_count']} unknown")
        for count, colour in ((row["compliant_count"], "#16a34a"), (row["unknown_count"], "#d97706"),
                              (row["non_compliant_count"], "#dc2626")):
            if not count:
                continue
            height = plot_h * count / top
            y -= height
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{colour}">'
                         f"<title>{title}</title></rect>")
        marker = "#16a34a" if row["compliant"] else "#dc2626"
        parts.append(f'<rect x="{x:.1f}" y="{HEIGHT - PAD + 4}" width="{bar:.1f}" height="5" fill="{marker}"/>')
    first, last = series[0], series[-1]
    parts.append(format_html('<text x="{}" y="{}" font-size="11" fill="#6b7280">#{}</text>', PAD, HEIGHT - 6,
                             first["snapshot_index"]))
    parts.append(format_html('<text x="{}" y="{}" font-size="11" fill="#6b7280" text-anchor="end">#{}</text>',
                             WIDTH - PAD, HEIGHT - 6, last["snapshot_index"]))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
