"""A job's reports: failure rows, failures.csv, summary.json, the notification.

:func:`failure_rows` is the one place where outcomes and failures become report rows; everything
else here formats rows and counts. The key helpers name where each report lives.

Example::

    rows = failure_rows("J", [*pairing_failures, *outcomes])
    csv_bytes = write_failures_csv(rows)
    summary = build_summary(job_id="J", option="sfn", source="hr", documents=DocumentCounts(...),
                            deletes=DeleteCounts(...), kendra=KendraCounts(...), started_at=t0,
                            finished_at=t1, failure_rows=len(rows))
    subject, body = notification(summary, rows[:10])
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from kendra_ingest.models import Failure, KendraCounts, Operation, Outcome, Wire

FAILURES_HEADER = ("jobId", "documentId", "errorCode", "errorMessage")
Row = tuple[str, str, str, str]

Status = Literal["SUCCEEDED", "COMPLETED_WITH_FAILURES", "FAILED"]

SUBJECT_PREFIX = "[kendra-ingestion]"
MAX_SUBJECT_LENGTH = 100  # SNS: ASCII, at most 100 characters
PREVIEW_ROWS = 10


class ReportFormatError(ValueError):
    """A failures CSV that this module did not write: wrong header or a row without four fields."""


class ConservationError(RuntimeError):
    """The counts of a job do not add up: a document or delete was lost or counted twice."""


# --- where the reports live -------------------------------------------------------------------

def failures_key(job_id: str) -> str:
    return f"_reports/{job_id}/failures.csv"


def summary_key(job_id: str) -> str:
    return f"_reports/{job_id}/summary.json"


def archive_key(job_id: str) -> str:
    """Where the job's manifest is moved to (in the reports bucket)."""
    return f"_archive/{job_id}/manifest.json"


def parts_prefix(job_id: str, operation: Operation) -> str:
    return f"_reports/{job_id}/{operation}/"


def part_key(job_id: str, operation: Operation, part_number: int) -> str:
    """``_reports/J/put/part-00001.csv``: one part report of option sqs, merged by the summarizer."""
    return f"{parts_prefix(job_id, operation)}part-{part_number:05d}.csv"


# --- failures.csv ----------------------------------------------------------------------------

def failure_rows(job_id: str, items: Iterable[Failure | Outcome]) -> list[Row]:
    """One row per failure, and per outcome whose status is ``failed``; other outcomes add nothing."""
    rows = []
    for item in items:
        failure = item.failure() if isinstance(item, Outcome) else item
        if failure is not None:
            rows.append((job_id, failure.document_id, failure.error_code, failure.error_message))
    return rows


def write_failures_csv(rows: Iterable[Row]) -> bytes:
    """RFC 4180 CSV in UTF-8 with the exact header; header only when there are no rows.

    Text that cannot be UTF-8 (a lone surrogate from a ``\\ud800`` JSON escape) is written as a
    backslash escape rather than failing the report.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(FAILURES_HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", errors="backslashreplace")


def read_failures_csv(data: bytes) -> list[Row]:
    """The rows of a failures CSV; raises :class:`ReportFormatError` if it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportFormatError(f"failures CSV is not UTF-8 (byte offset {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if tuple(header or ()) != FAILURES_HEADER:
        raise ReportFormatError(f"failures CSV header is {header!r}, expected {','.join(FAILURES_HEADER)}")
    rows = []
    for row in reader:
        if len(row) != len(FAILURES_HEADER):
            raise ReportFormatError(f"failures CSV line {reader.line_num}: {len(row)} fields, expected 4")
        rows.append((row[0], row[1], row[2], row[3]))
    return rows


def merge_failures_csv(parts: Iterable[bytes]) -> bytes:
    """One failures CSV holding every part's rows, in the order the parts are given."""
    return write_failures_csv(row for part in parts for row in read_failures_csv(part))


# --- summary.json ----------------------------------------------------------------------------

class DocumentCounts(Wire):
    """``excluded``: objects the manifest's include/exclude patterns left out; not part of ``requested``."""

    requested: int = Field(0, ge=0)
    put: int = Field(0, ge=0)
    skipped_unchanged: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    excluded: int = Field(0, ge=0)


class DeleteCounts(Wire):
    """``full_sync``: of ``requested``, the deletes a ``mode: "full"`` job found (absent documents)."""

    requested: int = Field(0, ge=0)
    deleted: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    full_sync: int = Field(0, ge=0)


class IndexingCounts(Wire):
    """After ``verifyIndexing``: documents confirmed indexed, and those Kendra had not confirmed when
    verification stopped waiting (each also an ``IndexingUnconfirmed`` failure row)."""

    verified: int = Field(0, ge=0)
    unconfirmed: int = Field(0, ge=0)


class Summary(Wire):
    """``_reports/J/summary.json``: the contract's keys exactly, plus ``error`` and ``indexing`` when set.

    ``manifestArchived: false`` appears only when the manifest was already gone from ``P/_control/``
    (a repeated run), so ``manifestArchiveKey`` holds the earlier run's copy.
    Build it with :func:`build_summary`, which checks that the counts add up.
    """

    job_id: str
    option: Literal["sfn", "sqs"]
    source: str
    status: Status
    documents: DocumentCounts
    deletes: DeleteCounts
    kendra: KendraCounts
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    failures_key: str
    manifest_archive_key: str
    error: str | None = None
    indexing: IndexingCounts | None = None
    manifest_archived: Literal[False] | None = None
    #: What the job wants its ingester to know that is neither a failure nor an error (present when set).
    message: str | None = None

    def to_json(self) -> bytes:
        """The summary.json bytes: camelCase keys, ISO-8601 times, ``error``/``indexing`` only when set."""
        return self.model_dump_json(by_alias=True, exclude_none=True, indent=2).encode()


def build_summary(
    *,
    job_id: str,
    option: Literal["sfn", "sqs"],
    source: str,
    documents: DocumentCounts | Mapping[str, int],
    deletes: DeleteCounts | Mapping[str, int],
    kendra: KendraCounts | Mapping[str, int],
    started_at: datetime,
    finished_at: datetime,
    failure_rows: int,
    error: str | None = None,
    indexing: IndexingCounts | Mapping[str, int] | None = None,
    manifest_archived: bool = True,
    message: str | None = None,
) -> Summary:
    """The job's summary; raises :class:`ConservationError` unless every document and delete is counted once.

    ``status`` is ``FAILED`` when ``error`` says why the job as a whole failed (an invalid manifest,
    ``expectedDocuments`` not met, ...), else ``COMPLETED_WITH_FAILURES`` when any document or delete
    failed, else ``SUCCEEDED``. Counts may be models or camelCase mappings. Times must be
    timezone-aware; a negative duration (clocks of different Lambdas) is reported as 0.
    """
    documents, deletes = _counts(DocumentCounts, documents), _counts(DeleteCounts, deletes)
    check_conservation(job_id, documents, deletes, failure_rows)
    if started_at.tzinfo is None or finished_at.tzinfo is None:
        raise ValueError("started_at and finished_at must be timezone-aware")
    failed = documents.failed + deletes.failed
    status: Status = "FAILED" if error else "COMPLETED_WITH_FAILURES" if failed else "SUCCEEDED"
    return Summary(
        job_id=job_id, option=option, source=source, status=status,
        documents=documents, deletes=deletes, kendra=_counts(KendraCounts, kendra),
        started_at=started_at, finished_at=finished_at,
        duration_seconds=round(max(0.0, (finished_at - started_at).total_seconds()), 3),
        failures_key=failures_key(job_id), manifest_archive_key=archive_key(job_id),
        error=error, indexing=None if indexing is None else _counts(IndexingCounts, indexing),
        manifest_archived=None if manifest_archived else False, message=message,
    )


_C = TypeVar("_C", bound=BaseModel)


def _counts(model: type[_C], value: _C | Mapping[str, Any]) -> _C:
    return value if isinstance(value, model) else model.model_validate(value)


def check_conservation(
    job_id: str, documents: DocumentCounts, deletes: DeleteCounts, failure_rows: int
) -> None:
    """Raise :class:`ConservationError` naming every equality of the summary that does not hold."""
    broken = []
    d, x = documents, deletes
    if d.requested != d.put + d.skipped_unchanged + d.failed:
        broken.append(f"documents.requested {d.requested} != put {d.put} + skippedUnchanged "
                      f"{d.skipped_unchanged} + failed {d.failed}")
    if x.requested != x.deleted + x.failed:
        broken.append(f"deletes.requested {x.requested} != deleted {x.deleted} + failed {x.failed}")
    if x.full_sync > x.requested:
        broken.append(f"deletes.fullSync {x.full_sync} > requested {x.requested}")
    if failure_rows != d.failed + x.failed:
        broken.append(f"failures.csv rows {failure_rows} != documents.failed {d.failed} "
                      f"+ deletes.failed {x.failed}")
    if broken:
        raise ConservationError(f"job {job_id}: counts do not add up: {'; '.join(broken)}")


# --- the notification ------------------------------------------------------------------------

def notification(
    summary: Summary, failures_preview: list[Row], *, reports_bucket: str | None = None
) -> tuple[str, str]:
    """The SNS subject (ASCII, at most 100 characters) and a readable body ending with the summary JSON.

    The body shows the counts, the document ids and error codes of the first ten rows of
    ``failures_preview`` and where the reports are (as ``s3://`` URIs when ``reports_bucket`` is given).
    Error messages stay in ``failures.csv``: they may quote metadata values and ACL principals, which a mail
    to a distribution list must not carry.
    """
    s, d, x, k = summary, summary.documents, summary.deletes, summary.kendra
    failed = d.failed + x.failed
    counts = [f"{d.put} put"]
    if d.skipped_unchanged:
        counts.append(f"{d.skipped_unchanged} unchanged")
    if x.requested:
        counts.append(f"{x.deleted} deleted")
    if d.excluded:
        counts.append(f"{d.excluded} excluded")
    counts.append(f"{failed} failed")
    subject = _subject(s.job_id, s.status, ", ".join(counts))

    where = f"s3://{reports_bucket}/" if reports_bucket else ""
    lines = [
        f"Job {s.job_id} finished: {s.status} (option {s.option}, source {s.source}).",
        *([f"Error: {s.error}"] if s.error else []),
        *([f"Note: {s.message}"] if s.message else []),
        "",
        f"Documents: {d.requested} requested, {d.put} put, {d.skipped_unchanged} skipped unchanged, "
        f"{d.failed} failed" + (f"; {d.excluded} excluded by the manifest's patterns" if d.excluded else ""),
        f"Deletes:   {x.requested} requested, {x.deleted} deleted, {x.failed} failed"
        + (f"; {x.full_sync} of them by the full sync" if x.full_sync else ""),
        f"Kendra:    {k.batch_put_calls} BatchPutDocument, {k.batch_delete_calls} BatchDeleteDocument, "
        f"{k.status_calls} BatchGetDocumentStatus calls; {k.throttled} throttled",
        *([f"Indexing:  {s.indexing.verified} confirmed, {s.indexing.unconfirmed} not confirmed in time"]
          if s.indexing else []),
        f"Time:      {s.started_at.isoformat()} to {s.finished_at.isoformat()} ({s.duration_seconds} s)",
    ]
    preview = failures_preview[:PREVIEW_ROWS]
    if preview:
        lines += ["", f"First {len(preview)} of {failed} failures (documentId, errorCode; the messages are in "
                  "the failures report):"]
        lines += [f"  {row[1]}  {row[2]}" for row in preview]
    lines += [
        "",
        "Reports:",
        f"  failures: {where}{s.failures_key}",
        f"  summary:  {where}{summary_key(s.job_id)}",
        f"  manifest: {where}{s.manifest_archive_key}"
        + (" (archived by an earlier run)" if s.manifest_archived is False else ""),
        "",
        "Summary JSON:",
        s.to_json().decode(),
    ]
    return subject, "\n".join(lines)


def _subject(job_id: str, status: str, counts: str) -> str:
    """Prefix, the whole job id and the status always; the counts only when they fit (SNS: 100 ASCII)."""
    head = f"{SUBJECT_PREFIX} {job_id} {status}"
    if len(head) > MAX_SUBJECT_LENGTH:  # only for job ids near their 80-character maximum
        keep = len(job_id) - (len(head) - MAX_SUBJECT_LENGTH) - 3
        head = f"{SUBJECT_PREFIX} {job_id[: max(1, keep)]}... {status}"[:MAX_SUBJECT_LENGTH]
    subject = f"{head}: {counts}"
    if len(subject) > MAX_SUBJECT_LENGTH:
        subject = head
    return subject.encode("ascii", errors="replace").decode("ascii")

