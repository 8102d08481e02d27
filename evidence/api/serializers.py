"""JSON shapes of the evidence vault's API answers (plain functions: the rows are append-only records,
written only by services, never bound to input)."""

from django.urls import reverse


def flow_dict(flow) -> dict:
    return {"name": flow.name, "description": flow.description, "visibility": flow.visibility, "tags": flow.tags,
            "template": flow.template, "sarif_threshold": flow.sarif_threshold, "archived": flow.archived,
            "created_at": flow.created_at, "updated_at": flow.updated_at}


def trail_dict(trail, compliance: dict | None = None) -> dict:
    data = {"name": trail.name, "flow": trail.flow.name, "description": trail.description,
            "git_commit": trail.git_commit, "git_commit_info": trail.git_commit_info, "origin_url": trail.origin_url,
            "user_data": trail.user_data, "external_urls": trail.external_urls,
            "template": trail.effective_template(), "created_at": trail.created_at, "updated_at": trail.updated_at}
    if compliance is not None:
        data["compliance"] = compliance
    return data


def evidence_dict(evidence, name: str | None = None) -> dict:
    org = evidence.org.slug
    return {"name": name if name is not None else evidence.original_name, "sha256": evidence.sha256,
            "size": evidence.size, "content_type": evidence.content_type, "uploaded_by": evidence.uploaded_by,
            "created_at": evidence.created_at, "journal_index": evidence.leaf.index if evidence.leaf_id else None,
            "download_url": reverse("api-evidence-download", args=[org, evidence.sha256]),
            # When the org's retention deleted the stored bytes (the download then answers 410); else null.
            "dropped_at": evidence.dropped_at}


def attestation_dict(attestation) -> dict:
    return {
        "id": attestation.pk, "attestation_id": str(attestation.pk), "name": attestation.name,
        "type": attestation.type_label,
        "flow": attestation.flow.name, "trail": attestation.trail.name,
        "artifact_fingerprint": attestation.artifact.fingerprint if attestation.artifact_id
        else attestation.artifact_fingerprint or None,
        "bound": attestation.artifact_id is not None, "target_artifact": attestation.target_artifact,
        "git_commit": attestation.git_commit, "is_compliant": attestation.is_compliant,
        "verification": attestation.verification, "problems": attestation.problems, "results": attestation.results,
        "summary": attestation.summary, "user_data": attestation.user_data,
        "external_urls": attestation.external_urls, "annotations": attestation.annotations,
        "description": attestation.description, "origin_url": attestation.origin_url, "reason": attestation.reason,
        "reported_by": attestation.reported_by, "created_at": attestation.created_at,
        "journal_index": attestation.leaf.index if attestation.leaf_id else None,
        "journal": {"index": attestation.leaf.index, "leaf_hash": attestation.leaf.leaf_hash}
        if attestation.leaf_id else None,
        "evidence": [evidence_dict(link.evidence_file, link.name) for link in attestation.evidence_links.all()],
    }


def artifact_dict(artifact) -> dict:
    return {"fingerprint": artifact.fingerprint, "filename": artifact.filename,
            "template_name": artifact.template_name, "flow": artifact.flow.name,
            "trail": artifact.trail.name if artifact.trail_id else None, "git_commit": artifact.git_commit,
            "git_commit_info": artifact.git_commit_info, "commit_url": artifact.commit_url,
            "build_url": artifact.build_url, "repo_url": artifact.repo_url, "repo_info": artifact.repo_info,
            "external_urls": artifact.external_urls, "annotations": artifact.annotations,
            "reported_by": artifact.reported_by, "created_at": artifact.created_at,
            "journal_index": artifact.leaf.index if artifact.leaf_id else None,
            "journal": {"index": artifact.leaf.index, "leaf_hash": artifact.leaf.leaf_hash}
            if artifact.leaf_id else None}


def custom_type_version_dict(version) -> dict:
    """One version as ``kosli get attestation-type`` prints it (``printVersionedAttestationTypeAsTable``:
    ``version`` a number, ``timestamp`` epoch seconds, ``created_by``, ``type_schema``, ``evaluator`` with
    ``content_type`` and ``rules``, ``summary`` [{name, expression}] or null), plus csm's expression ``rule``."""
    return {"version": version.version, "timestamp": epoch(version.created_at), "created_by": version.created_by,
            "description": version.description, "type_schema": version.schema,
            "evaluator": {"content_type": "jq", "rules": version.jq_rules} if version.jq_rules else None,
            "summary": version.summary or None, "rule": version.rule}


def custom_type_dict(custom, versions=None) -> dict:
    """A custom attestation type as kosli answers it (``getAttestationType.go`` / ``listAttestationTypes.go``
    read ``name``, ``description``, ``org``, ``archived``, ``created_by``, ``created_at`` and
    ``last_modified_at`` (epoch seconds) and ``versions``), plus csm's names for the latest definition
    (``schema``, ``rule``, ``jq_rules``, ``summary``). ``versions`` defaults to all of them, oldest first."""
    if versions is None:
        versions = custom.versions.order_by("version")
    return {"name": custom.name, "description": custom.description, "org": custom.org.slug,
            "archived": custom.archived, "archived_at": epoch(custom.archived_at), "created_by": custom.created_by,
            "created_at": epoch(custom.created_at), "last_modified_at": epoch(custom.updated_at),
            "schema": custom.schema, "rule": custom.rule, "jq_rules": custom.jq_rules, "summary": custom.summary,
            "versions": [custom_type_version_dict(version) for version in versions]}


def epoch(moment) -> float | None:
    """Seconds since 1970, as the kosli CLI reads times (``formattedTimestamp``)."""
    return moment.timestamp() if moment is not None else None
