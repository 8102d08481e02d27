"""OSV import (owned by the import helper): read OSV JSON records from a directory, a ``.zip`` or an
http(s) URL of a zip; store each changed record as ``Advisory`` + ``AdvisoryAlias`` + ``AffectedPackage``;
then re-match the changed advisories (``matching.rematch_advisories``).

Contract other modules rely on:

- ``import_sources(sources: list[str], *, ctx=None) -> ImportResult`` — ``ImportResult`` has ``created``,
  ``updated``, ``unchanged``, ``withdrawn``, ``rejected`` (counts) and ``changed_ids`` (advisory pks).
- ``group_for(alias: str) -> list[Advisory]`` — every advisory of the group the alias belongs to (any
  case of the id), [] when unknown.
"""
