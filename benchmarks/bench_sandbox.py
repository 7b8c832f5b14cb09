"""Sandbox benchmarks (targets in benchmarks/README.md): a 20,000-document job per option, and Kendra quota use.

    PYTHONPATH=.:functions .venv/bin/python benchmarks/bench_sandbox.py [--documents 20000] [--options sfn]
        [--tps 20 --tps-documents 2000]

Prints a markdown table and writes benchmarks/results_sandbox.json. Figures are ratios or carry the
machine; the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "functions")]

from sandbox.kendra_emulator import KendraEmulator  # noqa: E402
from sandbox.run import Sandbox, SandboxOptions  # noqa: E402

OUT = Path(__file__).resolve().parent / "results_sandbox.json"


def make_job(root: Path, job_id: str, n: int) -> Path:
    folder = root / job_id
    batches = folder / "batches"
    for i in range(n):
        sub = batches / f"shard-{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"doc-{i:06d}.txt").write_text(f"document {i}\n" * 4)
        (sub / f"doc-{i:06d}.txt.metadata.json").write_text(json.dumps({"Title": f"Document {i}"}))
    (folder / "_control").mkdir(parents=True, exist_ok=True)
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id}))
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_job(option: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_job(Path(tmp), f"big-{option}", n)
        started = time.monotonic()
        with Sandbox(SandboxOptions(option=option, timeout_seconds=3600, config={"verifyIndexing": False})) as box:
            uploaded = time.monotonic()
            job = box.submit(folder)
            submitted = time.monotonic()
            box.wait([job])
            done = time.monotonic()
            summary, _ = box.report(job)
    return {
        "option": option, "documents": n, "status": summary["status"], "put": summary["documents"]["put"],
        "putCalls": summary["kendra"]["batchPutCalls"], "deploySeconds": round(uploaded - started, 1),
        "uploadSeconds": round(submitted - uploaded, 1), "jobSeconds": round(done - submitted, 1),
        "peakRssMb": round(peak_rss_mb(), 1),
    }


def quota_use(option: str, tps: float, n: int, *, paced: bool = True) -> dict:
    """Put calls per second achieved against the emulator's token bucket, and the throttled share.

    ``paced``: the stack is configured with the same quota (``kendraTps``), at its default concurrency.
    """
    stamps: list[tuple[float, str]] = []
    lock = threading.Lock()
    original = KendraEmulator._append_call

    def append(self, operation, doc_ids, nbytes, outcome):  # type: ignore[no-untyped-def]
        if operation == "BatchPutDocument":
            with lock:
                stamps.append((time.monotonic(), outcome))
        return original(self, operation, doc_ids, nbytes, outcome)

    KendraEmulator._append_call = append  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = make_job(Path(tmp), f"quota-{option}", n)
            config: dict = {"verifyIndexing": False}
            if paced:
                config["kendraTps"] = tps
            with Sandbox(SandboxOptions(option=option, kendra_tps=tps, timeout_seconds=3600, config=config)) as box:
                job = box.submit(folder)
                box.wait([job])
                summary, _ = box.report(job)
    finally:
        KendraEmulator._append_call = original  # type: ignore[method-assign]
    ok = [t for t, outcome in stamps if outcome == "ok"]
    span = max(ok) - min(ok) if len(ok) > 1 else float("nan")
    rate = (len(ok) - 1) / span if span else float("nan")
    return {
        "option": option, "tps": tps, "paced": paced, "documents": n, "okPutCalls": len(ok),
        "allPutCalls": len(stamps),
        "rateOverQuota": round(rate / tps, 3), "throttledShare": round(1 - len(ok) / len(stamps), 3),
        "put": summary["documents"]["put"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--options", nargs="+", default=["sfn"])
    parser.add_argument("--tps", type=float, nargs="+", default=[1.0, 5.0, 10.0])
    parser.add_argument("--tps-seconds", type=float, default=30.0,
                        help="each quota run sends about this many seconds of put calls at the quota")
    parser.add_argument("--unpaced", action="store_true", help="do not configure kendraTps on the stack")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    results: dict = {"machine": "2 cores, shared", "big": [], "quota": []}
    for option in args.options:
        for tps in args.tps:
            documents = int(tps * args.tps_seconds * 10)  # 10 documents per put call
            results["quota"].append(quota_use(option, tps, documents, paced=not args.unpaced))
            print(json.dumps(results["quota"][-1]), flush=True)
        if not args.skip_big:
            results["big"].append(big_job(option, args.documents))
            print(json.dumps(results["big"][-1]), flush=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| measure | option | result |\n|---|---|---|")
    for q in results["quota"]:
        print(f"| put-call rate / quota ({q['tps']:g} TPS), throttled share | {q['option']} | "
              f"{q['rateOverQuota']}, {q['throttledShare']:.1%} |")
    for b in results["big"]:
        print(f"| {b['documents']:,}-document job | {b['option']} | {b['status']}, {b['put']:,} put in "
              f"{b['putCalls']:,} calls; job {b['jobSeconds']} s (+ upload {b['uploadSeconds']} s); "
              f"peak RSS {b['peakRssMb']} MB |")


if __name__ == "__main__":
    main()
