"""Evidence vault benchmark: attestation upload (stream + SHA-256 while streaming + tar inspection
without extraction + content-addressed store + journal) and verified download, against the naive
baseline of the same work with command-line tools (save the body, ``sha256sum`` it, ``tar -xzf`` it to
disk, ``sha256sum`` every extracted file). Also checks that ``provenance_for`` (the snapshot enricher)
uses a fixed number of queries whatever the number of fingerprints.

    .venv/bin/python bench/evidence_upload.py        # --mib 64 --files 4 --runs 3
"""

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_evidence")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import snapshots_common as common  # noqa: E402


def make_archive(mib: int, files: int) -> bytes:
    """``files`` entries of pseudo-random (incompressible) bytes, ``mib`` MiB in all, as tar.gz."""
    per_file = mib * 1024 * 1024 // files
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for index in range(files):
            data = hashlib.shake_256(f"bench-{index}".encode()).digest(per_file)
            info = tarfile.TarInfo(f"results/part-{index}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def baseline(archive: bytes) -> float:
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        path = Path(work) / "evidence.tgz"
        path.write_bytes(archive)
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
        (Path(work) / "x").mkdir()
        subprocess.run(["tar", "-xzf", str(path), "-C", str(Path(work) / "x")], check=True)
        subprocess.run(f"find {work}/x -type f -print0 | xargs -0 sha256sum", shell=True,  # noqa: S602
                       check=True, capture_output=True)
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="csm-bench-evidence-")
    os.environ["CSM_EVIDENCE_ROOT"] = store
    common.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from evidence import selectors
    from evidence.models import EvidenceFile

    org, token = common.make_org()
    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    client.put("/api/v2/flows/bench", json.dumps({"name": "svc"}), content_type="application/json")
    archive = make_archive(args.mib, args.files)
    ours, base, down, down_base = [], [], [], []
    for run in range(args.runs):
        # a new archive per run (different bytes), so dedup does not short-cut the store
        data = archive if run == 0 else make_archive(args.mib, args.files + run)
        upload = io.BytesIO(data)
        upload.name = "evidence.tgz"
        start = time.perf_counter()
        response = client.post("/api/v2/attestations/bench/svc/trail/t1/generic",
                               {"data_json": json.dumps({"attestation_name": f"a{run}"}), "attachment_file": upload})
        ours.append(time.perf_counter() - start)
        assert response.status_code == 201, response.content[:500]
        base.append(baseline(data))
        sha = response.json()["evidence"][0]["sha256"]
        start = time.perf_counter()
        body = b"".join(client.get(f"/api/v2/evidence/bench/{sha}/download").streaming_content)
        down.append(time.perf_counter() - start)
        evidence = EvidenceFile.objects.get(org=org, sha256=sha)
        start = time.perf_counter()
        subprocess.run(["sha256sum", str(Path(store) / evidence.storage_name)], check=True, capture_output=True)
        down_base.append(time.perf_counter() - start)
        assert hashlib.sha256(body).hexdigest() == sha
    mib = args.mib
    best, best_base = min(ours), min(base)
    print(f"upload {mib} MiB in {args.files} files (tar.gz): csm {mib / best:.1f} MiB/s, "
          f"baseline {mib / best_base:.1f} MiB/s -> ratio {best_base / best:.2f}x (higher is better)")
    per_file = mib / args.files
    print(f"verified download of one {per_file:.0f} MiB file: csm {per_file / min(down):.1f} MiB/s, "
          f"sha256sum alone {per_file / min(down_base):.1f} MiB/s -> ratio {min(down_base) / min(down):.2f}x")
    from audit.context import AuditContext
    from evidence import services
    from evidence.models import Flow

    ctx = AuditContext.system("bench")
    flow = Flow.objects.get(org=org, name="svc")
    fingerprints = [f"{n:064x}" for n in range(1000)]
    for fingerprint in fingerprints[:200]:  # 200 reported artifacts, each with one attestation
        services.report_artifact(ctx, org, flow, {"fingerprint": fingerprint, "trail_name": "t1"})
        services.create_attestation(ctx, org, flow, "t1", "generic",
                                    {"attestation_name": "qa", "artifact_fingerprint": fingerprint})
    for count in (10, 200, 1000):
        with CaptureQueriesContext(connection) as queries:
            selectors.provenance_for(org, fingerprints[:count])
        print(f"provenance_for({count} fingerprints): {len(queries)} queries")
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
