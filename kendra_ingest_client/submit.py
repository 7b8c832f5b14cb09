"""Submitting a job folder: every file under the job prefix, then the manifest last; then waiting.

Example::

    job = submit(s3, stack, folder, prefix="teams/hr/2025-10-05", on_upload=lambda upload: None)
    report = wait(s3, stack, job, timeout=600, on_tick=lambda parts, elapsed: None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from kendra_ingest_client.job_folder import CONTROL, MANIFEST, JobFolder, Upload
from kendra_ingest_client.reports import Report, denied, finished_parts, read_report, summary_etag
from kendra_ingest_client.stack import IngestError, StackOutputs

#: Files uploaded at once: S3 takes many concurrent PUTs, and a job is usually many small files.
UPLOAD_THREADS = 8
#: How many stale keys an error names before "...".
SHOWN_KEYS = 3


class Interrupted(IngestError):
    """Ctrl-C during a submit; the message says whether a job was started."""


@dataclass(frozen=True, kw_only=True)
class Submitted:
    """A job whose manifest was written."""

    job_id: str
    prefix: str
    manifest_key: str
    documents: int
    files: int
    #: The summary's ETag before the manifest was written: only a different one reports this run.
    previous_summary: str | None
    #: S3's clock when it took the manifest (progress counts only what was written after it).
    since: datetime | None


def job_root(prefix: str) -> str:
    return f"{prefix}/" if prefix else ""


def check_prefix(s3: Any, stack: StackOutputs, folder: JobFolder, prefix: str) -> bool:
    """Refuse a prefix where the job would find more than the folder, or where a job is still pending.

    The pipeline takes every object under ``P``: one left from an earlier upload would make the job
    find more documents than ``expectedDocuments`` (so it FAILS), or resend a document removed locally.
    False when the caller may not list the bucket (a team's writer policy allows only s3:PutObject), so
    the prefix could not be checked.
    """
    from botocore.exceptions import ClientError

    root = job_root(prefix)
    ours = {root + upload.relative for upload in folder.uploads}
    stale: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.ingestion_bucket, Prefix=root):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key == root + MANIFEST:
                    raise IngestError(f"s3://{stack.ingestion_bucket}/{key} exists: a job there has not started "
                                      "or not finished yet; wait for it, or choose another --prefix")
                if key not in ours and not key.startswith(root + CONTROL):
                    stale.append(key)
    except ClientError as exc:
        if denied(exc):
            return False
        raise
    if stale:
        shown = ", ".join(stale[:SHOWN_KEYS]) + (", ..." if len(stale) > SHOWN_KEYS else "")
        raise IngestError(f"s3://{stack.ingestion_bucket}/{root} already holds {len(stale)} objects that "
                          f"{folder.root} does not ({shown}): the job would take them too; remove them or "
                          "choose another --prefix")
    return True


def submit(s3: Any, stack: StackOutputs, folder: JobFolder, *, prefix: str,
           on_upload: Callable[[Upload], None]) -> Submitted:
    """Upload ``folder`` under ``prefix`` and write its manifest last; nothing starts unless all went up."""
    root = job_root(prefix)
    bucket = stack.ingestion_bucket

    def put(upload: Upload) -> None:
        s3.put_object(Bucket=bucket, Key=root + upload.relative, Body=upload.path.read_bytes())
        on_upload(upload)

    done = 0
    executor = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="upload")
    try:
        futures = [executor.submit(put, upload) for upload in folder.uploads]
        pending = set(futures)
        while pending:
            # A short timeout keeps the main thread responsive to Ctrl-C.
            finished, pending = wait_for_futures(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()  # the first failed upload stops the submit before the manifest
                done += 1
    except KeyboardInterrupt:
        executor.shutdown(wait=False, cancel_futures=True)
        raise Interrupted(f"interrupted after {done} of {len(folder.uploads)} files, before the manifest was "
                          "written: no job was started (submit again to finish the upload)") from None
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    previous = _previous_summary(s3, stack, folder.job_id)
    try:
        answer = s3.put_object(Bucket=bucket, Key=root + MANIFEST, Body=folder.manifest_bytes(),
                               ContentType="application/json")
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while writing the manifest: job {folder.job_id} may have started "
                          "(see `kendra-ingest status`)") from None
    return Submitted(job_id=folder.job_id, prefix=prefix, manifest_key=root + MANIFEST, documents=folder.documents,
                     files=len(folder.uploads), previous_summary=previous, since=_server_time(answer))


def _previous_summary(s3: Any, stack: StackOutputs, job_id: str) -> str | None:
    """The summary's ETag before this run; None also when the caller may not read the reports bucket,
    which must not keep the manifest from being written (only --wait needs to read it)."""
    from botocore.exceptions import ClientError

    try:
        return summary_etag(s3, stack.reports_bucket, job_id)
    except ClientError as exc:
        if denied(exc):
            return None
        raise


def _server_time(answer: dict[str, Any]) -> datetime | None:
    """S3's own clock at the manifest upload (a second early: the Date header drops fractions)."""
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) - timedelta(seconds=1) if date else None
    except (TypeError, ValueError):
        return None


def poll_interval(elapsed: float) -> float:
    """Quick at first (the sandbox finishes in seconds), then gentler on a long job's S3 requests."""
    return 0.25 if elapsed < 10 else 1.0 if elapsed < 60 else 5.0


def wait(s3: Any, stack: StackOutputs, job: Submitted, *, timeout: float,
         on_tick: Callable[[int | None, float], None]) -> Report | None:
    """The job's report once its summary is (re)written; None after ``timeout`` seconds.

    ``on_tick(parts finished or None, seconds elapsed)`` reports progress between looks.
    """
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        etag = summary_etag(s3, stack.reports_bucket, job.job_id)
        if etag is not None and etag != job.previous_summary:
            report = read_report(s3, stack.reports_bucket, job.job_id)
            if report is not None:
                return report
        if elapsed >= timeout:
            return None
        on_tick(finished_parts(s3, stack.reports_bucket, job.job_id, job.since), elapsed)
        time.sleep(min(poll_interval(elapsed), max(0.0, timeout - elapsed)))
