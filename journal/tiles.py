"""C2SP tlog-tiles paths (https://c2sp.org/tlog-tiles), parsed strictly.

A hash tile is ``tile/<L>/<N>[.p/<W>]``, an entry bundle ``tile/entries/<N>[.p/<W>]``:

- ``<L>`` the tile level, decimal 0..63 without leading zeroes (tile level L holds tree level ``8 * L``);
- ``<N>`` the tile index in 3-digit groups, every group but the last prefixed with ``x``
  (1234067 → ``x001/x234/067``);
- ``.p/<W>`` only for a partial tile: its width, decimal 1..255 without leading zeroes.

Only the canonical spelling is accepted (no ``x000`` leading group, no leading zeroes), so each tile has
exactly one URL: full tiles are served as immutable, and two URLs for one tile would split every cache.
A malformed path raises ``ServiceError`` (HTTP 400) naming the problem.
"""

import re
from dataclasses import dataclass

from csm.errors import ServiceError

MAX_LEVEL = 63
# 7 groups reach 10**21 - 1, past the last tile of any tree a 64-bit index can number (2**63 / 256).
MAX_GROUPS = 7
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"x[0-9]{3}")
_LAST_GROUP = re.compile(r"[0-9]{3}")


@dataclass(frozen=True)
class TileRef:
    """One tile: ``level`` None for an entry bundle, ``width`` None for a full tile."""

    level: int | None
    number: int
    width: int | None

    @property
    def path(self) -> str:
        """The canonical path below ``tile/``."""
        head = "entries" if self.level is None else str(self.level)
        tail = f".p/{self.width}" if self.width is not None else ""
        return f"{head}/{index_path(self.number)}{tail}"


def _malformed(message: str) -> ServiceError:
    return ServiceError(f"malformed tile path: {message}", field="tile")


def index_path(number: int) -> str:
    """``<N>`` of a tile index: 3-digit groups, all but the last prefixed with ``x``."""
    digits = str(number)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def _parse_index(segments: list[str]) -> int:
    if not segments or segments == [""]:
        raise _malformed("the tile index is missing")
    if len(segments) > MAX_GROUPS:
        raise _malformed(f"the tile index has more than {MAX_GROUPS} groups")
    *leading, last = segments
    for group in leading:
        if not _GROUP.fullmatch(group):
            raise _malformed(f"{group!r} is not an index group ('x' and 3 digits, e.g. x001)")
    if not _LAST_GROUP.fullmatch(last):
        raise _malformed(f"{last!r} is not the last index group (3 digits, e.g. 067)")
    if leading and leading[0] == "x000":
        raise _malformed("the tile index starts with x000 (write it without the leading zero group)")
    return int("".join(group.lstrip("x") for group in segments))


def _parse_index_and_width(text: str) -> tuple[int, int | None]:
    segments = text.split("/")
    width = None
    if len(segments) >= 2 and segments[-2].endswith(".p"):
        width_text = segments[-1]
        if not _WIDTH.fullmatch(width_text) or int(width_text) > 255:
            raise _malformed(f"the partial width {width_text!r} is not a number from 1 to 255 "
                             "without leading zeroes")
        width = int(width_text)
        segments = [*segments[:-2], segments[-2][:-2]]
    return _parse_index(segments), width


def parse_hash_tile(text: str) -> TileRef:
    """``<L>/<N>[.p/<W>]`` (the part after ``tile/``)."""
    level_text, _, rest = text.partition("/")
    if not _LEVEL.fullmatch(level_text) or int(level_text) > MAX_LEVEL:
        raise _malformed(f"the level {level_text!r} is not a number from 0 to {MAX_LEVEL} without leading zeroes")
    number, width = _parse_index_and_width(rest)
    return TileRef(int(level_text), number, width)


def parse_entry_bundle(text: str) -> TileRef:
    """``<N>[.p/<W>]`` (the part after ``tile/entries/``)."""
    number, width = _parse_index_and_width(text)
    return TileRef(None, number, width)
