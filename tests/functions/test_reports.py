import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kendra_ingest.models import Failure, KendraCounts, Outcome
from kendra_ingest.reports import (
    FAILURES_HEADER,
    ConservationError,
    DeleteCounts,
    DocumentCounts,
    ReportFormatError,
    archive_key,
    build_summary,
    failure_rows,
    failures_key,
    merge_failures_csv,
    notification,
    part_key,
    read_failures_csv,
    summary_key,
    write_failures_csv,
)

T0 = datetime(2025, 10, 5, 12, 0, tzinfo=UTC)


def summary(**overrides):
    fields = {
        "job_id": "J", "option": "sfn", "source": "hr",
        "documents": DocumentCounts(requested=30, put=25, skipped_unchanged=2, failed=3),
        "deletes": DeleteCounts(requested=2, deleted=2, failed=0),
        "kendra": KendraCounts(batch_put_calls=3, batch_delete_calls=1, status_calls=3, throttled=1),
        "started_at": T0, "finished_at": T0 + timedelta(seconds=12.5), "failure_rows": 3,
    }
    return build_summary(**{**fields, **overrides})


def test_report_keys():
    assert failures_key("J") == "_reports/J/failures.csv"
    assert summary_key("J") == "_reports/J/summary.json"
    assert archive_key("J") == "_archive/J/manifest.json"
    assert part_key("J", "put", 1) == "_reports/J/put/part-00001.csv"
    assert part_key("J", "delete", 12) == "_reports/J/delete/part-00012.csv"


def test_failure_rows_from_failures_and_failed_outcomes_only():
    items = [
        Failure(document_id="a", error_code="MissingMetadata", error_message="no metadata"),
        Outcome(document_id="b", operation="put", status="put"),
        Outcome(document_id="c", operation="put", status="skipped"),
        Outcome(document_id="d", operation="delete", status="deleted"),
        Outcome.failed("e", "put", "InvalidRequest", "bad attribute"),
    ]
    assert failure_rows("J", items) == [
        ("J", "a", "MissingMetadata", "no metadata"), ("J", "e", "InvalidRequest", "bad attribute")]


def test_empty_failures_csv_is_the_exact_header():
    assert write_failures_csv([]) == b"jobId,documentId,errorCode,errorMessage\r\n"
    assert read_failures_csv(write_failures_csv([])) == []


def test_failures_csv_quotes_per_rfc4180():
    data = write_failures_csv([("J", 'a,"b"', "InvalidMetadata", "line1\nline2")])
    assert data == b'jobId,documentId,errorCode,errorMessage\r\nJ,"a,""b""",InvalidMetadata,"line1\nline2"\r\n'


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20) | st.sampled_from(
    [",", '"', "\n", "\r\n", "\r", "é,名", " lead", '""', ""])
rows = st.lists(st.tuples(cells, cells, cells, cells), max_size=10)


@given(rows)
def test_failures_csv_round_trip(generated):
    assert read_failures_csv(write_failures_csv(generated)) == generated


@given(st.lists(rows, max_size=4))
def test_merge_keeps_part_order_and_one_header(parts):
    merged = merge_failures_csv(write_failures_csv(part) for part in parts)
    assert read_failures_csv(merged) == [row for part in parts for row in part]
    assert merged.count(b"jobId,documentId,errorCode,errorMessage") >= 1
    assert merged.startswith(b"jobId,documentId,errorCode,errorMessage\r\n")


def test_merge_of_nothing_is_the_header():
    assert merge_failures_csv([]) == b"jobId,documentId,errorCode,errorMessage\r\n"


@pytest.mark.parametrize("data", [b"", b"id,code\r\n", b"jobId,documentId,errorCode,errorMessage\r\nJ,a,b\r\n",
                                  b"\xff"])
def test_read_rejects_other_files(data):
    with pytest.raises(ReportFormatError):
        read_failures_csv(data)


def test_lone_surrogates_do_not_break_the_report():
    assert b"\\ud800" in write_failures_csv([("J", "\ud800", "InvalidMetadata", "m")])


def test_summary_json_has_exactly_the_contract_keys():
    data = json.loads(summary().to_json())
    assert list(data) == [
        "jobId", "option", "source", "status", "documents", "deletes", "kendra", "startedAt", "finishedAt",
        "durationSeconds", "failuresKey", "manifestArchiveKey"]
    assert data["documents"] == {"requested": 30, "put": 25, "skippedUnchanged": 2, "failed": 3, "excluded": 0}
    assert data["deletes"] == {"requested": 2, "deleted": 2, "failed": 0, "fullSync": 0}
    assert data["kendra"] == {"batchPutCalls": 3, "batchDeleteCalls": 1, "statusCalls": 3, "throttled": 1}
    assert (data["startedAt"], data["finishedAt"], data["durationSeconds"]) == (
        "2025-10-05T12:00:00Z", "2025-10-05T12:00:12.500000Z", 12.5)
    assert (data["failuresKey"], data["manifestArchiveKey"]) == ("_reports/J/failures.csv", "_archive/J/manifest.json")


def test_status():
    assert summary().status == "COMPLETED_WITH_FAILURES"
    clean = summary(documents=DocumentCounts(requested=3, put=3), failure_rows=0)
    assert clean.status == "SUCCEEDED"
    failed = summary(documents=DocumentCounts(), deletes=DeleteCounts(), failure_rows=0, error="invalid manifest")
    assert failed.status == "FAILED" and json.loads(failed.to_json())["error"] == "invalid manifest"


def test_optional_blocks_and_mapping_inputs():
    built = summary(
        documents={"requested": 1, "put": 1}, deletes={}, kendra={"batchPutCalls": 1}, failure_rows=0,
        indexing={"verified": 1, "unconfirmed": 0}, manifest_archived=False,
    )
    data = json.loads(built.to_json())
    assert data["indexing"] == {"verified": 1, "unconfirmed": 0} and data["manifestArchived"] is False
    assert data["kendra"]["batchPutCalls"] == 1


@pytest.mark.parametrize(("overrides", "shown"), [
    ({"documents": DocumentCounts(requested=31, put=25, skipped_unchanged=2, failed=3)},
     "documents.requested 31 != put 25 + skippedUnchanged 2 + failed 3"),
    ({"deletes": DeleteCounts(requested=3, deleted=2, failed=0)}, "deletes.requested 3 != deleted 2 + failed 0"),
    ({"failure_rows": 4}, "failures.csv rows 4 != documents.failed 3 + deletes.failed 0"),
])
def test_conservation_violations_raise_with_the_numbers(overrides, shown):
    with pytest.raises(ConservationError, match="job J: counts do not add up: ") as caught:
        summary(**overrides)
    assert shown in str(caught.value)


def test_naive_times_are_rejected_and_negative_durations_clamped():
    with pytest.raises(ValueError, match="timezone-aware"):
        summary(started_at=datetime(2025, 1, 1))
    assert summary(finished_at=T0 - timedelta(seconds=1)).duration_seconds == 0.0


def test_notification():
    preview = [("J", f"doc-{i}", "InvalidMetadata", "bad\nthing") for i in range(12)]
    subject, body = notification(summary(), preview, reports_bucket="reports")
    assert subject == "[kendra-ingestion] J COMPLETED_WITH_FAILURES: 25 put, 2 unchanged, 2 deleted, 3 failed"
    assert "  doc-9  InvalidMetadata\n" in body and "doc-10" not in body
    assert "s3://reports/_reports/J/failures.csv" in body
    assert json.loads(body[body.index("Summary JSON:\n") + len("Summary JSON:\n"):])["jobId"] == "J"


def test_notification_quotes_no_metadata_values_or_principals():
    """ids and codes only: a failure message may quote an attribute value or an ACL principal."""
    secret = "user:alice@example.com has SSN 078-05-1120"
    preview = [("J", "doc-1", "InvalidMetadata", f"attribute _ssn: {secret}")]
    _, body = notification(summary(), preview, reports_bucket="reports")
    assert "doc-1  InvalidMetadata" in body
    assert "alice" not in body and "078-05-1120" not in body
    assert "s3://reports/_reports/J/failures.csv" in body


def test_notification_subject_is_short_ascii():
    long_id = "j" * 80
    built = summary(job_id=long_id)
    subject, body = notification(built, [])
    assert len(subject) <= 100 and subject.isascii()
    # The status always shows; the counts only when they fit (they are in the body anyway).
    assert subject.endswith("... COMPLETED_WITH_FAILURES")
    assert long_id in body


def test_notification_subject_keeps_a_realistic_job_id_whole():
    built = summary(job_id="phonebook-2025-10-05T12-00Z")
    subject, _ = notification(built, [])
    assert "phonebook-2025-10-05T12-00Z COMPLETED_WITH_FAILURES" in subject and len(subject) <= 100


def test_notification_of_a_failed_job_says_why():
    failed = summary(documents=DocumentCounts(), deletes=DeleteCounts(), failure_rows=0,
                     error="manifest field 'jobId': required")
    subject, body = notification(failed, [])
    assert subject == "[kendra-ingestion] J FAILED: 0 put, 0 failed"
    assert "Error: manifest field 'jobId': required" in body


def test_header_constant():
    assert ",".join(FAILURES_HEADER) == "jobId,documentId,errorCode,errorMessage"


def test_excluded_and_full_sync_counts_are_reported_and_excluded_is_outside_requested():
    s = summary(documents=DocumentCounts(requested=30, put=25, skipped_unchanged=2, failed=3, excluded=4),
                deletes=DeleteCounts(requested=2, deleted=2, failed=0, full_sync=1),
                message='mode "full": nothing to delete')
    data = json.loads(s.to_json())
    assert data["documents"]["excluded"] == 4 and data["deletes"]["fullSync"] == 1
    assert data["message"] == 'mode "full": nothing to delete'
    subject, body = notification(s, [])
    assert "4 excluded" in subject
    assert "4 excluded by the manifest's patterns" in body and "1 of them by the full sync" in body
    assert 'Note: mode "full": nothing to delete' in body


def test_full_sync_deletes_are_part_of_the_requested_deletes():
    with pytest.raises(ConservationError, match="fullSync 3 > requested 2"):
        summary(deletes=DeleteCounts(requested=2, deleted=2, failed=0, full_sync=3))
