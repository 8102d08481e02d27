"""Artifact report: one fingerprint — its provenance (which flows built it, from which commit), the
evidence attested about it, and everywhere it ran and when."""

from django.db.models import Q

from evidence import selectors as evidence_selectors
from evidence.models import Artifact, Attestation
from reports.builders.common import PALETTE_BRAND, ProgressFn, ReportDoc, duration_text, short_time
from snapshots import selectors as snapshot_selectors
from snapshots.models import Snapshot

CONTROLS = ("CC8.1", "A.8.32", "6.5.1", "9(4)(e)")


def build(doc: ReportDoc, progress: ProgressFn) -> None:
    org, fingerprint = doc.report.org, doc.report.params["fingerprint"]
    names: list[str] = []
    compliant, flow_count = ..., 0
    if doc.includes("evidence"):
        compliant, flow_count = _evidence_sections(doc, org, fingerprint, names)
    progress(40, "evidence")
    show_runs = doc.includes("runs")
    runs = _runs_section(doc, org, fingerprint, names) if show_runs else []
    progress(70, "where it ran")
    label = names[0] if names else "this artifact"
    running = [run for run in runs if run["running"]]
    if not show_runs:
        doc.summary_text = f"{label} ({fingerprint[:12]}…): provenance and attestations."
    elif compliant is None and not runs:
        doc.summary_text = (f"No record: fingerprint {fingerprint} was never reported by a flow nor seen running "
                            "in any environment of this org.")
    else:
        where = ", ".join(sorted({run["environment"] for run in running})) or "no environment"
        doc.summary_text = (f"{label} ({fingerprint[:12]}…) ran in {len({r['environment'] for r in runs})} "
                            f"environment(s); it runs now in {where}.")
    doc.figure("Flows that reported it", flow_count, part="evidence")
    doc.figure("Evidence", {True: "compliant", False: "NOT compliant", None: "no provenance"}[compliant]
               if compliant is not ... else "n/a", part="evidence")
    doc.figure("Environments it ran in", len({run["environment"] for run in runs}), part="runs")
    doc.figure("Running now in", len({run["environment"] for run in running}), part="runs")
    seconds: dict[str, int] = {}
    for run in runs:
        end = run["to_time"] or doc.generated_at
        if run["from_time"]:
            seconds[run["environment"]] = seconds.get(run["environment"], 0) + int(
                (end - run["from_time"]).total_seconds())
    if seconds:
        envs = sorted(seconds)
        unit, divisor = ("hours", 3600) if max(seconds.values()) >= 7200 else ("minutes", 60)
        doc.chart("time-per-env", "bar", f"Time running per environment ({unit})", envs,
                  [(unit.title(), [seconds[e] // divisor for e in envs], PALETTE_BRAND)], part="runs")


def _evidence_sections(doc: ReportDoc, org, fingerprint: str, names: list[str]):
    """Provenance and attestations; returns (evidence verdict True/False/None, number of flows that
    reported the artifact)."""
    result = evidence_selectors.artifact_compliance(org, fingerprint)
    # records committed after the report's checkpoint are left out: the report covers its position only
    covered = Q(leaf__isnull=True) | Q(leaf__index__lte=doc.journal_index)
    records = list(Artifact.objects.for_org(org).filter(covered, fingerprint=fingerprint)
                   .select_related("flow", "trail", "leaf").order_by("created_at", "id"))
    provenance = doc.section(
        "provenance", "Provenance",
        [("Reported", "nowrap", 14), ("Flow", "", 14), ("Trail", "", 14), ("Name", "", 16), ("Commit", "mono", 14),
         ("Build", "", 16), ("Reported by", "", 12)],
        "No provenance: no flow reported this artifact. It is unauthorised wherever it runs.",
        intro="Every flow report of this fingerprint: what built it and from which commit.", controls=CONTROLS,
        part="evidence",
    )
    for record in records:
        name = record.template_name or record.filename
        if name and name not in names:
            names.append(name)
        provenance.add(short_time(record.created_at), record.flow.name, record.trail.name if record.trail_id else "",
                       name, record.git_commit[:12], record.build_url, record.reported_by)
        if record.leaf_id:
            doc.cite("artifact", record.leaf.index, record.leaf.leaf_hash, f"{record.flow.name} {name}",
                     part="evidence")
    attestations = doc.section(
        "attestations", "Attestations",
        [("Flow / trail", "", 18), ("Name", "", 18), ("Type", "", 14), ("Required", "", 9), ("Compliant", "", 10),
         ("Overridden", "", 13), ("Recorded", "nowrap", 14)],
        "No attestation was recorded about this artifact.",
        intro="The latest attestation per name in each flow, and whether it counts as compliant (an override "
              "changes the verdict and is listed with its reason).", controls=CONTROLS, part="evidence",
    )
    cited = {}
    for record in result["records"]:
        for entry in record["attestations"]:
            verdict = "yes" if entry["effective_compliant"] else "NO"
            override = f"yes: {entry['override_reason']}" if entry["overridden"] else ""
            attestations.add(f"{record['flow']} / {record['trail']}".strip(" /"), entry["name"], entry["type"],
                             "yes" if entry["required"] else "", verdict, override, short_time(entry["created_at"]))
            cited[entry["id"]] = entry["name"]
    for attestation in (Attestation.objects.for_org(org).filter(pk__in=list(cited), leaf__index__lte=doc.journal_index)
                        .select_related("leaf")):
        if attestation.leaf_id:
            doc.cite("attestation", attestation.leaf.index, attestation.leaf.leaf_hash, attestation.name,
                     part="evidence")
    reasons = doc.section("reasons", "Why it is (not) compliant", [("Reason", "", 100)],
                          "Every required attestation is present and compliant.", part="evidence")
    for reason in result["reasons"]:
        reasons.add(reason)
    return result["compliant"], len({record.flow_id for record in records})


def _runs_section(doc: ReportDoc, org, fingerprint: str, names: list[str]) -> list[dict]:
    runs = snapshot_selectors.fingerprint_history(org, fingerprint)
    table = doc.section(
        "runs", "Where it ran and when",
        [("Environment", "", 18), ("As", "", 20), ("From", "nowrap", 14), ("Snapshots", "", 12),
         ("Until", "nowrap", 14), ("For", "", 10), ("Now", "", 10)],
        "This artifact was never seen running in any environment of this org.",
        intro="Each continuous run in an environment, from the snapshot journal.",
        controls=("CC8.1", "A.8.32", "11.5.2", "9(4)(e)"), part="runs",
    )
    for run in runs:
        for name in run["names"]:
            if name not in names:
                names.append(name)
        end = run["to_time"] or doc.generated_at
        length = int((end - run["from_time"]).total_seconds()) if run["from_time"] else None
        span = f"#{run['from_index']} – #{run['last_index']}"
        table.add(run["environment"], ", ".join(run["names"]), short_time(run["from_time"]), span,
                  short_time(run["to_time"]) if run["to_time"] else "", duration_text(length),
                  "running" if run["running"] else "exited")
    _cite_run_snapshots(doc, org, runs)
    return runs


def _cite_run_snapshots(doc: ReportDoc, org, runs: list[dict]) -> None:
    wanted = Q()
    for run in runs:
        wanted |= Q(environment__name=run["environment"], index=run["from_index"])
        if run["to_index"]:
            wanted |= Q(environment__name=run["environment"], index=run["to_index"])
    if not runs:
        return
    rows = (Snapshot.objects.for_org(org).filter(wanted, leaf__index__lte=doc.journal_index)
            .order_by("leaf__index").values_list("environment__name", "index", "leaf__index", "leaf__leaf_hash"))
    for env_name, index, leaf_index, leaf_hash in rows:
        doc.cite("snapshot", leaf_index, leaf_hash, f"{env_name}#{index}", part="runs")
