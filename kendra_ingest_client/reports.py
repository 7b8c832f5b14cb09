"""A job's reports in the reports bucket: ``_reports/J/summary.json`` and ``_reports/J/failures.csv``.

Example::

    report = read_report(s3, "reports-bucket", "phonebook-1")
    report.summary["status"], report.failures_by_code()
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: summary.json's status → the process exit code (submit --wait, status).
EXIT_BY_STATUS = {"SUCCEEDED": 0, "COMPLETED_WITH_FAILURES": 1, "FAILED": 2}
#: A timeout, a usage error or an AWS error.
EXIT_ERROR = 3


def summary_key(job_id: str) -> str:
    return f"_reports/{job_id}/summary.json"


def failures_key(job_id: str) -> str:
    return f"_reports/{job_id}/failures.csv"


def _missing(error: Any) -> bool:
    # Compared by code rather than client.exceptions.NoSuchKey: HEAD answers a bare 404.
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


def denied(error: Any) -> bool:
    """The caller's role may not do this (a team's writer policy may allow only s3:PutObject)."""
    return error.response.get("Error", {}).get("Code") in {"403", "AccessDenied", "Forbidden"}


@dataclass(frozen=True, kw_only=True)
class Report:
    """A finished job's summary and failure rows (``jobId,documentId,errorCode,errorMessage``)."""

    summary: dict[str, Any]
    failures_csv: bytes

    @property
    def rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.failures_csv.decode("utf-8", "replace"))))

    def failures_by_code(self) -> list[tuple[str, int, str]]:
        """(errorCode, rows, the first document id) for each code, the most frequent first."""
        counts: Counter[str] = Counter()
        first: dict[str, str] = {}
        for row in self.rows:
            code = row.get("errorCode") or "?"
            counts[code] += 1
            first.setdefault(code, row.get("documentId") or "")
        return [(code, n, first[code]) for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    @property
    def exit_code(self) -> int:
        return EXIT_BY_STATUS.get(str(self.summary.get("status")), EXIT_ERROR)


def summary_etag(s3: Any, bucket: str, job_id: str) -> str | None:
    """The ETag of the job's summary, None when there is none (yet)."""
    from botocore.exceptions import ClientError

    try:
        return s3.head_object(Bucket=bucket, Key=summary_key(job_id))["ETag"]
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def read_report(s3: Any, bucket: str, job_id: str) -> Report | None:
    """The job's report, None when its summary does not exist."""
    from botocore.exceptions import ClientError

    try:
        summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key(job_id))["Body"].read())
    except ClientError as exc:
        if _missing(exc):
            return None
        raise
    key = summary.get("failuresKey") or failures_key(job_id)
    try:
        failures = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if not _missing(exc):
            raise
        failures = b"jobId,documentId,errorCode,errorMessage\r\n"
    return Report(summary=summary, failures_csv=failures)


def finished_parts(s3: Any, bucket: str, job_id: str, since: datetime | None) -> int | None:
    """Parts of the job whose results were written since ``since`` (S3's clock): progress only.

    Both options write one result object per finished part under ``_work/J/<runId>/results/``; that
    layout is the pipeline's own, not a contract, so a change there only makes this count 0. None when
    the caller may not list the reports bucket.
    """
    from botocore.exceptions import ClientError

    count = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"_work/{job_id}/"):
            for obj in page.get("Contents", []):
                if "/results/" in obj["Key"] and (since is None or obj["LastModified"] >= since):
                    count += 1
    except ClientError as exc:
        if denied(exc):
            return None
        raise
    return count
