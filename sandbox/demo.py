"""``python -m sandbox demo``: the sample job through each option, with a readable report.

Each option deploys the Pulumi program into its own embedded AWS and runs ``sample/job``; the summaries
are then printed side by side (they should agree on every count), followed by each option's report.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox.run import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample"
#: Options the demo runs, in the order of the side-by-side columns.
DEMO_OPTIONS = ("sfn", "sqs")
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
    print()
    print(side_by_side({option: (summary, failures) for option, (_, summary, failures) in results.items()}))
    return 0


def _rows(summary: dict[str, Any], failures: bytes) -> list[tuple[str, str]]:
    d, x, k = summary["documents"], summary["deletes"], summary["kendra"]
    codes = Counter(r["errorCode"] for r in csv.DictReader(io.StringIO(failures.decode())))
    return [
        ("status", summary["status"]),
        ("duration (s)", f"{summary['durationSeconds']:.1f}"),
        *[(f"documents {name}", str(d[key])) for name, key in
          (("requested", "requested"), ("put", "put"), ("unchanged", "skippedUnchanged"), ("failed", "failed"))],
        *[(f"deletes {key}", str(x[key])) for key in ("requested", "deleted", "failed")],
        *[(f"kendra {name}", str(k[key])) for name, key in
          (("put calls", "batchPutCalls"), ("delete calls", "batchDeleteCalls"), ("status calls", "statusCalls"),
           ("throttled", "throttled"))],
        *[(f"failures {code}", str(n)) for code, n in sorted(codes.items())],
    ]


def side_by_side(results: dict[str, tuple[dict[str, Any], bytes]]) -> str:
    """The options' summaries as one table: a row per measure, a column per option, ``*`` where they differ."""
    columns = {option: dict(_rows(summary, failures)) for option, (summary, failures) in results.items()}
    labels: list[str] = []
    for rows in columns.values():
        labels.extend(label for label in rows if label not in labels)
    width = max(len(label) for label in labels) + 2
    cells = {option: max(len(option), *(len(v) for v in rows.values())) + 2 for option, rows in columns.items()}
    lines = ["Side by side (* = the options disagree; durations always differ)",
             "  " + "".ljust(width) + "".join(option.rjust(cells[option]) for option in columns)]
    for label in labels:
        values = [columns[option].get(label, "-") for option in columns]
        mark = " *" if len(set(values)) > 1 and label != "duration (s)" else ""
        lines.append("  " + label.ljust(width)
                     + "".join(v.rjust(cells[option]) for option, v in zip(columns, values, strict=True)) + mark)
    return "\n".join(lines)


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
