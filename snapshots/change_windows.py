"""Change windows: when an environment expects changes. A per-environment schedule — a list of
``{"days": ["mon", ...], "start": "09:00", "end": "17:00"}`` in the environment's IANA time zone
(``change_window_tz``) — and the one function that says whether a moment falls inside it.

A window whose ``end`` is not after its ``start`` runs past midnight (``"start": "22:00", "end": "02:00"`` on
``fri`` is Friday 22:00 to Saturday 02:00); ``"end": "24:00"`` is the end of the day. An empty schedule means
no windows: nothing is ever outside. A change (a new snapshot made from a report) at a moment outside every
window is marked on the snapshot and flagged as unusual activity (snapshots.services.ingest); the policy
rule ``changes.within_change_windows`` can make it non-compliant (policies)."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csm.errors import ServiceError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOWS = 50
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minutes(text, field: str, allow_end_of_day: bool = False) -> int:
    if allow_end_of_day and text == "24:00":
        return 24 * 60
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise ServiceError("Give a time of day as HH:MM (00:00 to 23:59" + (", or 24:00" if allow_end_of_day else "")
                           + ").", field)
    return int(match.group(1)) * 60 + int(match.group(2))


def validate_time_zone(tz, field: str = "change_window_tz") -> str:
    """An IANA time zone name (``Europe/Berlin``, ``UTC``), or ``ServiceError`` naming ``field``."""
    if not isinstance(tz, str) or not tz or len(tz) > 64:
        raise ServiceError("Give an IANA time zone, e.g. UTC or Europe/Berlin.", field)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(f"Unknown time zone {tz!r}; give an IANA name, e.g. UTC or Europe/Berlin.", field) from None
    return tz


def validate_change_windows(windows, field: str = "change_windows") -> list[dict]:
    """The normalized schedule (days in week order, lower case), or ``ServiceError`` naming the item and key
    at fault (``change_windows[1].start``)."""
    if windows is None:
        return []
    if not isinstance(windows, list):
        raise ServiceError('Give a list of windows such as {"days": ["mon"], "start": "09:00", "end": "17:00"}.',
                           field)
    if len(windows) > MAX_WINDOWS:
        raise ServiceError(f"At most {MAX_WINDOWS} windows.", field)
    normalized = []
    for index, window in enumerate(windows):
        where = f"{field}[{index}]"
        if not isinstance(window, dict):
            raise ServiceError('A window is an object: {"days": [...], "start": "HH:MM", "end": "HH:MM"}.', where)
        unknown = sorted(set(window) - {"days", "start", "end"})
        if unknown:
            raise ServiceError(f"Unknown key {unknown[0]!r}; a window has days, start and end.",
                               f"{where}.{unknown[0]}")
        days = window.get("days")
        if not isinstance(days, list) or not days:
            raise ServiceError(f"Give one or more days: {', '.join(DAYS)}.", f"{where}.days")
        lowered = [day.strip().lower()[:3] if isinstance(day, str) else day for day in days]
        for position, day in enumerate(lowered):
            if day not in DAYS:
                raise ServiceError(f"Unknown day {days[position]!r}; use {', '.join(DAYS)}.",
                                   f"{where}.days[{position}]")
        start = _minutes(window.get("start"), f"{where}.start")
        end = _minutes(window.get("end"), f"{where}.end", allow_end_of_day=True)
        if start == end:
            raise ServiceError("The window is empty: its end equals its start.", f"{where}.end")
        normalized.append({"days": [day for day in DAYS if day in lowered], "start": window["start"],
                           "end": window["end"]})
    return normalized


def within_change_windows(windows: list[dict], tz: str, moment: datetime) -> bool:
    """Whether ``moment`` (aware) falls inside one of ``windows`` in time zone ``tz``. True without windows
    (nothing is outside an empty schedule)."""
    if not windows:
        return True
    local = moment.astimezone(ZoneInfo(tz or "UTC"))
    day, minute = DAYS[local.weekday()], local.hour * 60 + local.minute
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for window in windows:
        start = _minutes(window["start"], "start")
        end = _minutes(window["end"], "end", allow_end_of_day=True)
        if start < end:
            if day in window["days"] and start <= minute < end:
                return True
        elif (day in window["days"] and minute >= start) or (yesterday in window["days"] and minute < end):
            return True
    return False


def describe_windows(windows: list[dict], tz: str) -> str:
    """``mon-fri 09:00-17:00; sat 10:00-12:00 (Europe/Berlin)`` for messages and pages; "" without windows."""
    if not windows:
        return ""
    return f"{windows_to_text(windows).replace(chr(10), '; ')} ({tz or 'UTC'})"


def local_time_label(moment: datetime, tz: str) -> str:
    """``Sat 2026-12-05 03:12 Europe/Berlin``: the moment as the schedule sees it."""
    local = moment.astimezone(ZoneInfo(tz or "UTC"))
    return f"{local:%a %Y-%m-%d %H:%M} {tz or 'UTC'}"



_LINE = re.compile(r"^\s*([a-zA-Z,\-]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


def windows_from_text(text: str, field: str = "change_windows") -> list[dict]:
    """The web form's notation, one window per line: ``mon-fri 09:00-17:00``, ``sat,sun 10:00-12:00``
    (a day range wraps: ``fri-mon``). Blank lines are ignored; ``ServiceError`` names the line at fault."""
    windows = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ServiceError(f"Line {number}: write a window as days and hours, e.g. mon-fri 09:00-17:00.", field)
        days: list[str] = []
        for part in match.group(1).lower().split(","):
            first, _, last = part.partition("-")
            if first[:3] not in DAYS or (last and last[:3] not in DAYS):
                raise ServiceError(f"Line {number}: unknown day in {part!r}; use {', '.join(DAYS)}.", field)
            start = DAYS.index(first[:3])
            span = (DAYS.index(last[:3]) - start) % 7 if last else 0
            days += [DAYS[(start + offset) % 7] for offset in range(span + 1)]
        try:
            windows += validate_change_windows([{"days": days, "start": match.group(2).zfill(5),
                                                 "end": match.group(3).zfill(5)}])
        except ServiceError as error:
            raise ServiceError(f"Line {number}: {error.message}", field) from None
    return windows


def windows_to_text(windows: list[dict]) -> str:
    """The schedule in the web form's notation (consecutive days as a range)."""
    lines = []
    for window in windows or []:
        indexes = [DAYS.index(day) for day in window["days"]]
        runs, run = [], [indexes[0]] if indexes else []
        for index in indexes[1:]:
            if index == run[-1] + 1:
                run.append(index)
            else:
                runs.append(run)
                run = [index]
        if run:
            runs.append(run)
        days = ",".join(DAYS[r[0]] if len(r) == 1 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}" for r in runs)
        lines.append(f"{days} {window['start']}-{window['end']}")
    return "\n".join(lines)
