"""Fingerprinting throughput of csm-agent against `sha256sum` over the same files, in the same run.

Builds two trees in a temp dir — many small files, and a few large files — warms the page cache, then
times (best of N runs each):

* baseline: `sha256sum` over every file of the tree (one process, file list via xargs, output discarded);
* csm-agent: `fingerprint()` of the directory in `csm` and `kosli` formats (walk + parallel hashing +
  combining), in-process; the same with one hashing thread (per-core speed); and the
  `csm-agent fingerprint` command (includes interpreter start-up).

Prints bytes/s and the ratio ours / sha256sum (target: >= 0.8). Usage:

    .venv/bin/python bench/agent_fingerprint.py [--small-files 20000] [--large-files 4] [--large-mib 256] [--runs 3]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from csm_agent import fingerprint as fp


def build_small(root, count):
    rnd = os.urandom(1 << 20)
    total = 0
    for i in range(count):
        d = root / f"pkg{i % 50:02d}" / f"mod{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = 512 + (i * 7919) % 16384  # 0.5 - 16.5 KiB, like a source tree
        start = (i * 131) % (len(rnd) - size)
        (d / f"file{i}.py").write_bytes(rnd[start : start + size])
        total += size
    return total


def build_large(root, count, mib):
    root.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    for i in range(count):
        with open(root / f"blob{i}.bin", "wb") as f:
            for _ in range(mib):
                f.write(chunk)
    return count * mib << 20


def sha256sum_seconds(root):
    files = "\0".join(str(p) for p in sorted(root.rglob("*")) if p.is_file()).encode()
    t = time.perf_counter()
    subprocess.run(["xargs", "-0", "sha256sum"], input=files, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def ours_seconds(root, fmt, workers=None):
    t = time.perf_counter()
    fp.fingerprint(str(root), fmt=fmt, workers=workers, progress=False)
    return time.perf_counter() - t


def cli_seconds(root):
    exe = Path(sys.executable).parent / "csm-agent"
    t = time.perf_counter()
    subprocess.run([str(exe), "fingerprint", str(root)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def best(fn, runs):
    return min(fn() for _ in range(runs))


def report(label, size, runs, root):
    base = best(lambda: sha256sum_seconds(root), runs)
    rows = [("sha256sum (baseline)", base)]
    rows.append(("csm-agent csm format", best(lambda: ours_seconds(root, fp.CSM), runs)))
    rows.append(("csm-agent kosli format", best(lambda: ours_seconds(root, fp.KOSLI), runs)))
    rows.append(("csm-agent csm format, 1 thread", best(lambda: ours_seconds(root, fp.CSM, workers=1), runs)))
    rows.append(("csm-agent CLI (with start-up)", best(lambda: cli_seconds(root), runs)))
    print(f"\n{label}: {size / 2**20:.0f} MiB")
    for name, seconds in rows:
        print(f"  {name:32s} {seconds:7.3f} s  {size / seconds / 2**20:8.1f} MiB/s  ratio {base / seconds:5.2f}x")
    return {name: base / seconds for name, seconds in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small-files", type=int, default=20000)
    ap.add_argument("--large-files", type=int, default=4)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="where to build the trees (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="csm-bench-", dir=args.dir))
    try:
        print(f"cpus: {os.cpu_count()}, hashing workers: {fp.default_workers()}, python {sys.version.split()[0]}")
        small = build_small(work / "small", args.small_files)
        large = build_large(work / "large", args.large_files, args.large_mib)
        for root in (work / "small", work / "large"):  # warm the page cache: we measure hashing, not the disk
            sha256sum_seconds(root)
        r1 = report(f"many small files ({args.small_files} files)", small, args.runs, work / "small")
        r2 = report(f"few large files ({args.large_files} x {args.large_mib} MiB)", large, args.runs, work / "large")
        worst = min(r1["csm-agent csm format"], r2["csm-agent csm format"])
        print(f"\nworst in-process ratio (csm format): {worst:.2f}x  (target >= 0.80x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
