"""The fault matrix: is every report truthful under each sandbox fault, alone and combined?

    PYTHONPATH=.:functions .venv/bin/python benchmarks/fault_matrix.py [--documents 300] [--seeds 1 2 3]
        [--options sfn sqs] [--scenarios crash-0.3 all]

For each option, scenario and seed it runs one job of fresh documents on a fresh index and compares the
report with the emulated index afterwards:

- requested / put / failed: the job's summary;
- indexed: documents of the job that Kendra holds (accepted by a put) when the job has finished;
- unconfirmed: failure rows ``IndexingUnconfirmed`` (Kendra accepted them, but did not confirm indexing
  within the verification window: the contract makes them failures that the next job sends again);
- misreported: reported put but not held by Kendra, plus reported failed (other than unconfirmed) but
  held by Kendra. It must be 0.

Prints a markdown table and writes benchmarks/results_faults.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "functions")]

from sandbox.run import Sandbox, SandboxOptions  # noqa: E402

OUT = Path(__file__).resolve().parent / "results_faults.json"

#: scenario -> (SandboxOptions fields, stack config). The index holds 60% of the job in "index-full".
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "none": ({}, {}),
    "throttle-0.3": ({"kendra_throttle": 0.3}, {}),
    "internal-error-0.1": ({"kendra_internal_error": 0.1}, {}),
    "crash-0.1": ({"crash_after_kendra": 0.1, "wait_scale": 0.00005}, {}),
    "crash-0.3": ({"crash_after_kendra": 0.3, "wait_scale": 0.00005}, {}),
    "duplicate-events-3": ({"duplicate_events": 3}, {}),
    "duplicate-deliveries-0.3": ({"sqs_redeliver": 0.3}, {}),
    "index-full": ({"index_capacity": "60%"}, {}),
    "indexing-delay": ({"indexing_delay_seconds": 30.0}, {"verifyTimeoutSeconds": 1}),
    "all": ({"kendra_throttle": 0.3, "kendra_internal_error": 0.1, "crash_after_kendra": 0.3,
             "duplicate_events": 3, "sqs_redeliver": 0.3, "index_capacity": "60%", "indexing_delay_seconds": 2.0,
             "wait_scale": 0.00005}, {"verifyTimeoutSeconds": 1}),
}


def make_job(root: Path, job_id: str, n: int) -> Path:
    folder = root / job_id
    batches = folder / "batches"
    batches.mkdir(parents=True)
    for i in range(n):
        (batches / f"doc-{i:05d}.txt").write_text(f"document {i}\n")
        (batches / f"doc-{i:05d}.txt.metadata.json").write_text(json.dumps({"Title": f"Document {i}"}))
    (folder / "_control").mkdir()
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id}))
    return folder


def run(option: str, scenario: str, seed: int, n: int) -> dict[str, Any]:
    fields, config = SCENARIOS[scenario]
    fields = dict(fields)
    if fields.get("index_capacity") == "60%":
        fields["index_capacity"] = int(n * 0.6)
    if option == "sfn":
        fields.pop("sqs_redeliver", None)
    options = SandboxOptions(option=option, seed=seed, timeout_seconds=900, config=config, **fields)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(options) as box:
        job = box.submit(make_job(Path(tmp), f"faults-{scenario}-{seed}", n))
        box.wait([job])
        summary, failures = box.report(job)
        held = set(box.emulator.index_snapshot()["documents"])
    rows = list(csv.DictReader(io.StringIO(failures.decode())))
    failed = {r["documentId"] for r in rows}
    unconfirmed = {r["documentId"] for r in rows if r["errorCode"] == "IndexingUnconfirmed"}
    requested = {f"doc-{i:05d}" for i in range(n)}
    put = requested - failed
    misreported = len(put - held) + len((failed - unconfirmed) & held)
    return {
        "option": option, "scenario": scenario, "seed": seed, "status": summary["status"],
        "requested": summary["documents"]["requested"], "put": summary["documents"]["put"],
        "failed": summary["documents"]["failed"], "indexed": len(held & requested),
        "unconfirmed": len(unconfirmed), "misreported": misreported,
        "codes": sorted({r["errorCode"] for r in rows}), "seconds": round(time.monotonic() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--options", nargs="+", default=["sfn", "sqs"])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    args = parser.parse_args()
    results = []
    print("| option | scenario | seed | status | requested | put | failed | indexed | unconfirmed | misreported |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for option in args.options:
        for scenario in args.scenarios:
            for seed in args.seeds:
                r = run(option, scenario, seed, args.documents)
                results.append(r)
                print(f"| {option} | {scenario} | {seed} | {r['status']} | {r['requested']} | {r['put']} | "
                      f"{r['failed']} | {r['indexed']} | {r['unconfirmed']} | {r['misreported']} |", flush=True)
    OUT.write_text(json.dumps({"documents": args.documents, "results": results}, indent=2) + "\n")
    return 1 if any(r["misreported"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
