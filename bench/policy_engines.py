"""The sandboxed rule engines against csm's own: Rego environment policies vs YAML policies, and jq rules
of custom attestation types vs csm's expression rules.

1. Rego vs YAML, per changed snapshot. Two environments of N artifacts (half of them with provenance in
   the evidence vault), one with the YAML policy "provenance required", the other with the equivalent
   Rego policy (allow only an artifact with provenance); then snapshots each replacing k artifacts, the
   two environments interleaved. Per changed snapshot, in-process: ``evaluate_snapshot`` time (what
   the after-snapshot hook runs; only the changed artifacts are decided). Also the first evaluation
   (every artifact decided, once per environment) and a whole evaluation of a changed snapshot
   (``preview_snapshot``). Baseline in the same run: the YAML policy; the ratio is Rego / YAML. Both
   must reach the same counts (printed).
2. jq vs expression rule, per custom attestation: the time of ``create_attestation`` of a ``custom``
   attestation whose type judges ``coverage >= 80`` with csm's expression rule, against a type that
   judges the same with the jq rule ``.coverage >= 80`` (interleaved). Also the bare
   ``jqrules.evaluate_rules`` call. Baseline: the expression rule; the ratio is jq / expression.

What bounds them: each Rego evaluation starts one child process (``policies/rego_child.py``, all inputs
of the evaluation in it) and each jq evaluation one child (``csm/lib/jq_worker.py``, ``python -I``); the
bare start of ``python -I`` and the import of ``regopy`` / ``jq`` in a fresh interpreter are printed as
the floors.

    .venv/bin/python bench/policy_engines.py [--artifacts 1000] [--changed 10] [--snapshots 5] [--attestations 30]

Uses its own database (``csm_bench_policy_engines`` unless CSM_BENCH_DB says otherwise) and redis-server
(see bench/snapshots_common.py); no web server or worker.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_policy_engines")

from policies_decisions import POLICY as YAML_POLICY  # noqa: E402  (the database name is read on import)
from policies_decisions import body, churn, give_provenance  # noqa: E402
from snapshots_common import make_org, ratio, setup  # noqa: E402

REGO_POLICY = """package policy

default allow := false

allow if {
    input.has_provenance
}

violations contains msg if {
    not input.has_provenance
    msg := sprintf("%s has no provenance", [input.artifact.name])
}
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def floor(code: str, repeat: int = 10) -> float:
    """Median wall time of a fresh ``python -I -c code`` (the child processes' floor)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def policies_part(org, artifacts: int, k: int, snapshots: int) -> dict:
    from audit.context import AuditContext
    from policies import services as policies
    from policies.models import SnapshotCompliance
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    ctx = AuditContext.system("bench")
    policies.save_policy(ctx, org, "provenance-yaml", YAML_POLICY)
    policies.save_policy(ctx, org, "provenance-rego", REGO_POLICY, policy_format="rego")
    envs, fingerprints = {}, {}
    for engine in ("yaml", "rego"):  # warm-up (imports, first queries) on a small environment of each
        env, _ = create_or_update_environment(ctx, org, f"warm-up-{engine}", "server")
        policies.attach_policies(ctx, org, env, [f"provenance-{engine}"])
        warm = [f"{'c' if engine == 'yaml' else 'd'}{i:063x}" for i in range(10)]
        give_provenance(org, env.name, warm[::2])
        report, _ = accept_report(ctx, env, "server", body(warm))
        policies.evaluate_snapshot(ingest_report(report.pk).snapshot.pk)
    for engine in ("yaml", "rego"):
        env, _ = create_or_update_environment(ctx, org, f"{engine}-{artifacts}", "server")
        policies.attach_policies(ctx, org, env, [f"provenance-{engine}"])
        envs[engine] = env
        tag = "a" if engine == "yaml" else "b"
        fingerprints[engine] = [f"{tag}{artifacts:07x}{i:056x}" for i in range(artifacts)]
        give_provenance(org, env.name, fingerprints[engine][::2])

    def ingest(engine: str):
        report, _ = accept_report(ctx, envs[engine], "server", body(fingerprints[engine]))
        return ingest_report(report.pk).snapshot

    def timed(call, *args) -> float:
        started = time.perf_counter()
        call(*args)
        return time.perf_counter() - started

    first = {engine: timed(policies.evaluate_snapshot, ingest(engine).pk) for engine in ("rego", "yaml")}
    evaluate: dict[str, list] = {engine: [] for engine in envs}
    whole: dict[str, list] = {engine: [] for engine in envs}
    last = {}
    for step in range(1, snapshots + 1):
        for engine in envs:
            fingerprints[engine] = churn(fingerprints[engine], step, k)
            snapshot = last[engine] = ingest(engine)
            evaluate[engine].append(timed(policies.evaluate_snapshot, snapshot.pk))
            whole[engine].append(timed(policies.preview_snapshot, snapshot))
    counts = {}
    for engine, snapshot in last.items():
        summary = SnapshotCompliance.objects.get(snapshot=snapshot)
        counts[engine] = (summary.compliant_count, summary.non_compliant_count, summary.unknown_count)
    return {"first": first, "evaluate": {e: statistics.median(v) for e, v in evaluate.items()},
            "whole": {e: statistics.median(v) for e, v in whole.items()}, "counts": counts,
            "all_evaluate": evaluate}


def jq_part(org, attestations: int) -> dict:
    from audit.context import AuditContext
    from csm.lib import jqrules
    from evidence.models import Flow
    from evidence.services import create_attestation, create_custom_type

    ctx = AuditContext.system("bench")
    schema = {"type": "object", "properties": {"coverage": {"type": "number"}}, "required": ["coverage"]}
    create_custom_type(ctx, org, {"name": "coverage-expression", "schema": schema, "rule": "coverage >= 80"})
    create_custom_type(ctx, org, {"name": "coverage-jq", "schema": schema, "jq_rules": [".coverage >= 80"]})
    flow = Flow.objects.create(org=org, name="engines")
    times: dict[str, list] = {"expression": [], "jq": []}
    verdicts: dict[str, list] = {"expression": [], "jq": []}
    for i in range(attestations):
        coverage = 70 + (i % 3) * 10  # 70, 80, 90: two of three pass
        for engine in times:
            data = {"attestation_name": f"coverage-{engine}-{i}", "type_name": f"coverage-{engine}",
                    "attestation_data": {"coverage": coverage}}
            started = time.perf_counter()
            attestation = create_attestation(ctx, org, flow, "build-1", "custom", data)  # its own transaction
            times[engine].append(time.perf_counter() - started)
            verdicts[engine].append(attestation.is_compliant)
    bare = []
    for i in range(attestations):
        started = time.perf_counter()
        jqrules.evaluate_rules([".coverage >= 80"], {"coverage": 70 + (i % 3) * 10})
        bare.append(time.perf_counter() - started)
    return {"record": {e: statistics.median(v) for e, v in times.items()}, "bare": statistics.median(bare),
            "same_verdicts": verdicts["expression"] == verdicts["jq"],
            "compliant": sum(bool(v) for v in verdicts["jq"])}


def rego_bare(repeat: int = 10) -> dict:
    from policies import rego

    inputs = [{"has_provenance": i % 2 == 0, "artifact": {"name": f"app-{i}"}} for i in range(1000)]
    out = {}
    for n in (1, 10, 1000):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            rego.evaluate(REGO_POLICY, inputs[:n])
            times.append(time.perf_counter() - started)
        out[n] = statistics.median(times)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--snapshots", type=int, default=5)
    parser.add_argument("--attestations", type=int, default=30)
    args = parser.parse_args()
    setup()
    from snapshots import hooks

    hooks._after_snapshot.clear()  # evaluation is timed on its own, not run again by ingest
    org, _ = make_org()

    p = policies_part(org, args.artifacts, args.changed, args.snapshots)
    print(f"1. environment policy 'provenance required', N = {args.artifacts:,} artifacts (half with provenance), "
          f"k = {args.changed} changed per snapshot, {args.snapshots} snapshots (medians)")
    print(f"{'':<34} {'YAML':>10} {'Rego':>10} {'Rego/YAML':>10}")
    rows = (("first evaluation (all N decided)", p["first"]),
            (f"evaluate_snapshot, k = {args.changed} changed", p["evaluate"]),
            ("whole evaluation (preview_snapshot)", p["whole"]))
    for label, values in rows:
        print(f"{label:<34} {ms(values['yaml']):>10} {ms(values['rego']):>10} "
              f"{ratio(values['rego'], values['yaml']):>10}")
    print(f"per-snapshot evaluate (ms): YAML {[round(t * 1000, 1) for t in p['all_evaluate']['yaml']]}, "
          f"Rego {[round(t * 1000, 1) for t in p['all_evaluate']['rego']]}")
    print(f"last snapshot (compliant, non-compliant, unknown): YAML {p['counts']['yaml']}, "
          f"Rego {p['counts']['rego']}")

    j = jq_part(org, args.attestations)
    print(f"\n2. custom attestation judged 'coverage >= 80', {args.attestations} attestations each (medians)")
    print(f"{'':<34} {'expr':>10} {'jq':>10} {'jq/expr':>10}")
    print(f"{'create_attestation':<34} {ms(j['record']['expression']):>10} {ms(j['record']['jq']):>10} "
          f"{ratio(j['record']['jq'], j['record']['expression']):>10}")
    print(f"{'jqrules.evaluate_rules (bare)':<34} {'':>10} {ms(j['bare']):>10}")
    print(f"same verdicts: {j['same_verdicts']} ({j['compliant']} of {args.attestations} compliant)")

    r = rego_bare()
    print("\nfloors (medians of 10):")
    print(f"  rego.evaluate bare, 1 / 10 / 1,000 inputs: {ms(r[1])} / {ms(r[10])} / {ms(r[1000])}")
    print(f"  python -I -c pass:          {ms(floor('pass'))}")
    print(f"  python -I -c 'import regopy': {ms(floor('import regopy'))}")
    print(f"  python -I -c 'import jq':     {ms(floor('import jq'))}")


if __name__ == "__main__":
    main()
