"""Every write of the evidence vault. Each function is atomic and records its audit event (and, for
artifacts, attestations and evidence files, a journal leaf) in the same transaction.

Refusals raise ``csm.errors.ServiceError`` (message + field + code) — the API turns them into
4xx JSON — or ``archives.ArchiveError`` (400 / 413) for uploads.
"""

import mimetypes
import re

import yaml
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.lib import jqrules, jsonschemas
from csm.lib.bounded import InputError, load_yaml
from csm.lib.expressions import ExpressionError, compile_expression
from csm.lib.fingerprints import is_fingerprint
from evidence import controls, repos, storage
from evidence.choices import TYPE_ALIASES, AttestationType, Severity, Verification
from evidence.models import (
    Artifact,
    Attestation,
    AttestationEvidence,
    CustomAttestationType,
    CustomAttestationTypeVersion,
    EvidenceFile,
    Flow,
    SbomComponent,
    Trail,
)
from evidence.parsers import ParseError
from evidence.parsers.judge import Judgement, judge
from evidence.selectors import effective_attestation, flow_named, may_supersede
from journal.choices import LeafKind
from journal.personal import People, actor_personal, committed, record_refs, scrub
from journal.services import append_leaf

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~@:+-]{0,119}$")
MAX_TEMPLATE_ENTRIES = 200


def _name(value, field: str, max_length: int = 120) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(f"{field} is required", field)
    value = value.strip()
    if len(value) > max_length or not NAME.match(value[:120]) or "/" in value:
        raise ServiceError(f"{field} {value[:60]!r} may contain letters, digits and . _ ~ @ : + - only "
                           f"(1-{max_length} characters, no slash)", field)
    return value


def _dict(value, field: str) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ServiceError(f"{field} must be an object", field)
    return value


def _text(value, field: str, max_length: int = 10_000) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ServiceError(f"{field} must be a string", field)
    if len(value) > max_length:
        raise ServiceError(f"{field} is longer than {max_length} characters", field)
    return value


def _url(value, field: str) -> str:
    """An http(s) URL or "": reported URLs end up as links on pages, so no ``javascript:`` and friends."""
    text = _text(value, field, 1000).strip()
    if text and not re.match(r"^https?://[^\s]+$", text, re.IGNORECASE):
        raise ServiceError(f"{field} must be an http(s) URL", field)
    return text


def validate_fingerprint(value, field: str = "fingerprint") -> str:
    if not is_fingerprint(value):
        raise ServiceError(f"{field} must be a lowercase 64-hex SHA-256 digest", field)
    return value


def _commit(info: dict, field: str) -> str:
    sha = info.get("sha1", "")
    if sha in ("", None):
        return ""
    if not isinstance(sha, str) or not re.match(r"^[0-9a-fA-F]{7,64}$", sha):
        raise ServiceError(f"{field}.sha1 must be a hex git commit", f"{field}.sha1")
    return sha.lower()


# --- templates ---------------------------------------------------------------------------------------


def _template_items(items, field: str) -> list[dict]:
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_TEMPLATE_ENTRIES:
        raise ServiceError(f"{field} must be a list (at most {MAX_TEMPLATE_ENTRIES} entries)", field)
    out = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise ServiceError(f"{field}[{index}] must be a name or {{name, type}}", f"{field}[{index}]")
        control = item.get("control", item.get("for_control"))
        if control is None:
            out.append({"name": _name(item.get("name"), f"{field}[{index}].name", 200),
                        "type": str(item.get("type") or "")})
            continue
        # a required decision on a control: {type: decision, control: RCTL-043, name?} (name defaults to it)
        where = f"{field}[{index}].control"
        if not isinstance(control, str) or not controls.IDENTIFIER.match(control):
            raise ServiceError(f"{where} must be a control identifier", where)
        if (item.get("type") or AttestationType.DECISION) != AttestationType.DECISION:
            raise ServiceError(f"{field}[{index}] names a control, so its type must be decision", f"{field}[{index}]")
        out.append({"name": _name(item.get("name") or control, f"{field}[{index}].name", 200),
                    "type": AttestationType.DECISION, "control": control})
    return out


def parse_template(value) -> dict:
    """A flow/trail template in any of the accepted shapes → ``{"trail": [...], "artifacts": [...]}``.

    Accepted: the kosli YAML (``version: 1`` / ``trail: {attestations, artifacts}``) as text or parsed, our
    own ``{"trail": [...], "artifacts": [...]}``, or the legacy kosli list of names (required of every
    artifact; its ``artifact`` entry names the artifact itself and is dropped)."""
    if value in (None, "", []):
        return {"trail": [], "artifacts": []}
    if isinstance(value, str):
        try:  # bounded: size (413), depth, node and alias counts (400) before anything recursive runs
            value = load_yaml(value, "template", max_bytes=settings.CSM_TEMPLATE_MAX_BYTES,
                              max_depth=settings.CSM_YAML_MAX_DEPTH, max_nodes=settings.CSM_YAML_MAX_NODES,
                              max_aliases=settings.CSM_YAML_MAX_ALIASES)
        except InputError as exc:
            raise ServiceError(exc.message, exc.field, exc.status, exc.code) from None
        except yaml.YAMLError as exc:
            raise ServiceError(f"template is not valid YAML: {exc}", "template") from None
        except RecursionError:  # PyYAML composes nested collections recursively
            raise ServiceError("template is nested too deeply", "template") from None
        if value is None:
            return {"trail": [], "artifacts": []}
    if isinstance(value, list):
        names = [name for name in value if not (isinstance(name, str) and name.strip() == "artifact")]
        return {"trail": [], "artifacts": [{"name": "*", "attestations": _template_items(names, "template")}]}
    if not isinstance(value, dict):
        raise ServiceError("template must be a YAML document, an object or a list of names", "template")
    trail = value.get("trail")
    if isinstance(trail, dict):  # kosli YAML
        attestations, artifacts = trail.get("attestations"), trail.get("artifacts")
        prefix = "template.trail"
    else:
        attestations, artifacts = trail, value.get("artifacts")
        prefix = "template"
    if artifacts is not None and not isinstance(artifacts, list):
        raise ServiceError(f"{prefix}.artifacts must be a list", f"{prefix}.artifacts")
    normalized = {"trail": _template_items(attestations, f"{prefix}.attestations" if prefix != "template"
                                           else "template.trail"), "artifacts": []}
    for index, artifact in enumerate(artifacts or []):
        if not isinstance(artifact, dict):
            raise ServiceError(f"{prefix}.artifacts[{index}] must be an object", f"{prefix}.artifacts[{index}]")
        normalized["artifacts"].append({
            "name": _name(artifact.get("name"), f"{prefix}.artifacts[{index}].name", 200) if artifact.get("name")
            != "*" else "*",
            "attestations": _template_items(artifact.get("attestations"), f"{prefix}.artifacts[{index}].attestations"),
        })
    return normalized


# --- flows and trails --------------------------------------------------------------------------------


def archived_flow_error(flow: Flow) -> ServiceError:
    # 400, not 409: the kosli CLI retries a 409 as a lock conflict (internal/requests customCheckRetry).
    return ServiceError(f"Flow '{flow.name}' is archived: it takes no new trails, artifacts or attestations. "
                        "Its history stays readable; an org admin can unarchive it on its page.", "flow",
                        code="flow_archived")


def lock_flow(flow: Flow) -> Flow:
    """Hold ``flow`` (FOR SHARE, so reports into one flow do not wait for each other) for the rest of the
    transaction and refuse an archived one. Archive and rename lock the row FOR UPDATE, so a record is
    either wholly before or wholly after them: it never lands in a flow archived meanwhile, and its journal
    leaf commits to the name it has (``Flow.name_at``). The name is re-read under the lock."""
    table = Flow._meta.db_table
    with connection.cursor() as cursor:
        lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
        cursor.execute(f'SELECT name, archived FROM "{table}" WHERE id = %s{lock}', [flow.pk])  # noqa: S608 - own table name, id bound  # nosec B608
        flow.name, flow.archived = cursor.fetchone()
    if flow.archived:
        raise archived_flow_error(flow)
    return flow


@transaction.atomic(durable=True)
def upsert_flow(ctx: AuditContext, org, data: dict, template_yaml: str | None = None) -> tuple[Flow, bool]:
    """Create or update a flow (kosli ``PUT /api/v2/flows/{org}``). Returns (flow, created)."""
    name = _name(data.get("name"), "name")
    template_source = template_yaml if template_yaml is not None else data.get("template")
    threshold = data.get("sarif_threshold", Severity.HIGH) or Severity.HIGH
    if threshold not in Severity.values:
        raise ServiceError(f"sarif_threshold must be one of {', '.join(Severity.values)}", "sarif_threshold")
    fields = {
        "description": _text(data.get("description"), "description"),
        "visibility": _text(data.get("visibility"), "visibility", 20) or "private",
        "tags": _dict(data.get("tags"), "tags"),
        "sarif_threshold": threshold,
    }
    template = parse_template(template_source)
    flow = Flow.objects.select_for_update().filter(org=org, name=name).first()
    if flow is None:  # a name the flow had before a rename still names it (evidence.selectors.flow_named)
        renamed = flow_named(org, name)
        flow = Flow.objects.select_for_update().get(pk=renamed.pk) if renamed is not None else None
    if flow is not None and flow.archived:
        raise archived_flow_error(flow)
    if flow is None:
        flow = Flow.objects.create(org=org, name=name, template=template, template_yaml=template_yaml or "",
                                   **fields)
        record_event(ctx, org, AuditAction.FLOW_CREATED, flow, after=flow.snapshot())
        return flow, True
    before = flow.snapshot()
    for key, value in fields.items():
        if key in data:
            setattr(flow, key, value)
    if template_source is not None:
        flow.template = template
        flow.template_yaml = template_yaml or ""
    flow.updated_at = timezone.now()
    flow.save()
    if flow.snapshot() != before:
        record_event(ctx, org, AuditAction.FLOW_UPDATED, flow, before=before, after=flow.snapshot())
    return flow, False


@transaction.atomic
def begin_trail(ctx: AuditContext, org, flow: Flow, data: dict, template_yaml: str | None = None
                ) -> tuple[Trail, bool]:
    """Begin (or update) a trail of ``flow`` (kosli ``PUT /api/v2/trails/{org}/{flow}``)."""
    lock_flow(flow)
    name = _name(data.get("name"), "name", 200)
    commit_info = _dict(data.get("git_commit_info"), "git_commit_info")
    fields = {
        "description": _text(data.get("description"), "description"),
        "git_commit_info": commit_info,
        "git_commit": _commit(commit_info, "git_commit_info"),
        "origin_url": _url(data.get("origin_url"), "origin_url"),
        "user_data": _dict(data.get("user_data"), "user_data"),
        "external_urls": _dict(data.get("external_urls"), "external_urls"),
    }
    template = parse_template(template_yaml) if template_yaml is not None else None
    repo = repos.parse_repo(data.get("repo_info"))
    trail = Trail.objects.select_for_update().filter(org=org, flow=flow, name=name).first()
    if trail is None:
        trail = Trail.objects.create(org=org, flow=flow, name=name, template=template, **fields)
        record_event(ctx, org, AuditAction.TRAIL_CREATED, trail, after=trail.snapshot())
        repos.record_sighting(ctx, org, repo, flow=flow, trail=trail, git_commit=trail.git_commit,
                              commit_url=str(commit_info.get("url") or ""))
        return trail, True
    before = trail.snapshot()
    for key, value in fields.items():
        if value not in ("", {}, None):
            setattr(trail, key, value)
    if template is not None:
        trail.template = template
    trail.updated_at = timezone.now()
    trail.save()
    if trail.snapshot() != before:
        record_event(ctx, org, AuditAction.TRAIL_UPDATED, trail, before=before, after=trail.snapshot())
    repos.record_sighting(ctx, org, repo, flow=flow, trail=trail, git_commit=trail.git_commit,
                          commit_url=str(trail.git_commit_info.get("url") or ""))
    return trail, False


def _trail_for(ctx, org, flow, name) -> Trail:
    trail = Trail.objects.filter(org=org, flow=flow, name=name).first()
    if trail is None:
        trail, _ = begin_trail(ctx, org, flow, {"name": name})
    return trail


# --- artifacts ---------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def report_artifact(ctx: AuditContext, org, flow: Flow, data: dict) -> tuple[Artifact, bool]:
    """Report an artifact of ``flow`` (kosli ``POST /api/v2/artifacts/{org}/{flow}``), binding every
    attestation its trail already holds for it (by fingerprint, or by template name + git commit)."""
    lock_flow(flow)
    fingerprint = validate_fingerprint(data.get("fingerprint"))
    trail_name = data.get("trail_name") or data.get("trail") or ""
    trail = _trail_for(ctx, org, flow, _name(trail_name, "trail_name", 200)) if trail_name else None
    existing = Artifact.objects.filter(org=org, flow=flow, trail=trail, fingerprint=fingerprint).first()
    if existing is not None:
        return existing, False
    commit_info = _dict(data.get("git_commit_info"), "git_commit_info")
    git_commit = data.get("git_commit") or commit_info.get("sha1") or ""
    if git_commit and (not isinstance(git_commit, str) or not re.match(r"^[0-9a-fA-F]{7,64}$", git_commit)):
        raise ServiceError("git_commit must be a hex git commit", "git_commit")
    template_name = data.get("template_reference_name") or data.get("template_name") or ""
    repo = repos.parse_repo(data.get("repo_info"), data.get("repo_url"))
    artifact = Artifact.objects.create(
        org=org, flow=flow, trail=trail, fingerprint=fingerprint,
        filename=_text(data.get("filename"), "filename", 500),
        template_name=_name(template_name, "template_reference_name", 200) if template_name else "",
        git_commit=git_commit.lower(), git_commit_info=commit_info,
        commit_url=_url(data.get("commit_url"), "commit_url"),
        build_url=_url(data.get("build_url"), "build_url"),
        repo_url=_text(data.get("repo_url"), "repo_url", 1000),
        repo_info=_dict(data.get("repo_info"), "repo_info"),
        external_urls=_dict(data.get("external_urls"), "external_urls"),
        annotations=_dict(data.get("annotations"), "annotations"),
        **_reporter(org, ctx, "reported_by"),
    )
    leaf = append_leaf(org, LeafKind.ARTIFACT, committed(artifact.journal_data(), artifact.personal),
                       object_id=artifact.pk)
    record_refs(org, leaf, artifact.personal)
    Artifact.objects.filter(pk=artifact.pk).update(leaf=leaf)
    artifact.leaf = leaf
    bound = _bind_pending(artifact)
    record_event(ctx, org, AuditAction.ARTIFACT_REPORTED, artifact,
                 after={"flow": flow.name, "trail": trail.name if trail else "", "fingerprint": fingerprint,
                        "filename": artifact.filename, "bound_attestations": bound})
    repos.record_sighting(ctx, org, repo, flow=flow, trail=trail, artifact=artifact, git_commit=artifact.git_commit,
                          commit_url=artifact.commit_url or str(commit_info.get("url") or ""))
    return artifact, True


def _bind_pending(artifact: Artifact) -> list[int]:
    if artifact.trail_id is None:
        return []
    match = Q(artifact_fingerprint=artifact.fingerprint)
    if artifact.template_name and artifact.git_commit:
        match |= Q(artifact_fingerprint="", target_artifact=artifact.template_name, git_commit=artifact.git_commit)
    pending = Attestation.objects.filter(org=artifact.org, trail=artifact.trail, artifact__isnull=True).filter(match)
    ids = list(pending.values_list("pk", flat=True))
    if ids:
        Attestation.objects.filter(pk__in=ids).update(artifact=artifact)
    return ids


def _artifact_for(org, flow, trail, fingerprint: str, target: str, git_commit: str) -> Artifact | None:
    if fingerprint:
        found = Artifact.objects.filter(org=org, flow=flow, trail=trail, fingerprint=fingerprint).first()
        return found or Artifact.objects.filter(org=org, flow=flow, fingerprint=fingerprint).first()
    if target and git_commit:
        return Artifact.objects.filter(org=org, trail=trail, template_name=target, git_commit=git_commit).first()
    return None


def _reporter(org, ctx: AuditContext, column: str) -> dict:
    """Who reported (uploaded) a row — ``column`` — and its ``personal`` map: the label is a person's when a
    person acted (committed as a keyed hash; ``ERASED`` if they were erased meanwhile)."""
    people = People(org)
    personal = actor_personal(people, ctx.user_id, f"/{column}")
    data, personal = scrub({column: ctx.actor_label[:255]}, personal, people.keys())
    return {**data, "personal": personal}


# --- evidence files ----------------------------------------------------------------------------------


def store_evidence_file(ctx: AuditContext, org, member) -> EvidenceFile:
    """Store one file for ``org`` (content-addressed; bytes this org already holds are reused)."""
    existing = EvidenceFile.objects.filter(org=org, sha256=member.sha256).first()
    if existing is not None:
        return existing
    name = storage.put(org, member.sha256, member.file)
    content_type = mimetypes.guess_type(member.name)[0] or "application/octet-stream"
    try:
        with transaction.atomic():
            evidence = EvidenceFile.objects.create(
                org=org, sha256=member.sha256, size=member.size, content_type=content_type[:100],
                original_name=member.name[:1000], storage_name=name, **_reporter(org, ctx, "uploaded_by"))
    except IntegrityError:  # the same bytes arrived concurrently in another request
        return EvidenceFile.objects.get(org=org, sha256=member.sha256)
    leaf = append_leaf(org, LeafKind.EVIDENCE_FILE, committed(evidence.journal_data(), evidence.personal),
                       object_id=evidence.pk)
    record_refs(org, leaf, evidence.personal)
    EvidenceFile.objects.filter(pk=evidence.pk).update(leaf=leaf)
    evidence.leaf = leaf
    record_event(ctx, org, AuditAction.EVIDENCE_UPLOADED, evidence,
                 after={"sha256": evidence.sha256, "size": evidence.size, "name": evidence.original_name})
    return evidence


# --- custom types ------------------------------------------------------------------------------------


TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$")
MAX_SUMMARY_NAME = 200


def _type_name(value) -> str:
    """kosli's rule for a type name: starts with a letter or digit; letters, digits, ``. - _ ~`` only."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("name is required", "name")
    name = value.strip()
    if not TYPE_NAME.match(name):
        raise ServiceError(f"attestation type name {name[:60]!r} must start with a letter or a digit and contain "
                           "only letters, digits, '.', '-', '_' and '~' (at most 100 characters)", "name")
    return name


def _jq_programs(programs, field: str, what: str) -> list[str]:
    try:
        return jqrules.check_programs(programs, what)
    except jqrules.JqError as exc:
        raise ServiceError(exc.message, field if exc.index is None else f"{field}[{exc.index}]") from None


def _summary(value) -> list[dict]:
    """kosli's ``summary``: ``[{"name", "expression"}]``, each expression a jq program."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ServiceError("summary must be a list of {name, expression} entries", "summary")
    entries = []
    for index, item in enumerate(value):
        name, expression = item.get("name"), item.get("expression")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_SUMMARY_NAME:
            raise ServiceError(f"summary entry {index + 1} needs a name (1-{MAX_SUMMARY_NAME} characters)",
                               f"summary[{index}].name")
        if not isinstance(expression, str) or not expression.strip():
            raise ServiceError(f"summary entry {index + 1} needs an expression", f"summary[{index}].expression")
        entries.append({"name": name.strip(), "expression": expression.strip()})
    _jq_programs([e["expression"] for e in entries], "summary", "summary expression")
    return entries


@transaction.atomic(durable=True)
def create_custom_type(ctx: AuditContext, org, data: dict) -> tuple[CustomAttestationType, bool]:
    """Define an org's own attestation type, or a new version of it (kosli's ``create attestation-type``
    is "create or update"): a JSON Schema, a compliance rule in csm's expression language and/or kosli's
    jq rules, and kosli's summary entries. Every jq program is compiled (bounded, in the jq worker) before
    anything is stored. A definition equal to the latest version adds no version. An archived type takes
    no new version. Returns the type and whether a version was added."""
    name = _type_name(data.get("name"))
    if name in AttestationType.values:
        raise ServiceError(f"{name!r} is a built-in attestation type", "name")
    schema = _dict(data.get("schema"), "schema")
    try:
        jsonschemas.check_schema(schema)  # limits first; never fetches a $ref, rejects one it cannot resolve
    except jsonschemas.SchemaRejected as exc:
        raise ServiceError(exc.message, "schema", code=exc.code) from None
    rule = _text(data.get("rule"), "rule", 4096).strip()
    if rule:
        try:
            compile_expression(rule)
        except ExpressionError as exc:
            raise ServiceError(f"rule: {exc}", "rule") from None
    jq_rules = _jq_programs(data.get("jq_rules"), "jq_rules", "jq rule")
    summary = _summary(data.get("summary"))
    custom = CustomAttestationType.objects.select_for_update().filter(org=org, name=name).first()
    description = _text(data.get("description"), "description")
    if custom is not None and "description" not in data:
        description = custom.description
    definition = {"description": description, "schema": schema, "rule": rule, "jq_rules": jq_rules,
                  "summary": summary}
    now = timezone.now()
    if custom is None:
        try:
            with transaction.atomic():
                custom = CustomAttestationType.objects.create(org=org, name=name, created_by=ctx.actor_label[:255],
                                                              created_at=now, updated_at=now, **definition)
        except IntegrityError:  # defined at the same moment by another request
            raise ServiceError(f"attestation type {name!r} was being defined at the same time; send it again",
                               "name", code="conflict") from None
        action, version_number = AuditAction.CUSTOM_TYPE_CREATED, 1
    else:
        if custom.archived:
            raise ServiceError(f"attestation type {name!r} is archived; an archived type takes no new version",
                               "name", code="conflict")
        latest = custom.latest_version()
        if latest is not None and all(getattr(latest, key) == value for key, value in definition.items()):
            return custom, False
        version_number = (latest.version if latest is not None else 0) + 1
        for key, value in definition.items():
            setattr(custom, key, value)
        custom.updated_at = now
        custom.save(update_fields=[*definition, "updated_at"])
        action = AuditAction.CUSTOM_TYPE_VERSIONED
    CustomAttestationTypeVersion.objects.create(org=org, custom_type=custom, version=version_number,
                                                created_by=ctx.actor_label[:255], created_at=now, **definition)
    record_event(ctx, org, action, custom, after={"name": name, "version": version_number, **definition})
    return custom, True


@transaction.atomic(durable=True)
def archive_custom_type(ctx: AuditContext, org, custom: CustomAttestationType) -> CustomAttestationType:
    """Archive a type (kosli ``archive attestation-type``): new attestations cannot use it; the attestations
    it judged keep their judgement. Archiving an archived type changes nothing."""
    custom = CustomAttestationType.objects.select_for_update().get(pk=custom.pk)
    if custom.archived:
        return custom
    custom.archived, custom.archived_at = True, timezone.now()
    custom.updated_at = custom.archived_at
    custom.save(update_fields=["archived", "archived_at", "updated_at"])
    record_event(ctx, org, AuditAction.CUSTOM_TYPE_ARCHIVED, custom, before={"archived": False},
                 after={"name": custom.name, "archived": True})
    return custom


def _custom_version(org, type_name):
    """``name`` or ``name@vN`` (kosli's way of naming a version) → the type and the version that judges."""
    if not isinstance(type_name, str) or not type_name:
        raise ServiceError("type_name is required for a custom attestation", "type_name")
    name, _, wanted = type_name.partition("@v")
    custom = CustomAttestationType.objects.filter(org=org, name=type_name).first()
    if custom is not None:  # a type named before names were restricted to kosli's characters
        name, wanted = type_name, ""
    else:
        custom = CustomAttestationType.objects.filter(org=org, name=name).first()
    if custom is None:
        raise ServiceError(f"Custom attestation type '{name}' does not exist for org '{org.slug}'", "type_name")
    if custom.archived:
        raise ServiceError(f"Custom attestation type '{name}' is archived: new attestations cannot use it",
                           "type_name")
    versions = custom.versions.all()
    if wanted:
        if not wanted.isascii() or not wanted.isdigit():
            raise ServiceError(f"version {wanted[:20]!r} of custom attestation type '{name}' is not a number",
                               "type_name")
        version = versions.filter(version=int(wanted[:9])).first()
        if version is None:
            raise ServiceError(f"version {wanted[:9]} does not exist for custom attestation type '{name}'",
                               "type_name")
        return custom, version
    return custom, versions.order_by("-version").first()


def _judge_custom(org, data: dict) -> tuple[CustomAttestationType, CustomAttestationTypeVersion | None, Judgement,
                                             dict]:
    custom, version = _custom_version(org, data.get("type_name"))
    definition = version or custom  # a type always has a version after migration 0005; the type mirrors the latest
    attestation_data = data.get("attestation_data", {})
    try:
        # Rows stored before check_schema existed may hold remote refs or huge schemas: re-checked, and
        # validated with a registry that cannot fetch, within step and time limits.
        error = jsonschemas.first_error(definition.schema, attestation_data, "attestation_data")
    except jsonschemas.SchemaRejected as exc:
        if exc.subject == "document":
            raise ServiceError(exc.message, "attestation_data", code=exc.code) from None
        raise ServiceError(f"attestation type {custom.name!r}: {exc.message}", "type_name", code=exc.code) from None
    if error is not None:
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
        raise ServiceError(f"attestation_data{path}: {error.message}", f"attestation_data{path}")
    problems = []
    rule_ok = True
    if definition.rule:
        context = attestation_data if isinstance(attestation_data, dict) else {"data": attestation_data}
        try:
            rule_ok = bool(compile_expression(definition.rule).evaluate(context))
        except ExpressionError as exc:
            rule_ok = False
            problems.append(f"rule could not be evaluated: {exc}")
        if not rule_ok and not problems:
            problems.append(f"rule not satisfied: {definition.rule}")
    summary_entries = list(definition.summary or [])
    jq_results, values = jqrules.evaluate(list(definition.jq_rules or []),
                                          [entry["expression"] for entry in summary_entries], attestation_data)
    for index, result in enumerate(jq_results):
        if not result.passed:
            problems.append(f"jq rule {index + 1} ({result.rule}) {result.reason}")
    jq_ok = all(result.passed for result in jq_results)
    results = {"type_name": custom.name, "type_version": version.version if version else None,
               "rule": definition.rule, "rule_satisfied": rule_ok,
               "jq_rules": [result.as_dict() for result in jq_results], "jq_rules_satisfied": jq_ok,
               "summary": [{**entry, **value} for entry, value in zip(summary_entries, values, strict=True)]}
    judgement = Judgement(rule_ok and jq_ok, Verification.VERIFIED, problems, results)
    return custom, version, judgement, {"attestation_data": attestation_data}


# --- attestations ------------------------------------------------------------------------------------


def _same_name_and_scope(org, trail, name, fingerprint, artifact):
    """The non-override attestations an attestation named ``name`` competes with for compliance."""
    candidates = Attestation.objects.filter(org=org, trail=trail, name=name).exclude(type=AttestationType.OVERRIDE)
    if artifact is not None:
        return candidates.filter(artifact=artifact)
    if fingerprint:
        return candidates.filter(artifact_fingerprint=fingerprint)
    return candidates.filter(artifact__isnull=True, target_artifact="")


def _override_target(org, trail, name, fingerprint, artifact) -> Attestation:
    # the attestation that counts now, which is not always the newest (see selectors.may_supersede)
    target = effective_attestation(_same_name_and_scope(org, trail, name, fingerprint, artifact))
    if target is None:
        raise ServiceError(f"there is no attestation named {name!r} to override", "attestation_name")
    return target


def _refuse_unsuperseding(org, trail, name, fingerprint, artifact, candidate: Attestation) -> None:
    """409 when ``candidate`` would not count: it cannot supersede a failing attestation csm verified from
    evidence. Refused rather than stored so the pipeline that sent it fails loudly instead of believing
    it turned the name green (evaluate() applies the same rule to anything stored anyway)."""
    current = effective_attestation(_same_name_and_scope(org, trail, name, fingerprint, artifact))
    if current is None or may_supersede(current, candidate):
        return
    kind = current.type_label
    raise ServiceError(
        f"attestation {name!r} is a failing {kind} attestation verified from its evidence (id {current.pk}); "
        f"only a newer {kind} attestation with evidence csm can verify, or an override (permission "
        "'evidence.override', with a reason), can supersede it", "attestation_name", code="conflict")


SYSTEM_KIND = "system"  # POST .../trail/{trail}/system with type_name (kosli attest decision)
SYSTEM_TYPES = (AttestationType.DECISION,)

SUMMARY_KEYS = ("junit_results", "snyk_results", "sarif_results", "pull_requests", "git_provider", "jira_results",
                "sonar_results", "is_compliant",
                "new_compliance_status", "original_attestation_type", "type_name")


@transaction.atomic(durable=True)
def create_attestation(ctx: AuditContext, org, flow: Flow, trail_name: str, kind: str, data: dict,
                       members=(), can_override: bool = False) -> Attestation:
    """Record an attestation (kosli ``POST /api/v2/attestations/{org}/{flow}/trail/{trail}/{type}``).

    ``data`` is the kosli ``data_json``; ``members`` the files of ``attachment_file`` (``archives.Member``).
    The type's files are parsed and judged here; every file is stored as evidence (deduplicated per org).
    ``override`` needs ``can_override`` (the caller checked ``evidence.override``) and a reason."""
    kind = TYPE_ALIASES.get(kind, kind)
    if kind == SYSTEM_KIND:  # kosli's path for its system types, the one named in type_name
        system_type = data.get("type_name") if isinstance(data, dict) else None
        if system_type not in SYSTEM_TYPES:
            raise ServiceError(f"unknown system attestation type {str(system_type)[:60]!r}; use one of "
                               f"{', '.join(SYSTEM_TYPES)}", "type_name")
        kind = system_type
    if kind == AttestationType.CUSTOM and isinstance(data, dict) and data.get("type_name") == AttestationType.VEX:
        # kosli has no "attest vex": "kosli attest custom --type vex --attestation-data doc.json" carries the
        # document in attestation_data (no custom type can be named vex: built-in names are refused)
        kind = AttestationType.VEX
    if kind not in AttestationType.values:
        raise ServiceError(f"unknown attestation type {kind!r}; use one of {', '.join(AttestationType.values)}",
                           "type", code="not_found")
    if not isinstance(data, dict):
        raise ServiceError("data_json must be a JSON object", "data_json")
    lock_flow(flow)
    trail = _trail_for(ctx, org, flow, _name(trail_name, "trail", 200))
    name = _name(data.get("attestation_name"), "attestation_name", 200)
    fingerprint = data.get("artifact_fingerprint") or ""
    if fingerprint:
        validate_fingerprint(fingerprint, "artifact_fingerprint")
    targets = data.get("target_artifacts") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ServiceError("target_artifacts must be a list of names", "target_artifacts")
    target = targets[0] if targets else ""
    commit_info = _dict(data.get("git_commit_info"), "git_commit_info")
    git_commit = _commit(commit_info, "git_commit_info")
    if target and not fingerprint and not git_commit:
        raise ServiceError("requires at least one of: artifact_fingerprint or git_commit_info.", "target_artifacts")
    artifact = _artifact_for(org, flow, trail, fingerprint, target, git_commit)
    repo = repos.parse_repo(data.get("repo_info"))
    custom = custom_version = None
    control = None
    reason = ""
    summary = {key: data[key] for key in SUMMARY_KEYS if key in data}
    try:
        if kind == AttestationType.OVERRIDE:
            if not can_override:
                raise ServiceError("overriding an attestation needs the permission 'evidence.override'", None,
                                   code="forbidden")
            reason = _text(data.get("reason"), "reason", 10_000).strip()
            if not reason:
                raise ServiceError("an override needs a reason", "reason")
            status = data.get("new_compliance_status")
            if not isinstance(status, bool):
                raise ServiceError("new_compliance_status must be true or false", "new_compliance_status")
            overridden = _override_target(org, trail, name, fingerprint, artifact)
            judgement = Judgement(status, Verification.NOT_APPLICABLE, [f"overridden: {reason}"],
                                  {"overrides": overridden.pk, "original_type": overridden.type_label,
                                   "original_compliance": overridden.is_compliant})
        elif kind == AttestationType.CUSTOM:
            custom, custom_version, judgement, extra = _judge_custom(org, data)
            summary.update(extra)
        elif kind == AttestationType.DECISION:
            control, judgement, extra = controls.judge_decision(org, data)
            summary.update(extra)
        else:
            judgement = judge(kind, list(members), data, flow)
            if kind == AttestationType.VEX and judgement.results["documents"][0]["file"] == "attestation_data":
                summary["attestation_data"] = data["attestation_data"]  # the document as sent, beside its statements
    except ParseError as exc:
        # types judged from data_json (jira, sonar, pull requests) name it even when files came along
        from_files = members and kind not in (AttestationType.JIRA, AttestationType.SONAR, AttestationType.PULL_REQUEST)
        raise ServiceError(exc.message, "attachment_file" if from_files else "data_json") from None
    if kind != AttestationType.OVERRIDE:
        _refuse_unsuperseding(org, trail, name, fingerprint, artifact, Attestation(
            type=kind, custom_type=custom, is_compliant=judgement.is_compliant, verification=judgement.verification))
    attestation = Attestation.objects.create(
        org=org, flow=flow, trail=trail, artifact=artifact, artifact_fingerprint=fingerprint,
        target_artifact=_text(target, "target_artifacts", 200), git_commit=git_commit, name=name, type=kind,
        custom_type=custom, custom_type_version=custom_version, control=control,
        is_compliant=judgement.is_compliant, verification=judgement.verification, problems=judgement.problems,
        results=judgement.results, summary=summary,
        user_data=data.get("user_data") if isinstance(data.get("user_data"), (dict, list)) else {},
        external_urls=_dict(data.get("external_urls"), "external_urls"),
        annotations=_dict(data.get("annotations"), "annotations"),
        description=_text(data.get("description"), "description"),
        origin_url=_url(data.get("origin_url"), "origin_url"),
        git_commit_info=commit_info, repo_info=_dict(data.get("repo_info"), "repo_info"),
        reason=reason, **_reporter(org, ctx, "reported_by"),
    )
    for member in members:
        evidence = store_evidence_file(ctx, org, member)
        AttestationEvidence.objects.create(org=org, attestation=attestation, evidence_file=evidence,
                                           name=member.name)
    SbomComponent.objects.bulk_create(
        [SbomComponent(org=org, attestation=attestation, **component) for component in judgement.components],
        batch_size=1000)
    leaf = append_leaf(org, LeafKind.ATTESTATION, committed(attestation.journal_data(), attestation.personal),
                       object_id=attestation.pk)
    record_refs(org, leaf, attestation.personal)
    Attestation.objects.filter(pk=attestation.pk).update(leaf=leaf)
    attestation.leaf = leaf
    action = AuditAction.ATTESTATION_OVERRIDDEN if kind == AttestationType.OVERRIDE else AuditAction.ATTESTATION_CREATED
    record_event(ctx, org, action, attestation,
                 after={"flow": flow.name, "trail": trail.name, "name": name, "type": attestation.type_label,
                        "is_compliant": attestation.is_compliant, "verification": attestation.verification,
                        "reason": reason, "evidence": [m.sha256 for m in members],
                        **({"control": control.identifier} if control is not None else {})})
    repos.record_sighting(ctx, org, repo, flow=flow, trail=trail, artifact=artifact, attestation=attestation,
                          git_commit=git_commit or trail.git_commit, commit_url=str(commit_info.get("url") or ""))
    return attestation
