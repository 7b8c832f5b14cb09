"""The metrics a sandbox job emits: the EMF lines the handlers print, as CloudWatch would ingest them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.run import Sandbox, SandboxOptions
from tests.sandbox.conftest import make_job

SECRETS = ("SECRET-META-VALUE", "secret.principal@example.com", "SECRET BODY")
JOB_METRICS = {"DocumentsPut", "DocumentsSkipped", "DocumentsDeleted", "DocumentsFailed",
               "JobDurationSeconds", "JobsFailed"}


def values(record: dict[str, Any], name: str) -> list[float]:
    value = record[name]
    return value if isinstance(value, list) else [value]


def names(record: dict[str, Any]) -> set[str]:
    return {m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


@pytest.mark.parametrize("option", ["sfn", "sqs"])
def test_a_job_emits_its_metrics_in_the_stacks_namespace(tmp_path: Path, option: str) -> None:
    meta = {"Title": "t", "Attributes": {"dept": "SECRET-META-VALUE"},
            "AccessControlList": [{"Name": "secret.principal@example.com", "Type": "USER", "Access": "ALLOW"}]}
    docs = {f"d-{n}.txt": (f"SECRET BODY {n}", meta) for n in range(12)}
    docs["orphan.txt"] = ("SECRET BODY orphan", None)  # MissingMetadata
    folder = make_job(tmp_path, "hr-metrics", docs, source="hr", deletes=["gone-1"])
    options = SandboxOptions(timeout_seconds=120, option=option, index_fields={"dept": "STRING_VALUE"})
    with Sandbox(options) as box:
        box.wait([box.submit(folder)])
        summary, _ = box.report("hr-metrics")
        box.write_outputs(tmp_path / "out", ["hr-metrics"])
        lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    namespace = f"KendraIngestion/kendra-ingestion-{option}"
    assert records and all(d["Namespace"] == namespace for r in records for d in r["_aws"]["CloudWatchMetrics"])
    for record in records:
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["service"], ["service", "stack", "source"]]
        assert (record["service"], record["stack"], record["source"]) == (
            "kendra-ingestion", f"kendra-ingestion-{option}", "hr")
    (job_record,) = [r for r in records if names(r) >= JOB_METRICS]
    assert values(job_record, "DocumentsPut") == [summary["documents"]["put"]] == [12]
    assert values(job_record, "DocumentsFailed") == [1]
    assert values(job_record, "DocumentsDeleted") == [1]
    assert values(job_record, "JobsFailed") == [0]
    kendra = [r for r in records if "KendraCallLatency" in names(r)]
    latencies = [v for r in kendra for v in values(r, "KendraCallLatency")]
    calls = summary["kendra"]
    assert len(latencies) >= calls["batchPutCalls"] + calls["batchDeleteCalls"] >= 3
    assert all("KendraThrottles" in names(r) for r in kendra)
    text = "\n".join(lines)
    for secret in SECRETS:
        assert secret not in text
