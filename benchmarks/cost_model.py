"""AWS cost per 100,000 documents, from the requests a sandbox job really makes.

    PYTHONPATH=.:functions .venv/bin/python benchmarks/cost_model.py [--documents 2000] [--kb 50]
        [--options sfn sqs] [--s3-latency 20]

One first-run job of ``--documents`` fresh inline documents (``--kb`` KB each) per option, in the sandbox
with every function request counted (``OUT/invocations.json``'s data) and DynamoDB items counted per
batch request. The counts are priced at published us-east-1 prices and scaled linearly to 100,000
documents (the few fixed requests of a job are scaled too, so small runs slightly over-state the cost).

Modelled, not counted:
- Lambda duration is the sandbox's measured seconds (with ``--s3-latency`` ms before each S3 request, to
  stand for AWS's latency) times each function's configured memory: emulation overhead makes it high.
- Step Functions standard transitions: the parent execution's state transitions (counted from its
  history) plus 2 per Distributed Map child execution (its start and its task).
- SQS: the functions' own requests, plus one ReceiveMessage and one DeleteMessageBatch per batch the
  event source mapping delivered (empty long polls are not counted).
- DynamoDB on demand: one write unit per item written (two in a transaction), one read unit per
  strongly consistent item read and half of one per eventually consistent item (all items < 1 KB).
- Kendra bills per index hour, not per call: its calls cost nothing here.

Writes benchmarks/results_cost.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "functions")]

from sandbox.run import Sandbox, SandboxOptions  # noqa: E402

OUT = Path(__file__).resolve().parent / "results_cost.json"
PER = 100_000

#: Published us-east-1 prices (USD).
PRICES = {
    "s3_get": 0.0004 / 1000,  # GET, HEAD
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "lambda_gb_second": 0.0000133334,  # arm64
    "lambda_request": 0.20 / 1_000_000,
    "sfn_transition": 0.025 / 1000,  # standard workflows
    "sqs_fifo_request": 0.50 / 1_000_000,
    "dynamodb_wru": 0.625 / 1_000_000,  # on-demand write request unit
    "dynamodb_rru": 0.125 / 1_000_000,  # on-demand read request unit
    "sns_publish": 0.50 / 1_000_000,
}
S3_GETS = {"GetObject", "HeadObject"}
S3_PUTS = {"PutObject", "CopyObject", "ListObjectsV2", "ListObjects", "CreateMultipartUpload", "UploadPart",
           "CompleteMultipartUpload", "UploadPartCopy"}


def make_job(root: Path, job_id: str, n: int, kb: int) -> Path:
    folder = root / job_id
    batches = folder / "batches"
    batches.mkdir(parents=True)
    body = ("lorem ipsum dolor sit amet " * (kb * 1024 // 27 + 1))[: kb * 1024]
    for i in range(n):
        (batches / f"doc-{i:06d}.txt").write_text(body)
        (batches / f"doc-{i:06d}.txt.metadata.json").write_text(json.dumps({"Title": f"Document {i}"}))
    (folder / "_control").mkdir()
    (folder / "_control" / "manifest.json").write_text(json.dumps({"schemaVersion": 1, "jobId": job_id}))
    return folder


class DynamoItems:
    """Counts the items of the functions' DynamoDB requests (read and write units)."""

    def __init__(self) -> None:
        self.wru = 0.0
        self.rru = 0.0
        self.lock = threading.Lock()

    def charge(self, operation: str, params: dict[str, Any]) -> None:
        wru = rru = 0.0
        if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
            wru = 1
        elif operation == "TransactWriteItems":
            wru = 2 * len(params.get("TransactItems", ()))
        elif operation == "BatchWriteItem":
            wru = sum(len(v) for v in params.get("RequestItems", {}).values())
        elif operation == "GetItem":
            rru = 1 if params.get("ConsistentRead") else 0.5
        elif operation == "BatchGetItem":
            rru = sum(len(v.get("Keys", ())) * (1 if v.get("ConsistentRead") else 0.5)
                      for v in params.get("RequestItems", {}).values())
        elif operation in {"Query", "Scan"}:
            rru = 1  # a page of small items: a few units at most
        with self.lock:
            self.wru += wru
            self.rru += rru


def run(option: str, n: int, kb: int, s3_latency_ms: float) -> dict[str, Any]:
    from botocore.client import BaseClient

    from sandbox import lambdas

    items = DynamoItems()
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb" and lambdas.current_invocation() is not None:
            items.charge(operation, params)
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        options = SandboxOptions(option=option, timeout_seconds=3600, s3_latency_ms=s3_latency_ms)
        with tempfile.TemporaryDirectory() as tmp, Sandbox(options) as box:
            job = box.submit(make_job(Path(tmp), f"cost-{option}", n, kb))
            box.wait([job])
            summary, _ = box.report(job)
            logs = list(box.runtime.invocation_logs)
            memory = _memory_by_handler(box)
            transitions = _sfn_transitions(box) if option == "sfn" else 0
            esm_batches = len(box.event_sources.batches) if option == "sqs" else 0
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    requests: Counter[str] = Counter()
    gb_seconds = 0.0
    for log in logs:
        requests.update(log.requests)
        gb_seconds += memory.get(log.function, 1024) / 1024 * (log.seconds or 0.0)
    by_service: dict[str, float] = {
        "s3": sum(c for op, c in requests.items() if op.split(":")[0] == "s3" and op.split(":")[1] in S3_GETS)
        * PRICES["s3_get"]
        + sum(c for op, c in requests.items() if op.split(":")[0] == "s3" and op.split(":")[1] in S3_PUTS)
        * PRICES["s3_put"],
        "lambda": gb_seconds * PRICES["lambda_gb_second"] + len(logs) * PRICES["lambda_request"],
        "stepfunctions": transitions * PRICES["sfn_transition"],
        "sqs": (sum(c for op, c in requests.items() if op.startswith("sqs:")) + 2 * esm_batches)
        * PRICES["sqs_fifo_request"],
        "dynamodb": items.wru * PRICES["dynamodb_wru"] + items.rru * PRICES["dynamodb_rru"],
        "sns": requests.get("sns:Publish", 0) * PRICES["sns_publish"],
    }
    scale = PER / n
    gets = sum(c for op, c in requests.items() if op in {"s3:GetObject", "s3:HeadObject"})
    return {
        "option": option, "documents": n, "kb": kb, "status": summary["status"], "put": summary["documents"]["put"],
        "invocations": len(logs), "s3GetsPerDocument": round(gets / n, 3),
        "maxGetsInOneInvocation": max((log.requests.get("s3:GetObject", 0) for log in logs), default=0),
        "sfnTransitions": transitions, "esmBatches": esm_batches,
        "dynamodb": {"wru": items.wru, "rru": items.rru}, "lambdaGbSeconds": round(gb_seconds, 1),
        "usdPer100k": {k: round(v * scale, 4) for k, v in by_service.items()},
        "usdPer100kTotal": round(sum(by_service.values()) * scale, 3),
    }


def _memory_by_handler(box: Any) -> dict[str, int]:
    import boto3

    client = boto3.client("lambda", region_name="us-east-1")
    return {handler: client.get_function_configuration(FunctionName=name)["MemorySize"]
            for handler, name in box.outputs["function_names"].items()}


def _sfn_transitions(box: Any) -> int:
    """The parent executions' state transitions, plus 2 per Distributed Map child execution."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    total = 0
    for arn in box.delivery.executions():
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        total += sum(1 for e in events if e["type"].endswith("StateEntered"))
        total += 2 * sum(1 for e in events if e["type"] == "MapIterationStarted")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--options", nargs="+", default=["sfn", "sqs"])
    parser.add_argument("--s3-latency", type=float, default=20.0, metavar="MS")
    args = parser.parse_args()
    results = [run(option, args.documents, args.kb, args.s3_latency) for option in args.options]
    OUT.write_text(json.dumps({"machine": "2 cores, shared", "prices": PRICES, "results": results}, indent=2) + "\n")
    services = list(results[0]["usdPer100k"])
    print(f"| option | total $/100k | {' | '.join(services)} | S3 GETs/doc | max GETs/invocation |")
    print("|---|---|" + "---|" * len(services) + "---|---|")
    for r in results:
        cells = " | ".join(f"{r['usdPer100k'][s]:.4f}" for s in services)
        print(f"| {r['option']} | {r['usdPer100kTotal']:.3f} | {cells} | {r['s3GetsPerDocument']} | "
              f"{r['maxGetsInOneInvocation']} |")
    return 0 if all(math.isfinite(r["usdPer100kTotal"]) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
