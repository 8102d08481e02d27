from django.db import migrations

from csm.db import append_only


def backfill(apps, schema_editor):
    """Repositories from the provenance already stored: every artifact's ``repo_info`` / ``repo_url`` and
    every attestation's ``repo_info``, oldest first, with the same parsing as ingest (evidence.repos). Trails
    kept no ``repo_info`` before repositories existed, so a trail is linked through its attestations and
    artifacts. A malformed ``repo_info`` (accepted before it was checked) is skipped, not guessed at."""
    from csm.errors import ServiceError
    from evidence.repos import HTTP_URL, parse_repo

    Repository = apps.get_model("evidence", "Repository")
    Sighting = apps.get_model("evidence", "RepositorySighting")
    Artifact = apps.get_model("evidence", "Artifact")
    Attestation = apps.get_model("evidence", "Attestation")

    def repository(org_id, ref, moment):
        """As evidence.repos._existing / _upsert: by the provider's id (adopting a row seen without one), or
        by name when only a URL named it; a bare URL never overwrites a reported one."""
        rows = Repository.objects.filter(org_id=org_id, provider=ref.provider)
        if ref.external_id:
            repo = (rows.filter(external_id=ref.external_id).first()
                    or rows.filter(external_id="", name=ref.name).first())
        else:
            named = rows.filter(name=ref.name)
            repo = named.filter(external_id="").first() or named.order_by("-last_seen_at", "-id").first()
        if repo is None:
            return Repository.objects.create(org_id=org_id, name=ref.name, provider=ref.provider, url=ref.url,
                                             external_id=ref.external_id, first_seen_at=moment, last_seen_at=moment)
        for field in ("name", "url", "external_id"):
            if getattr(ref, field) and (ref.from_info or not getattr(repo, field)):
                setattr(repo, field, getattr(ref, field))
        repo.last_seen_at = max(repo.last_seen_at, moment)
        repo.save(update_fields=["last_seen_at", "url", "name", "external_id"])
        return repo

    def sight(row, ref, **links):
        if ref is None:
            return
        repo = repository(row.org_id, ref, row.created_at)
        commit_url = getattr(row, "commit_url", "") or ""
        Sighting.objects.create(org_id=row.org_id, repository=repo, flow_id=row.flow_id, trail_id=row.trail_id,
                                git_commit=(row.git_commit or "")[:64],
                                commit_url=commit_url if HTTP_URL.match(commit_url) else "",
                                seen_at=row.created_at, **links)

    for artifact in Artifact.objects.order_by("created_at", "id").iterator():
        try:
            ref = parse_repo(artifact.repo_info, artifact.repo_url)
        except ServiceError:
            continue
        sight(artifact, ref, artifact_id=artifact.pk)
    for attestation in Attestation.objects.exclude(repo_info={}).order_by("created_at", "id").iterator():
        try:
            ref = parse_repo(attestation.repo_info)
        except ServiceError:
            continue
        sight(attestation, ref, artifact_id=attestation.artifact_id, attestation_id=attestation.pk)


class Migration(migrations.Migration):
    """Repository sightings are append-only (a repository's history of where it was seen); repositories
    themselves change (tags, a rename, a URL that moved), each change audited by the service."""

    dependencies = [("evidence", "0007_repositories")]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
        append_only("evidence_repositorysighting"),
    ]
