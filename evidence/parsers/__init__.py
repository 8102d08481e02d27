"""Server-side parsing of attestation evidence. Each parser takes a file name and its bytes and returns a
summary (plain JSON, integers and strings only — results go into the journal's canonical JSON), returns
None when the file is not of its kind (an unrelated file in the same attachment), or raises ParseError
naming the file and the problem (a malformed file → 400)."""

import json

from django.conf import settings

from csm.lib.bounded import json_depth_exceeds


class ParseError(ValueError):
    """A malformed evidence file: ``message`` names the file and what is wrong with it."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def load_json(name: str, data: bytes):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError(f"{name}: not UTF-8 text") from None
    # The API's non-recursive depth check (csm.lib.bounded) before the recursive parser: a file nested 50,000
    # deep was a RecursionError (a 500).
    if json_depth_exceeds(text, settings.CSM_JSON_MAX_DEPTH):
        raise ParseError(f"{name}: JSON nested more than {settings.CSM_JSON_MAX_DEPTH} levels deep (the limit)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:  # Python's decoder recurses per nesting level
        raise ParseError(f"{name}: JSON nested too deeply") from None
