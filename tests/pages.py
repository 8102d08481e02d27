"""Helpers for tests that read rendered pages."""

import re


def section(html: str, testid: str) -> str:
    """The element marked ``data-testid=testid``, up to its matching closing tag."""
    marker = html.index(f'data-testid="{testid}"')
    start = html.rindex("<", 0, marker)
    tag = re.match(r"<(\w+)", html[start:]).group(1)
    depth = 0
    for match in re.compile(rf"<(/?){tag}\b[^>]*>").finditer(html, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html[start:match.end()]
    raise AssertionError(f"unclosed <{tag}> for {testid}")
