"""Finishing a job (kendra_ingest.finish): accounting from S3, crash reasons, cut-short verification."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from kendra_ingest import aws, store
from kendra_ingest.finish import crash_message, finish, finished_key
from kendra_ingest.job import Job
from kendra_ingest.reports import read_failures_csv
from moto import mock_aws

INGEST, REPORTS = "ingest", "reports"
JOB = Job(job_id="fin-1", source="fin", bucket=INGEST, prefix="p", manifest_key="p/_control/manifest.json",
          run_id="r1", started_at="2026-01-01T00:00:00+00:00")


class Ledger:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, ids: object) -> int:
        self.forgotten.extend(ids)  # type: ignore[call-overload]
        return len(self.forgotten)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INGEST, REPORTS):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=INGEST, Key=JOB.manifest_key, Body=b"{}")
        yield client
    aws.reset_clients()


def plan(docs: list[str], deletes: list[str], failures: list[dict] | None = None) -> None:
    parts = [{"action": "put", "jobId": JOB.job_id, "part": 1,
              "docs": [{"documentId": d, "s3Bucket": INGEST, "s3Key": f"p/batches/{d}.txt",
                        "metaKey": f"p/batches/{d}.txt.metadata.json"} for d in docs]}]
    if deletes:
        parts.append({"action": "delete", "jobId": JOB.job_id, "part": 2, "documentIds": deletes})
    store.write_json(REPORTS, JOB.work_key("parts.json"), parts)
    store.write_json(REPORTS, JOB.work_key("plan.json"), {
        "counts": {"documentsRequested": len(docs) + len(failures or ()), "deletesRequested": len(deletes)},
        "failures": failures or [], "deleteFailures": [], "error": None})


def result(operation: str, part: int, outcomes: list[dict]) -> None:
    store.write_json(REPORTS, JOB.work_key(f"results/{operation}-{part:05d}.json"), {
        "jobId": JOB.job_id, "operation": operation, "part": part, "outcomes": outcomes,
        "kendra": {"batchPutCalls": 1 if operation == "put" else 0,
                   "batchDeleteCalls": 1 if operation == "delete" else 0}})


def test_every_document_is_accounted_from_s3_and_the_manifest_archived(s3: object) -> None:
    plan(["a", "b"], ["x"], failures=[{"documentId": "c", "errorCode": "InvalidMetadata", "errorMessage": "m"}])
    result("put", 1, [{"documentId": "a", "operation": "put", "status": "put"},
                      {"documentId": "b", "operation": "put", "status": "failed", "errorCode": "InvalidRequest",
                       "errorMessage": "bad"}])
    result("delete", 2, [{"documentId": "x", "operation": "delete", "status": "deleted"}])
    report, _ = finish(JOB, option="sfn", reports_bucket=REPORTS)
    data = json.loads(store.read(REPORTS, report.summary_key) or b"{}")
    assert data["status"] == "COMPLETED_WITH_FAILURES" == report.status
    assert {k: data["documents"][k] for k in ("requested", "put", "skippedUnchanged", "failed")} == {
        "requested": 3, "put": 1, "skippedUnchanged": 0, "failed": 2}
    assert data["deletes"]["deleted"] == 1 and data["kendra"]["batchPutCalls"] == 1
    rows = read_failures_csv(store.read(REPORTS, report.failures_key) or b"")
    assert sorted((r[1], r[2]) for r in rows) == [("b", "InvalidRequest"), ("c", "InvalidMetadata")]
    assert store.read(INGEST, JOB.manifest_key) is None
    assert store.read(REPORTS, f"_archive/{JOB.job_id}/manifest.json") == b"{}"
    assert store.read_json(REPORTS, finished_key(JOB)) == {"summaryKey": report.summary_key,
                                                           "status": report.status}


def test_a_part_without_a_result_is_job_aborted_with_the_reason(s3: object) -> None:
    plan(["a", "b"], [])
    report, _ = finish(JOB, option="sqs", reports_bucket=REPORTS, error="the watchdog aborted the run")
    rows = read_failures_csv(store.read(REPORTS, report.failures_key) or b"")
    assert [(r[1], r[2]) for r in rows] == [("a", "JobAborted"), ("b", "JobAborted")]
    assert "the watchdog aborted the run" in rows[0][3]
    assert report.status == "FAILED"


def test_verification_cut_short_reports_unconfirmed_and_forgets_them(s3: object) -> None:
    plan(["a", "b", "c"], [])
    result("put", 1, [{"documentId": i, "operation": "put", "status": "put"} for i in ("a", "b", "c")])
    store.write_json(REPORTS, JOB.work_key("verify.json"), {
        "started": 1.0, "pending": ["b", "c"], "verified": 1, "failures": [], "done": False})
    ledger = Ledger()
    report, _ = finish(JOB, option="sfn", reports_bucket=REPORTS, error="aborted", ledger=ledger)
    data = json.loads(store.read(REPORTS, report.summary_key) or b"{}")
    assert data["documents"]["put"] == 1 and data["documents"]["failed"] == 2
    assert data["indexing"] == {"verified": 1, "unconfirmed": 2}
    rows = read_failures_csv(store.read(REPORTS, report.failures_key) or b"")
    assert {(r[1], r[2]) for r in rows} == {("b", "IndexingUnconfirmed"), ("c", "IndexingUnconfirmed")}
    assert ledger.forgotten == ["b", "c"]


LAMBDA_CAUSE = json.dumps({"errorMessage": "boom: the index is gone\nsecond line", "errorType": "KendraError",
                           "requestId": "r", "stackTrace": ["  File \"/var/task/x.py\", line 1, in handler\n"]})


@pytest.mark.parametrize(("crash", "shown", "hidden"), [
    ({"Error": "KendraError", "Cause": LAMBDA_CAUSE}, "KendraError: boom: the index is gone",
     ["stackTrace", "File", "second line", "{"]),
    ({"Error": "States.Timeout", "Cause": ""}, "(States.Timeout)", []),
    ({"Error": "States.TaskFailed", "Cause": "x" * 1000}, "x" * 50, ["x" * 300]),
])
def test_crash_messages_are_short_and_human(crash: dict, shown: str, hidden: list[str]) -> None:
    message = crash_message(crash) or ""
    assert shown in message and "run the job again" in message
    assert all(h not in message for h in hidden)
    assert len(message) < 400


def test_no_crash_no_message() -> None:
    assert crash_message(None) is None and crash_message({}) is None
