"""Matching (owned by the matching helper): SBOM components → ``ComponentPackage`` (purl parsed with
packageurl-python), and ``VulnerabilityMatch`` rows from each ecosystem's own version semantics (univers).

Contract other modules rely on:

- ``index_sbom(attestation_id: int) -> list[int]`` — index the SBOM's components and match them against
  every known advisory; returns the new match ids (and calls ``hooks.run_matches_added(..., "sbom")``).
- ``rematch_advisories(advisory_ids: list[int]) -> dict[int, list[int]]`` — re-match only the components
  these advisories name (by ``package_key``); removes matches of withdrawn advisories or that no longer
  match; returns ``{org_id: [new match ids]}`` (and calls ``hooks.run_matches_added(..., "advisory")``).
"""
