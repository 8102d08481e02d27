"""Audit packages: a tar.gz with every evidence file of a trail, an artifact or an attestation and a
``manifest.json`` (metadata, the SHA-256 and size of each file, the journal index and leaf hash of each
record, and ``journal_proofs``: a signed checkpoint of the org's journal with an inclusion proof of every
record the manifest names, so ``csm-verify package`` checks it offline). Every file is re-verified against
its SHA-256 while the package is built; a corrupted stored file aborts the package
(``storage.EvidenceCorrupted``) instead of shipping bad evidence. A file the org's retention removed is
listed without a path, with ``removed_by_retention_at``; its journal proof still commits to its SHA-256."""

import io
import json
import tarfile
import tempfile

from django.utils import timezone

from evidence import storage
from evidence.models import Artifact, Attestation
from journal.selectors import proof_bundle
from journal.services import checkpoint_now


def _journal(row) -> dict | None:
    """Where a record sits in the journal: ``index`` is the 1-based journal index (the API's
    ``journal_index``), ``merkle_index`` the 0-based leaf index its inclusion proof uses."""
    leaf = row.leaf
    return {"index": leaf.index, "merkle_index": leaf.index - 1, "leaf_hash": leaf.leaf_hash} if leaf else None


def _journal_indices(manifest: dict) -> set[int]:
    records = [*manifest["artifacts"], *manifest["attestations"], *manifest["files"]]
    return {record["journal"]["index"] for record in records if record["journal"]}


def _attestation_entry(attestation: Attestation, files: list) -> dict:
    return {
        "id": attestation.pk, "name": attestation.name, "type": attestation.type_label,
        "flow": attestation.flow.name, "trail": attestation.trail.name,
        "artifact_fingerprint": attestation.artifact.fingerprint if attestation.artifact_id
        else attestation.artifact_fingerprint,
        "is_compliant": attestation.is_compliant, "verification": attestation.verification,
        "problems": attestation.problems, "results": attestation.results, "reason": attestation.reason,
        "reported_by": attestation.reported_by, "created_at": attestation.created_at.isoformat(),
        "journal": _journal(attestation), "files": files,
    }


def _artifact_entry(artifact: Artifact) -> dict:
    return {"id": artifact.pk, "fingerprint": artifact.fingerprint, "filename": artifact.filename,
            "template_name": artifact.template_name, "flow": artifact.flow.name,
            "trail": artifact.trail.name if artifact.trail_id else "", "git_commit": artifact.git_commit,
            "commit_url": artifact.commit_url, "build_url": artifact.build_url, "repo_url": artifact.repo_url,
            "reported_by": artifact.reported_by, "created_at": artifact.created_at.isoformat(),
            "journal": _journal(artifact)}


def _add(archive: tarfile.TarFile, path: str, handle, size: int, mtime) -> None:
    info = tarfile.TarInfo(path)
    info.size = size
    info.mode = 0o644
    info.mtime = int(mtime.timestamp())
    archive.addfile(info, handle)


def build_package(org, subject: dict, attestations, artifacts=(), compliance: dict | None = None):
    """A rewound temporary file holding the tar.gz package.

    A checkpoint is published first, and published again at the end only when a record read meanwhile
    (committed after the first one) is not in its tree — so every record the manifest names has an
    inclusion proof in the checkpoint it carries."""
    checkpoint = checkpoint_now(org)
    out = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - returned to the caller
    now = timezone.now()
    manifest = {"format": "csm-audit-package/1", "org": org.slug, "generated_at": now.isoformat(),
                "subject": subject, "compliance": compliance, "artifacts": [_artifact_entry(a) for a in artifacts],
                "attestations": [], "files": []}
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for attestation in attestations:
            files = []
            links = attestation.evidence_links.select_related("evidence_file").order_by("name", "id")
            for link in links:
                evidence = link.evidence_file
                path = f"evidence/{attestation.pk}-{attestation.name}/{link.name}"
                if evidence.dropped_at is not None:
                    # Retention deleted the bytes: listed without a path (csm-verify then checks only its
                    # journal proof, which commits to the SHA-256), saying when and why.
                    path = None
                else:
                    with storage.open_verified(evidence) as handle:
                        _add(archive, path, handle, evidence.size, evidence.created_at)
                entry = {"path": path, "sha256": evidence.sha256, "size": evidence.size,
                         "journal": _journal(evidence),
                         **({"removed_by_retention_at": evidence.dropped_at.isoformat()} if path is None else {})}
                files.append(entry)
                manifest["files"].append(entry)
            manifest["attestations"].append(_attestation_entry(attestation, files))
        indices = _journal_indices(manifest)
        if indices and max(indices) > checkpoint.size:
            checkpoint = checkpoint_now(org)
        manifest["journal_proofs"] = proof_bundle(org, indices, checkpoint)
        body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        _add(archive, "manifest.json", io.BytesIO(body), len(body), now)
    out.seek(0)
    return out
