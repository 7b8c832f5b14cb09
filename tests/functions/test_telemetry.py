"""Logs, metrics and traces of a job: every log line of a job carries its keys and the request id, the
EMF lines carry the documented metric names and dimensions, and no document content, metadata value or
ACL principal leaves the function."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kendra_ingest import reports, runtime, telemetry
from kendra_ingest.deadline import Deadline
from kendra_ingest.kendra import KendraIndex
from kendra_ingest.runtime import lambda_handler, logger

NAMESPACE = "KendraIngestion/kendra-ingestion-test"
SECRETS = ("SECRET-CONTENT", "SECRET-META-VALUE", "secret.principal@example.com", "SECRET-GROUP")
JOB = {"jobId": "hr-2026-01", "runId": "run-1", "source": "hr", "bucket": "in", "prefix": "p",
       "manifestKey": "p/_control/manifest.json", "startedAt": "2026-01-01T00:00:00+00:00"}


@dataclass
class Context:
    """The parts of the Lambda context Powertools reads."""

    aws_request_id: str = "req-123"
    function_name: str = "kendra-ingestion-test-process-batch"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:x"
    log_group_name: str = "/aws/lambda/x"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Captured:
    emf: list[dict[str, Any]]
    log: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.strip()]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    emf: list[dict[str, Any]] = []
    previous = telemetry.emit_to(lambda line: emf.append(json.loads(line)))
    log = io.StringIO()
    handler = logger.registered_handler
    stream = handler.setStream(log)  # type: ignore[attr-defined]
    level = logger.log_level
    logger.setLevel("INFO")
    try:
        yield Captured(emf, log)
    finally:
        logger.setLevel(level)
        handler.setStream(stream)  # type: ignore[attr-defined]
        telemetry.emit_to(previous)


class ThrottledOnce:
    """A Kendra client whose first BatchPutDocument is throttled."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_put_document(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchPutDocument")
        return {"FailedDocuments": [{"Id": "doc-2", "ErrorCode": "InvalidRequest",
                                     "ErrorMessage": "bad attribute"}]}


def values(record: dict[str, Any], name: str) -> list[float]:
    """A metric's values in an EMF record (one value or a list)."""
    value = record[name]
    return value if isinstance(value, list) else [value]


def documents() -> list[dict[str, Any]]:
    acl = [{"Name": "secret.principal@example.com", "Type": "USER", "Access": "ALLOW"},
           {"Name": "SECRET-GROUP", "Type": "GROUP", "Access": "DENY"}]
    return [{"Id": f"doc-{n}", "Title": "t", "ContentType": "PLAIN_TEXT", "Blob": b"SECRET-CONTENT",
             "Attributes": [{"Key": "dept", "Value": {"StringValue": "SECRET-META-VALUE"}}],
             "AccessControlList": acl} for n in (1, 2)]


@lambda_handler
def process_part(event: dict[str, Any], context: object) -> dict[str, Any]:
    logger.info("sending part")
    index = KendraIndex("0" * 36, client=ThrottledOnce(), sleep=lambda _: None)
    outcomes = index.put(documents(), deadline=Deadline(60))
    logger.info("part sent", extra={"failed": sum(o.status == "failed" for o in outcomes)})
    return {"outcomes": len(outcomes)}


def test_every_line_of_a_job_has_its_keys_and_the_request_id(captured: Captured) -> None:
    event = {"job": JOB, "part": {"action": "put", "part": 3, "jobId": "hr-2026-01", "docs": []}}
    assert process_part(event, Context()) == {"outcomes": 2}
    lines = captured.lines()
    assert [line["message"] for line in lines] == ["sending part", "part sent"]
    for line in lines:
        assert line["jobId"] == "hr-2026-01" and line["runId"] == "run-1" and line["source"] == "hr"
        assert line["part"] == "put-3"
        assert line["correlation_id"] == "req-123"
        assert line["function_request_id"] == "req-123"
    # The keys belong to that invocation only.
    captured.log.truncate(0)
    captured.log.seek(0)
    process_part({"jobId": "other-1", "runId": "run-2"}, Context(aws_request_id="req-456"))
    for line in captured.lines():
        assert line["jobId"] == "other-1" and "source" not in line and "part" not in line
        assert line["correlation_id"] == "req-456"


def test_a_part_emits_its_kendra_throttles_and_call_latencies(captured: Captured) -> None:
    process_part({"job": JOB, "part": {"action": "put", "part": 0}}, Context())
    (record,) = captured.emf
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["service"], ["service", "stack", "source"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "KendraThrottles": "Count", "KendraCallLatency": "Milliseconds"}
    assert record["service"] == "kendra-ingestion" and record["source"] == "hr"
    assert record["stack"] == "kendra-ingestion-test"
    assert values(record, "KendraThrottles") == [1.0]
    assert len(values(record, "KendraCallLatency")) == 2  # the throttled call and the one that went through


def test_no_content_metadata_value_or_principal_leaves_the_function(captured: Captured) -> None:
    process_part({"job": JOB, "part": {"action": "put", "part": 0}}, Context())
    out = captured.log.getvalue() + json.dumps(captured.emf)
    assert captured.emf and captured.log.getvalue()
    for secret in SECRETS:
        assert secret not in out


def summary(status_error: str | None = None) -> reports.Summary:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return reports.build_summary(
        job_id="hr-2026-01", option="sfn", source="hr",
        documents={"requested": 10, "put": 6, "skippedUnchanged": 3, "failed": 1, "excluded": 0},
        deletes={"requested": 3, "deleted": 2, "failed": 1, "fullSync": 0},
        kendra={"batchPutCalls": 1}, started_at=started, finished_at=started + timedelta(seconds=42.5),
        failure_rows=2, error=status_error,
    )


@pytest.mark.parametrize(("error", "failed"), [(None, 0), ("expectedDocuments not met", 1)])
def test_a_finished_job_emits_its_counts_duration_and_failure(captured: Captured, error: str | None,
                                                             failed: int) -> None:
    telemetry.job_finished(summary(error))
    (record,) = captured.emf
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["service"], ["service", "stack", "source"]]
    names = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert names == {"DocumentsPut": "Count", "DocumentsSkipped": "Count", "DocumentsDeleted": "Count",
                     "DocumentsFailed": "Count", "JobDurationSeconds": "Seconds", "JobsFailed": "Count"}
    got = {name: values(record, name) for name in names}
    assert (got["DocumentsPut"], got["DocumentsSkipped"], got["DocumentsDeleted"]) == ([6], [3], [2])
    assert got["DocumentsFailed"] == [2]  # the rows of failures.csv: a document and a delete
    assert got["JobDurationSeconds"] == [42.5]
    assert got["JobsFailed"] == [failed]


def test_many_calls_are_split_into_records_of_fewer_than_100_values(captured: Captured) -> None:
    with telemetry.kendra_calls(source="hr") as calls:
        calls.latencies_ms.extend([1.0] * 250)
    assert [len(values(r, "KendraCallLatency")) for r in captured.emf] == [99, 99, 52]


def test_metrics_can_be_disabled(captured: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    telemetry.job_finished(summary())
    assert captured.emf == []


def test_queue_messages_of_one_batch_keep_their_own_keys(captured: Captured) -> None:
    body = json.dumps({"action": "delete", "jobId": "hr-2", "part": 7, "runId": "run-9", "source": "hr"})

    @lambda_handler
    def batch(event: dict[str, Any], context: object) -> None:
        for record in event["Records"]:
            with runtime.part_scope(record["body"]):
                logger.info("part")
        logger.info("batch done")

    batch({"Records": [{"body": body}, {"body": "not json"}]}, Context())
    first, second, done = captured.lines()
    assert (first["jobId"], first["part"], first["source"]) == ("hr-2", "delete-7", "hr")
    assert "jobId" not in second and "jobId" not in done
    assert all(line["correlation_id"] == "req-123" for line in (first, second, done))


@pytest.mark.parametrize(("event", "keys"), [
    ({"job": JOB, "part": {"action": "put", "part": 2}}, {"jobId": "hr-2026-01", "runId": "run-1",
                                                         "source": "hr", "part": "put-2"}),
    ({"state": {"job": JOB}, "owner": "arn:exec"}, {"jobId": "hr-2026-01", "runId": "run-1", "source": "hr"}),
    ({"jobId": "j", "runId": "r"}, {"jobId": "j", "runId": "r"}),
    ({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, {}),
    ({"action": "delete", "jobId": "j", "part": 4, "runId": "r", "source": "s"},
     {"jobId": "j", "runId": "r", "source": "s", "part": "delete-4"}),
])
def test_job_keys_of_each_event_shape(event: dict[str, Any], keys: dict[str, str]) -> None:
    assert runtime.job_keys(event) == keys
