"""Exposure (owned by the exposure/API helper): where and when affected artifacts ran, read from the
snapshot journal (``SnapshotEntry`` ranges and ``Snapshot`` times), never copied.

Contract other modules rely on:

- ``vulnerability_exposure(org, group_id: str, environment=None) -> dict`` — ``{"running": [...],
  "history": [...], "suppressed": [...], "coverage_unknown": [...]}``; each window is
  ``{"environment", "environment_id", "artifact_name", "fingerprint", "components": [purl...],
  "from": datetime, "to": datetime | None, "from_index": int, "to_index": int | None}``.
- ``artifact_vulnerabilities(org, fingerprints) -> dict[str, list[dict]]`` — per fingerprint, every
  vulnerability group matching it: ``{"group_id", "osv_ids", "aliases", "severity", "cvss_score",
  "summary", "components": [purl...], "fixed": [...], "suppressed": dict | None, "first_matched_at"}``,
  worst first. What the artifact and environment pages, the policy rule and the Rego input use.
"""
