"""The data model every report kind fills in, and helpers shared by the kinds.

A report is first built as plain data (``ReportDoc.data``: cover, figures, charts, sections with
rows, sections not available yet, control mapping, integrity) — that dict is the JSON export — and
then rendered to PDF from exactly that dict. So the JSON's SHA-256, printed in the PDF, commits to
everything the PDF shows.

All values are strings or integers (canonical JSON has no floats): percentages are whole numbers,
durations are pre-formatted text.

Every section, figure, chart and cited record belongs to a *part* declared in reports/access.py
with the permission of its data. A part the requester may not read is not in the report: builders skip
its queries (``doc.includes``), and whatever they still hand over for it is dropped here, so a builder
slip cannot leak it.
"""

import datetime
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from csm.lib.charts import PALETTE
from journal.models import JournalLeaf
from journal.selectors import proof_bundle
from journal.services import checkpoint_now
from reports import access
from reports.choices import ReportKind

FORMAT = "csm-report/1"
ProgressFn = Callable[[int, str], None]
PALETTE_BRAND, PALETTE_OK, PALETTE_BAD, PALETTE_WARN = PALETTE["brand"], PALETTE["ok"], PALETTE["bad"], PALETTE["warn"]

# Which evidence each kind of section gives, for the control-mapping appendix.
CONTROLS = [
    ("SOC 2", "CC8.1", "Change management: changes are authorised, tested, approved and implemented"),
    ("ISO/IEC 27001:2022", "A.8.32", "Change management: changes to information processing facilities are "
                                     "subject to change management procedures"),
    ("PCI DSS 4.0", "6.5.1", "Changes to system components in production are made according to established "
                             "procedures"),
    ("PCI DSS 4.0", "10.3.4", "Audit logs are protected from modification by file-integrity monitoring or "
                              "change detection"),
    ("PCI DSS 4.0", "11.5.2", "A change-detection mechanism alerts on unauthorised modification of critical "
                              "files and runs at least weekly"),
    ("DORA", "Art. 9(4)(e)", "ICT change management: changes are recorded, tested, assessed, approved, "
                             "implemented and verified in a controlled manner"),
]


def iso(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def short_time(value) -> str:
    """Table cells: minutes are enough, the JSON export has the same text."""
    if value is None:
        return ""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M")


def week_start(value: datetime.datetime) -> datetime.date:
    day = value.astimezone(datetime.UTC).date()
    return day - datetime.timedelta(days=day.weekday())


def month_start(value: datetime.datetime) -> datetime.date:
    return value.astimezone(datetime.UTC).date().replace(day=1)


class Buckets:
    """Time buckets for "per week" charts: weeks (Mondays) for ranges up to ~a year, months beyond.

    ``key(t)`` gives a timestamp's bucket; ``labels`` every bucket of the range, in order. The range
    end is clipped to now, so a range reaching into the future does not draw empty weeks."""

    def __init__(self, start: datetime.datetime, end: datetime.datetime, max_weeks: int = 60):
        end = min(end, timezone.now()) if end else timezone.now()
        start = min(start, end)
        self.by_month = (end - start).days > max_weeks * 7
        self.unit = "month" if self.by_month else "week"
        self.keys: list[datetime.date] = []
        day = self.key(start)
        last = self.key(end - datetime.timedelta(microseconds=1)) if end > start else day
        while day <= last:
            self.keys.append(day)
            step = datetime.timedelta(days=32 if self.by_month else 7)
            day = (day + step).replace(day=1) if self.by_month else day + step
        if len(self.keys) > 240:  # a decade of months is the most a chart can show legibly
            self.keys = self.keys[-240:]
        self.labels = [k.strftime("%Y-%m") if self.by_month else k.isoformat() for k in self.keys]

    def key(self, value: datetime.datetime) -> datetime.date:
        return month_start(value) if self.by_month else week_start(value)

    def values(self, counter) -> list[int]:
        return [int(counter.get(k, 0)) for k in self.keys]


def duration_text(seconds: int | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


class Section:
    """One detailed table: columns, every row (the JSON holds all; the PDF prints up to a cap).

    A column is ``(label, style, width %)``; style is ``""``, ``"mono"`` (hashes, fingerprints) or
    ``"nowrap"`` (times). Fixed widths keep WeasyPrint's table layout fast on long tables.
    """

    def __init__(self, key: str, title: str, columns: list[tuple[str, str, int]], empty: str, intro: str = ""):
        self.key, self.title, self.columns, self.empty, self.intro = key, title, columns, empty, intro
        self.rows: list[list] = []

    def add(self, *cells) -> None:
        self.rows.append(["" if cell is None else cell for cell in cells])

    def data(self) -> dict:
        return {
            "id": self.key,
            "title": self.title,
            "intro": self.intro,
            "columns": [{"label": label, "style": style, "width": width} for label, style, width in self.columns],
            "rows": self.rows,
            "row_count": len(self.rows),
            "empty": self.empty,
        }


class ReportDoc:
    """Collects a report's content; ``data`` is the JSON export and the PDF template's only input."""

    def __init__(self, report, scope: str, date_from=None, date_to=None):
        self.report = report
        self.scope = scope
        self.date_from, self.date_to = date_from, date_to
        self.generated_at = timezone.now()
        # A signed checkpoint is published before any row is read, and its tree size is the position the
        # report covers: builders read only records at or before it, so every cited record has an
        # inclusion proof in that checkpoint's tree (``integrity.proofs``).
        self.checkpoint = checkpoint_now(report.org)
        self.journal_index = self.checkpoint.size
        last = JournalLeaf.objects.filter(org=report.org, index=self.journal_index).values_list("leaf_hash", flat=True)
        self.journal_hash = last.first() or "0" * 64
        self.figures: list[list] = []
        self.charts: list[dict] = []
        self.sections: list[Section] = []
        self.unavailable: list[dict] = []
        self.cited: list[list] = []
        self.summary_text = ""
        self.rule = access.rule(report.kind)
        self.included = [part.key for part in access.included_parts(report)]
        self.omitted = list((report.sections or {}).get("omitted", []))
        # The integrity section is itself evidence that the log is protected against modification.
        self.control_sections: dict[str, list[str]] = {"10.3.4": ["Integrity"]}

    def includes(self, part: str) -> bool:
        """Whether the report contains ``part`` (the requester may read its data). An undeclared part
        is a programming error: every piece of content must say which permission guards it."""
        self.rule.part(part)
        return part in self.included

    def figure(self, label: str, value, *, part: str) -> None:
        if self.includes(part):
            self.figures.append([label, value])

    def chart(self, key: str, kind: str, title: str, labels: list[str], series: list[tuple[str, list, str]],
              unit: str = "", y_max: int | None = None, *, part: str) -> None:
        if not self.includes(part):
            return
        self.charts.append({
            "id": key, "type": kind, "title": title, "labels": labels, "unit": unit, "y_max": y_max,
            "series": [{"name": name, "values": values, "color": color} for name, values, color in series],
        })

    def section(self, key: str, title: str, columns: list[tuple[str, str, int]], empty: str, intro: str = "",
                controls: tuple[str, ...] = (), *, part: str | None = None) -> Section:
        """A detail table, in the report when its part (by default the part named like the section) is;
        otherwise a detached table whose rows go nowhere."""
        section = Section(key, title, columns, empty, intro)
        if not self.includes(part or key):
            return section
        self.sections.append(section)
        for control in controls:
            self.control_sections.setdefault(control, []).append(title)
        return section

    def not_available(self, title: str, reason: str) -> None:
        self.unavailable.append({"title": title, "reason": reason})

    def cite(self, kind: str, index: int, leaf_hash: str, label: str, *, part: str) -> None:
        """Cite a journal leaf (1-based ``index``). Builders read only records at or before the covered
        position; one committed after the checkpoint (a race with a concurrent write) has no proof in it
        and is not cited rather than failing the report."""
        if self.includes(part) and 1 <= index <= self.journal_index:
            self.cited.append([kind, index, leaf_hash, label])

    def sections_data(self) -> dict:
        """What the report contains and what was omitted for its requester's role, and why."""
        parts = {part.key: part for part in self.rule.parts}
        return {
            "included": [{"id": key, "title": parts[key].title, "requires": list(parts[key].permissions)}
                         for key in self.included],
            "omitted": [{**item, "note": access.omitted_note(item["requires"])} for item in self.omitted],
        }

    def data(self) -> dict:
        report = self.report
        org = report.org
        api = f"/api/v2/orgs/{org.slug}/reports/{report.pk}"
        return {
            "format": FORMAT,
            "report": {
                "id": str(report.pk),
                "kind": report.kind,
                "kind_label": ReportKind(report.kind).label,
                "title": report.title,
                "org": {"slug": org.slug, "name": org.name},
                "scope": self.scope,
                "from": iso(self.date_from),
                "to": iso(self.date_to),
                "generated_at": iso(self.generated_at),
                "generated_by": report.requested_by,
                "params": report.params,
                "sections": self.sections_data(),
            },
            "summary": {"text": self.summary_text, "figures": self.figures},
            "charts": self.charts,
            "sections": [section.data() for section in self.sections],
            "unavailable": self.unavailable,
            "controls": [
                {"framework": framework, "control": control, "title": title,
                 "sections": self.control_sections.get(control, [])}
                for framework, control, title in CONTROLS
            ],
            "integrity": {
                "journal": {"org": org.slug, "last_index": self.journal_index, "last_hash": self.journal_hash},
                "cited": self.cited,
                "cited_count": len(self.cited),
                "proofs": proof_bundle(org, [index for _, index, _, _ in self.cited], self.checkpoint),
                "api": {"report": api, "pdf": f"{api}/pdf", "json": f"{api}/json"},
                "pdf_row_limit": settings.CSM_REPORT_PDF_MAX_ROWS,
            },
        }


def breakdown_text(compliant: int, non_compliant: int, unknown: int) -> str:
    """Snapshots by compliance state as percentages of all evaluated ones, unknown (no policy) apart:
    "Compliant 40% · Non-compliant 10% · Unknown (no policy) 50%" ("n/a" when none was evaluated)."""
    total = compliant + non_compliant + unknown
    if not total:
        return "n/a"
    return (f"Compliant {100 * compliant // total}% · Non-compliant {100 * non_compliant // total}% · "
            f"Unknown (no policy) {100 * unknown // total}%")
