"""Extension points of the snapshot journal, for the parts of csm that build on it.

The snapshot app knows nothing about evidence, policies or alerts; those apps register here in their
``AppConfig.ready()``:

- ``after_snapshot(fn)``: ``fn(snapshot_id: int, ctx_dict: dict)`` runs after a new snapshot has
  committed (in the ingest worker, same task; an exception is logged and does not undo the snapshot).
  Policy evaluation and alerts hang off this.
- ``artifact_enricher(fn)``: ``fn(org, fingerprints: set[str]) -> dict[str, dict]`` adds fields to each
  artifact of a snapshot / diff / search answer (provenance from the evidence vault, compliance from
  policies). Called once per answer with every fingerprint in it (no N+1), never writes.
- ``snapshot_enricher(fn)``: ``fn(snapshot, artifacts=None) -> dict`` adds top-level fields to a snapshot
  read (the policies app: ``compliant``, ``applied_policies``); a key ``"artifacts"`` in the answer is a
  ``{fingerprint: fields}`` map merged into that snapshot's artifacts (per-snapshot compliance), and a
  key ``"artifact_defaults"`` holds fields for every running artifact the map does not name (so an
  answer that is the same for all artifacts costs a constant, not a per-artifact computation).
  ``artifacts`` is the list the caller already read (``[{name, fingerprint, ...}]``), so an enricher
  that must look at the artifacts never reads the snapshot a second time.
- ``snapshot_list_enricher(fn)``: ``fn(environment, snapshots) -> {index: fields}`` adds fields to each
  row of a page of the snapshot list (the policies app: ``compliant``); one call (a fixed number of
  queries) per page.
- ``environment_enricher(fn)``: ``fn(org, environments) -> {environment id: fields}`` adds fields to
  environment answers (the policies app: ``compliant`` — None when no policy applies —,
  ``compliance_status``, ``policed``, ``unauthorized_count``); one call (a fixed number of queries) per
  list.
- ``environment_settings_changed(fn)``: ``fn(environment_id, reason, ctx_dict)`` runs inside the
  transaction of a settings change that alters what the environment's artifacts are judged against
  (``require_authorization``); the policies app asks for a re-evaluation on commit.
- ``environment_renamed(fn)``: ``fn(org, environment_id, old_name, new_name, ctx_dict)`` runs inside the
  transaction of a rename, for what refers to environments by name (the alerts app: actions' environment
  lists), so a rename never silently stops an alert.
- ``search_matcher(fn)``: ``fn(org, prefix: str) -> list[dict]`` adds matches to the fingerprint
  search (the evidence vault matches git commits, kind ``git_commit``, and fingerprints flows reported,
  kind ``fingerprint``).
- ``name_search_matcher(fn)``: ``fn(org, text: str, limit: int) -> list[dict]`` adds matches to the
  web search by name (the evidence vault matches flows and trails by name, artifacts by reported name);
  each match has a ``kind`` (``flow`` / ``trail`` / ``artifact``).
"""

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_after_snapshot: list[Callable[[int, dict], None]] = []
_enrichers: list[Callable] = []
_search_matchers: list[Callable] = []
_snapshot_enrichers: list[Callable] = []
_snapshot_list_enrichers: list[Callable] = []
_name_search_matchers: list[Callable] = []
_environment_enrichers: list[Callable] = []
_environment_settings_changed: list[Callable] = []
_environment_renamed: list[Callable] = []


def environment_renamed(fn):
    if fn not in _environment_renamed:
        _environment_renamed.append(fn)
    return fn


def run_environment_renamed(org, environment_id: int, old_name: str, new_name: str, ctx_dict: dict) -> None:
    for fn in list(_environment_renamed):
        fn(org, environment_id, old_name, new_name, ctx_dict)


def environment_enricher(fn):
    if fn not in _environment_enrichers:
        _environment_enrichers.append(fn)
    return fn


def environment_settings_changed(fn):
    if fn not in _environment_settings_changed:
        _environment_settings_changed.append(fn)
    return fn


def enrich_environments(org, environments) -> dict[int, dict]:
    """``{environment id: fields}`` from every environment enricher (one call each per list)."""
    merged: dict[int, dict] = {}
    environments = list(environments)
    if not environments:
        return merged
    for fn in list(_environment_enrichers):
        for env_id, fields in (fn(org, environments) or {}).items():
            merged.setdefault(env_id, {}).update(fields)
    return merged


def run_environment_settings_changed(environment_id: int, reason: str, ctx_dict: dict) -> None:
    for fn in list(_environment_settings_changed):
        fn(environment_id, reason, ctx_dict)


def after_snapshot(fn):
    if fn not in _after_snapshot:
        _after_snapshot.append(fn)
    return fn


def artifact_enricher(fn):
    if fn not in _enrichers:
        _enrichers.append(fn)
    return fn


def snapshot_enricher(fn):
    if fn not in _snapshot_enrichers:
        _snapshot_enrichers.append(fn)
    return fn


def snapshot_list_enricher(fn):
    if fn not in _snapshot_list_enrichers:
        _snapshot_list_enrichers.append(fn)
    return fn


def enrich_snapshot(snapshot, artifacts: list[dict] | None = None) -> tuple[dict, dict[str, dict], dict]:
    """(top-level fields, {fingerprint: artifact fields}, fields for every other running artifact) from
    every snapshot enricher."""
    top: dict = {}
    per_artifact: dict[str, dict] = {}
    defaults: dict = {}
    for fn in list(_snapshot_enrichers):
        fields = dict(fn(snapshot, artifacts) or {})
        for fingerprint, extra in (fields.pop("artifacts", None) or {}).items():
            per_artifact.setdefault(fingerprint, {}).update(extra)
        defaults.update(fields.pop("artifact_defaults", None) or {})
        top.update(fields)
    return top, per_artifact, defaults


def enrich_artifacts(org, artifacts: list[dict], snapshot=None) -> dict:
    """Everything the extensions add to artifacts, for the API, the web pages and reports alike: the
    artifact enrichers' fields (provenance...) and, when the artifacts are one snapshot's, the snapshot
    enrichers' per-artifact fields (compliance...), merged into ``artifacts`` in place. Returns the
    snapshot enrichers' top-level fields ({} without a snapshot)."""
    extra = enrich(org, {a.get("fingerprint") for a in artifacts})
    if snapshot is None:
        if extra:
            for artifact in artifacts:
                artifact.update(extra.get(artifact.get("fingerprint"), ()))
        return {}
    top, per_artifact, defaults = enrich_snapshot(snapshot, artifacts)
    combined: dict[int, dict] = {}  # id(artifact enricher fields) → those fields + defaults, merged once
    for artifact in artifacts:
        fingerprint = artifact.get("fingerprint")
        fields = extra.get(fingerprint) if extra else None
        if defaults and artifact["annotation"]["now"]:
            merged = combined.get(id(fields))
            if merged is None:
                merged = combined[id(fields)] = {**(fields or {}), **defaults}
            artifact.update(merged)
        elif fields:
            artifact.update(fields)
        if per_artifact:
            artifact.update(per_artifact.get(fingerprint, ()))
    return top


def enrich_snapshot_list(environment, snapshots) -> dict[int, dict]:
    """``{snapshot index: fields}`` from every snapshot list enricher, for one page of the list."""
    merged: dict[int, dict] = {}
    if not snapshots:
        return merged
    for fn in list(_snapshot_list_enrichers):
        for index, fields in (fn(environment, snapshots) or {}).items():
            merged.setdefault(index, {}).update(fields)
    return merged


def search_matcher(fn):
    if fn not in _search_matchers:
        _search_matchers.append(fn)
    return fn


def run_after_snapshot(snapshot_id: int, ctx_dict: dict) -> None:
    for fn in list(_after_snapshot):
        try:
            fn(snapshot_id, ctx_dict)
        except Exception:
            log.exception("after_snapshot hook %s failed for snapshot %s", getattr(fn, "__name__", fn), snapshot_id)


def enrich(org, fingerprints) -> dict[str, dict]:
    """Merge every enricher's fields per fingerprint."""
    merged: dict[str, dict] = {}
    wanted = {fp for fp in fingerprints if fp}
    if not wanted:
        return merged
    enrichers = list(_enrichers)
    if len(enrichers) == 1:  # the usual case (the evidence vault): its answer is already the merge
        return dict(enrichers[0](org, wanted) or {})
    for fn in enrichers:
        for fingerprint, fields in (fn(org, wanted) or {}).items():
            merged.setdefault(fingerprint, {}).update(fields)
    return merged


def extra_search_matches(org, prefix: str) -> list[dict]:
    results: list[dict] = []
    for fn in list(_search_matchers):
        results.extend(fn(org, prefix) or [])
    return results


def name_search_matcher(fn):
    if fn not in _name_search_matchers:
        _name_search_matchers.append(fn)
    return fn


def extra_name_matches(org, text: str, limit: int) -> list[dict]:
    results: list[dict] = []
    for fn in list(_name_search_matchers):
        results.extend(fn(org, text, limit) or [])
    return results
