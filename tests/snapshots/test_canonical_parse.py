"""Ingest parses an accepted body up to WHOLE_PARSE_MAX_BYTES whole with msgspec and streams larger ones
(snapshots/report_bodies.py): both must give the same canonical running set, byte for byte."""

import json

import pytest

from snapshots import report_bodies
from snapshots.report_bodies import canonicalize_body, instances_json

FP = "a" * 64
OTHER = "b" * 64

BODIES = [
    # the usual K8S shape, two containers per pod, unsorted pods
    {"artifacts": [{"podName": f"web-{i}", "namespace": "prod", "digests": {"web": FP, "envoy": OTHER},
                    "creationTimestamp": 1_764_000_000 + i, "owners": [{"kind": "ReplicaSet", "uid": str(i)}]}
                   for i in (3, 1, 2)], "type": "K8S"},
    # integers past 64 bits, floats, unicode, escapes, a duplicate key inside an entry (the last value wins)
    {"artifacts": [{"podName": "p\u00e9-\u2028", "namespace": "n\"s", "digests": {"x": FP},
                    "creationTimestamp": 1.5, "owners": [{"n": 123456789012345678901234567890, "f": 0.1,
                                                          "e": -0.0, "t": 5e-324}]}]},
    # an entry without digests is skipped
    {"artifacts": [{"podName": "a", "namespace": "n", "digests": {}}, {"podName": "b", "namespace": "n",
                                                                      "digests": {"y": OTHER}}]},
]

# Texts msgspec refuses or reads another way: they go through the streaming parser, as before.
TEXTS = [
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": "' + FP.encode()
    + b'"}, "owners": [{"big": 1e400}]}]}',
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": "' + FP.encode()
    + b'"}, "podName": "z"}]}',
    b'  {"type": "K8S", "artifacts": []}  ',
]


def canonical(raw: bytes):
    return {key: instances_json(list(instances)) for key, instances in canonicalize_body("K8S", raw).items()}


@pytest.mark.parametrize("raw", [json.dumps(b).encode() for b in BODIES] + TEXTS)
def test_whole_parse_and_streaming_agree(raw, monkeypatch):
    whole = canonical(raw)
    monkeypatch.setattr(report_bodies, "WHOLE_PARSE_MAX_BYTES", 0)  # every body streams
    assert canonical(raw) == whole


def test_a_body_over_the_limit_streams(monkeypatch):
    raw = json.dumps(BODIES[0]).encode()
    monkeypatch.setattr(report_bodies, "WHOLE_PARSE_MAX_BYTES", len(raw) - 1)
    monkeypatch.setattr(report_bodies, "_decode", None)  # would fail if called
    assert canonical(raw)


@pytest.mark.parametrize("raw", [json.dumps(b).encode() for b in BODIES] + TEXTS + [
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": "' + FP.encode() + b'"}},]}',  # trailing comma
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": "' + FP.encode() + b'"}} {}]}',
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": NaN}}]}',
    b'{"artifacts": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
    b'{"artifacts": [{"podName": "a", "namespace": "n", "digests": {"x": "' + FP.encode() + b'"}}], "artifacts": []}',
])
def test_validation_reads_a_small_body_whole_with_the_same_answers(raw, monkeypatch):
    """validate_report_body: the artifacts array of a small body in one call of the C scanner; the same
    count, or the same ReportInvalid (message and fields), as streaming it entry by entry."""

    def answer():
        try:
            return report_bodies.validate_report_body("K8S", raw)
        except report_bodies.ReportInvalid as error:
            return error.message, error.fields

    whole = answer()
    monkeypatch.setattr(report_bodies, "WHOLE_PARSE_MAX_BYTES", 0)
    assert answer() == whole
