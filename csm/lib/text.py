"""Showing untrusted text safely (Django-free).

Explicit bidirectional-formatting controls in a user- or agent-supplied string (an artifact, flow or
environment name, an org name, an actor label) reorder what is displayed around them: a RIGHT-TO-LEFT
OVERRIDE makes ``\u202egnp.exe`` read ``exe.png`` and can flip the rest of a line or a table row. Like
GitHub's "hidden Unicode" warning, csm shows each such control as a visible code point, ``[U+202E]``,
wherever it shows text: every HTML page (csm.middleware.RevealBidiControlsMiddleware), PDF reports
(the ``bidi`` template filter) and the reports' ledger rows. Ordinary right-to-left text (Hebrew,
Arabic) needs none of these controls and is left alone.
"""

# LRM, RLM, ALM; LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI
BIDI_CONTROLS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_VISIBLE = {ord(c): f"[U+{ord(c):04X}]" for c in BIDI_CONTROLS}


def reveal_bidi_controls(text: str) -> str:
    """``text`` with every bidi control replaced by its visible code point, e.g. ``[U+202E]``."""
    return text.translate(_VISIBLE)


def has_bidi_controls(text: str) -> bool:
    return any(c in text for c in BIDI_CONTROLS)
