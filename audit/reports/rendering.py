"""PDF rendering with WeasyPrint from Django templates.

Agent-supplied strings (artifact names, actor labels...) reach these templates. Django escapes them,
and ``StaticOnlyFetcher`` refuses every URL that is not a file inside the project's own static
directories — no network, no ``file://`` elsewhere, no ``data:`` — so even markup that slipped
through could not fetch anything. Fonts come from the system (Debian's fonts-dejavu-core) through
fontconfig, not from URLs.
"""

import logging
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from csm import charts

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


def _fitted(columns: list[dict]) -> list[dict]:
    """Scale column widths so that widths plus cell padding (about 1.6 % of the page each) fit the page."""
    total = sum(column["width"] for column in columns) or 1
    room = 100 - 1.6 * len(columns)
    return [{**column, "width": f"{column['width'] * room / total:.2f}"} for column in columns]


def render_html(data: dict) -> str:
    """The HTML the PDF is made from (also handy to debug the layout in a browser)."""
    limit = settings.CSM_REPORT_PDF_MAX_ROWS
    sections = [
        {
            **section,
            "columns": _fitted(section["columns"]),
            "shown": [[(cell, column["style"]) for cell, column in zip(row, section["columns"], strict=False)]
                      for row in section["rows"][:limit]],
            "truncated": section["row_count"] > limit,
        }
        for section in data["sections"]
    ]
    cited = data["integrity"]["cited"]
    context = {
        "data": data,
        "report": data["report"],
        "sections": sections,
        "charts": [{"title": c["title"], "svg": mark_safe(_chart_svg(c))} for c in data["charts"]],  # noqa: S308 - escaped by csm.charts
        "cited_shown": cited[:limit],
        "cited_truncated": len(cited) > limit,
        "row_limit": limit,
    }
    return render_to_string("reports/pdf/report.html", context)


def render_pdf(data: dict, data_sha256: str) -> tuple[bytes, int]:
    """(PDF bytes, page count) for a report's data."""
    data = {**data, "data_sha256": data_sha256}
    html = render_html(data)
    base_url = static_roots()[0].as_uri() + "/"
    document = HTML(string=html, base_url=base_url, url_fetcher=StaticOnlyFetcher()).render()
    return document.write_pdf(), len(document.pages)
