"""PDF rendering with WeasyPrint from Django templates.

Agent-supplied strings (artifact names, actor labels...) reach these templates. Django escapes them,
and ``StaticOnlyFetcher`` refuses every URL that is not a file inside the project's own static
directories — no network, no ``file://`` elsewhere, no ``data:`` — so even markup that slipped
through could not fetch anything. Fonts come from the system (Debian's fonts-dejavu-core) through
fontconfig, not from URLs.
"""

import hashlib
import logging
import mimetypes
import textwrap
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher, URLFetcherResponse

from csm.lib import charts
from csm.lib.text import reveal_bidi_controls
from journal.notes import NoteError, parse_verifier, split_note

log = logging.getLogger(__name__)
# WeasyPrint logs every layout step at INFO; keep worker logs to what matters.
logging.getLogger("weasyprint").setLevel(logging.WARNING)
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


def static_roots() -> list[Path]:
    roots = [Path(settings.BASE_DIR) / "csm" / "static", Path(settings.STATIC_ROOT)]
    return [root.resolve() for root in roots]


class StaticOnlyFetcher(URLFetcher):
    """Serves ``file:`` URLs inside the project's static directories; refuses everything else."""

    refused: list[str]

    def __init__(self):
        super().__init__(allowed_protocols=["file"], allow_redirects=False)
        self.refused = []

    def fetch(self, url, headers=None):
        path = self._static_path(url)
        if path is None:
            self.refused.append(url[:200])
            log.warning("report rendering refused to fetch %r", url[:200])
            raise ValueError("csm reports fetch only the project's own static files")
        mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": mime_type})

    @staticmethod
    def _static_path(url: str) -> Path | None:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parsed.path)).resolve()
        for root in static_roots():
            if path.is_relative_to(root) and path.is_file():
                return path
        return None


def _chart_svg(chart: dict) -> str:
    series = [(s["name"], s["values"], s["color"]) for s in chart["series"]]
    if chart["type"] == "line":
        return charts.line_chart(chart["labels"], series, title=chart["title"], y_max=chart.get("y_max"),
                                 unit=chart.get("unit", ""), width=680, height=220)
    if chart["type"] == "stacked":
        return charts.stacked_bar_chart(chart["labels"], series, title=chart["title"], width=680, height=220)
    name, values, color = series[0]
    return charts.bar_chart(chart["labels"], values, title=chart["title"], color=color, width=680, height=200)


# Detail tables are "ledgers": monospace text with the columns laid out here in characters, five rows
# to a table cell (alternate bands shaded). WeasyPrint lays this out 4-6x faster than a row of separate
# cells, which is what keeps a month of changes within seconds; the header repeats on every page.
LEDGER_CHARS = 126  # DejaVu Sans Mono at 6.5 pt across the A4 text width, less the cell padding
GAP = "  "
MAX_CELL_LINES = 8


def _ledger_widths(columns: list[dict], rows: list[list]) -> list[int]:
    """Characters per column. Hash columns (``mono``) get the width of their longest value (a
    fingerprint stays on one line), times (``nowrap``) 16; the others share the rest by their
    declared widths. Fewer wrapped lines is what makes long ledgers fast to lay out."""
    room = LEDGER_CHARS - len(GAP) * (len(columns) - 1)
    fixed: dict[int, int] = {}
    for i, column in enumerate(columns):
        if column["style"] == "mono":
            longest = max((len(str(row[i])) for row in rows if i < len(row)), default=0)
            fixed[i] = min(64, max(len(column["label"]), longest, 4))
        elif column["style"] == "nowrap":
            fixed[i] = 16
    flexible = [i for i in range(len(columns)) if i not in fixed]
    rest = room - sum(fixed.values())
    if flexible and rest < 12 * len(flexible):  # hashes leave too little: let them take two lines
        fixed = {i: (min(width, 33) if columns[i]["style"] == "mono" else width) for i, width in fixed.items()}
        rest = room - sum(fixed.values())
    if flexible and rest < 6 * len(flexible):  # still too little: fall back to proportions
        fixed, flexible, rest = {}, list(range(len(columns))), room
    total = sum(columns[i]["width"] for i in flexible) or 1
    widths = [fixed.get(i) or max(4, int(columns[i]["width"] * rest / total)) for i in range(len(columns))]
    while sum(widths) > room:  # give back what the minimums took, from the widest column
        widths[widths.index(max(widths))] -= 1
    return widths


FSI, PDI = "\u2068", "\u2069"  # first-strong isolate: each cell's own right-to-left text stays in its column


def _cell_lines(value, width: int) -> list[str]:
    # no tabs or newlines from agent-supplied strings, and bidi controls shown as visible code points (an
    # RLO would make "No provenance" read backwards, or swap columns)
    text = " ".join(reveal_bidi_controls(str(value)).split())
    if not text:
        return [""]
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > MAX_CELL_LINES:
        lines = lines[:MAX_CELL_LINES]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def ledger_row(cells: list, widths: list[int]) -> str:
    """One row as aligned monospace text; long cells wrap onto continuation lines within their column."""
    wrapped = [_cell_lines(cell, width) for cell, width in zip(cells, widths, strict=False)]
    height = max(len(lines) for lines in wrapped)
    out = []
    for n in range(height):
        parts = []
        for lines, width in zip(wrapped, widths, strict=False):
            text = lines[n] if n < len(lines) else ""
            parts.append(f"{FSI}{text}{PDI}{' ' * (width - len(text))}" if text else " " * width)
        out.append(GAP.join(parts).rstrip())
    return "\n".join(out)


BAND = 5  # one-line rows per table cell: banded like ledger paper, ~25 % less layout work than a cell each


def _bands(lines: list[str]) -> list[str]:
    """Up to BAND consecutive one-line rows share a cell; a wrapped (multi-line) row gets its own cell,
    so its rule line still shows where it ends."""
    bands: list[str] = []
    group: list[str] = []
    for line in lines:
        if "\n" in line:
            if group:
                bands.append("\n".join(group))
                group = []
            bands.append(line)
            continue
        group.append(line)
        if len(group) == BAND:
            bands.append("\n".join(group))
            group = []
    if group:
        bands.append("\n".join(group))
    return bands


def _ledger(columns: list[dict], rows: list[list]) -> dict:
    widths = _ledger_widths(columns, rows)
    return {"header": ledger_row([column["label"].upper() for column in columns], widths),
            "lines": _bands([ledger_row(row, widths) for row in rows])}


CITED_COLUMNS = [{"label": "Record", "style": "", "width": 12}, {"label": "Leaf", "style": "", "width": 8},
                 {"label": "Leaf hash", "style": "mono", "width": 66}, {"label": "What", "style": "", "width": 30}]


def signing_keys(bundle: dict) -> list[str]:
    """The verifier keys of the bundle's key history that signed its checkpoint (normally one; two
    after a rotation re-signed the same size). An auditor pins one of these to verify offline."""
    try:
        _, signatures = split_note(bundle["checkpoint"])
    except (KeyError, NoteError):
        return []
    signed = {(sig.name, sig.id) for sig in signatures}
    keys = []
    for text in bundle.get("keys", []):
        try:
            verifier = parse_verifier(text)
        except NoteError:
            continue
        if (verifier.name, verifier.id) in signed:
            keys.append(text)
    return keys


def render_html(data: dict) -> str:
    """The HTML the PDF is made from (also handy to debug the layout in a browser)."""
    limit = settings.CSM_REPORT_PDF_MAX_ROWS
    sections = [
        {**section, **_ledger(section["columns"], section["rows"][:limit]), "truncated": section["row_count"] > limit}
        for section in data["sections"]
    ]
    cited = data["integrity"]["cited"]
    context = {
        "data": data,
        "report": data["report"],
        "sections": sections,
        "charts": [{"title": c["title"], "svg": mark_safe(_chart_svg(c))} for c in data["charts"]],  # noqa: S308 - escaped by csm.lib.charts  # nosec B308, B703
        "cited": _ledger(CITED_COLUMNS, [[kind, f"#{index}", leaf_hash, label] for kind, index, leaf_hash, label
                                         in cited[:limit]]),
        "cited_truncated": len(cited) > limit,
        "row_limit": limit,
        "proofs": data["integrity"]["proofs"],
        "signing_keys": signing_keys(data["integrity"]["proofs"]),
    }
    return render_to_string("reports/pdf/report.html", context)


ATTACHMENT_NAME = "report.json"


def render_pdf(data: dict, content: bytes) -> tuple[bytes, int]:
    """(PDF bytes, page count) for a report's data. ``content`` is the JSON export exactly as it is
    stored and downloaded; the PDF prints its SHA-256 and carries it as the embedded file
    ``report.json``, so the PDF alone is enough for an offline check of its proof bundle."""
    data = {**data, "data_sha256": hashlib.sha256(content).hexdigest()}
    html = render_html(data)
    base_url = static_roots()[0].as_uri() + "/"
    fetcher = StaticOnlyFetcher()
    document = HTML(string=html, base_url=base_url, url_fetcher=fetcher).render()
    attachment = Attachment(string=content, name=ATTACHMENT_NAME, url_fetcher=fetcher,
                            description="The report's JSON export: its data and the journal proof bundle")
    return document.write_pdf(attachments=[attachment]), len(document.pages)
