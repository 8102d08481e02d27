"""Requests built the way the kosli CLI builds them (``internal/requests/requests.go``), for the conformance
suite. Every test in ``tests/kosli/`` sends through ``cli``; the builders below follow the Go code:

- ``newHTTPRequest``: ``Content-Type: application/json; charset=utf-8`` and ``User-Agent: Kosli/<version>``
  on every request, ``Authorization: Bearer <token>``; a GET has no body; any other method sends
  ``json.Marshal(payload)`` (compact, struct field order; ``omitempty`` fields left out by the caller).
- ``createMultipartRequestBody``: when the command has form items, the body is ``multipart/form-data``
  (Go's ``mime/multipart.Writer``): a ``field`` item is ``CreateFormField(name)`` holding the field's JSON,
  a ``file`` item is ``CreateFormFile(name, basename)`` (``Content-Type: application/octet-stream``).
- Queries are ``url.Values.Encode()``: keys sorted, values ``QueryEscape``d (space as ``+``).

The CLI accepts only 200 and 201 as success (``Client.Do``); on anything else it prints the top-level
``message`` of a JSON object body (else the body as a Go map). ``cli_error`` reads an error that way.
"""

import json
import os
from urllib.parse import quote_plus

from rest_framework.test import APIClient

CLI_AGENT = "Kosli/v2.11.32"
JSON = "application/json; charset=utf-8"


def go_json(payload) -> bytes:
    """Go's ``json.Marshal``: compact, keys in the order given (struct order), no HTML escaping surprises
    for the ASCII payloads tests send."""
    return json.dumps(payload, separators=(",", ":")).encode()


def go_query(pairs) -> str:
    """``url.Values.Encode()``: sorted by key (stable for repeated keys), ``QueryEscape`` on both sides."""
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    ordered = sorted(pairs, key=lambda pair: pair[0])
    return "&".join(f"{quote_plus(str(k))}={quote_plus(str(v))}" for k, v in ordered)


def go_multipart(items) -> tuple[bytes, str]:
    """``createMultipartRequestBody``: ``items`` is a list of ``("field", name, value)`` (value JSON-encoded)
    or ``("file", name, (filename, bytes))``. Returns (body, content type)."""
    boundary = os.urandom(30).hex()
    out = bytearray()
    for kind, name, content in items:
        out += f"--{boundary}\r\n".encode()
        if kind == "field":
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += go_json(content)
        else:
            filename, data = content
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{os.path.basename(filename)}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            out += data
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def cli(token: str, method: str, path: str, payload=None, *, query=None, form=None, client=None):
    """One request as ``kosliClient.Do`` sends it: ``query`` pairs are encoded like ``url.Values``,
    ``form`` items make it multipart (then ``payload`` is unused, as in the CLI)."""
    client = client or APIClient()
    if query:
        path = f"{path}?{go_query(query)}"
    headers = {"HTTP_USER_AGENT": CLI_AGENT, "HTTP_AUTHORIZATION": f"Bearer {token}"}
    if form:
        body, content_type = go_multipart(form)
    else:
        body, content_type = (b"" if method == "GET" else go_json(payload)), JSON
    return client.generic(method, path, data=body, content_type=content_type, **headers)


def cli_error(answer) -> str:
    """What the CLI prints for a failed request (``Client.Do``): the top-level ``message`` string."""
    assert answer.status_code not in (200, 201), answer.content
    body = answer.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    return body["message"]
