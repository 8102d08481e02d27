"""VEX (owned by the VEX helper): the ``vex`` attestation's statements (OpenVEX, CycloneDX VEX) stored as
``VexStatement`` rows, and the suppression rule.

Contract other modules rely on:

- ``index_vex(attestation_id: int) -> int`` — store the statements of a committed ``vex`` attestation.
- ``suppressions(org, fingerprints, aliases_by_group: dict[str, set[str]]) -> dict[tuple[str, str], dict]``
  — ``{(artifact_fingerprint, group_id): {"status", "justification", "impact_statement",
  "attestation_id", "created_at", "vulnerability_id"}}`` for every (artifact, vulnerability group) whose
  newest applicable statement has a suppressing status (``choices.SUPPRESSING``).
"""
