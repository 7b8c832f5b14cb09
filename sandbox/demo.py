"""``python -m sandbox demo``: the sample job through each option, with a readable report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sandbox.run import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample"
#: Options the demo runs; option sqs joins when its pipeline exists.
DEMO_OPTIONS = ("sfn",)
#: A small inline limit so the sample's 72 KB document shows DocumentTooLarge without a 5 MB file in git.
DEMO_CONFIG = {"maxDocumentBytes": 65536}


def demo(out: Path) -> int:
    fields = json.loads((SAMPLE / "index-fields.json").read_text())
    results = {}
    for option in DEMO_OPTIONS:
        print(f"==> option {option}: deploying the Pulumi program into the embedded AWS and running {SAMPLE}")
        options = SandboxOptions(option=option, index_fields=fields, quiet=False, seed=7, config=DEMO_CONFIG)
        with Sandbox(options) as box:
            job_id = box.submit(SAMPLE / "job")
            box.wait([job_id])
            box.write_outputs(out / option, [job_id])
            results[option] = (job_id, *box.report(job_id))
    for option, (job_id, summary, failures) in results.items():
        print()
        print(render(option, job_id, summary, failures, out / option))
    return 0


def render(option: str, job_id: str, summary: dict, failures: bytes, folder: Path) -> str:
    d, x, k = summary["documents"], summary["deletes"], summary["kendra"]
    rows = list(csv.DictReader(io.StringIO(failures.decode())))
    lines = [
        f"Option {option} - job {job_id}: {summary['status']} in {summary['durationSeconds']:.1f}s",
        f"  documents: {d['requested']} requested, {d['put']} put, {d['skippedUnchanged']} unchanged, "
        f"{d['failed']} failed",
        f"  deletes:   {x['requested']} requested, {x['deleted']} deleted, {x['failed']} failed",
        f"  kendra:    {k['batchPutCalls']} put calls, {k['batchDeleteCalls']} delete calls, "
        f"{k['statusCalls']} status calls, {k['throttled']} throttled",
        f"  failures ({len(rows)}):",
        *[f"    {r['documentId']:<28} {r['errorCode']:<22} {r['errorMessage'][:70]}" for r in rows],
        f"  report files: {folder / job_id} (failures.csv, summary.json, notification.json),",
        f"                {folder / 'index.json'}, {folder / 'calls.json'}",
    ]
    return "\n".join(lines)
