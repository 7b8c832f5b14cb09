"""A job: one manifest, from the event that announced it to the state every step passes on.

The :class:`Job` travels between steps (Step Functions state, queue messages), so it stays small:
document lists and results live in S3 under ``_work/<jobId>/<runId>/`` of the reports bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict

from kendra_ingest import manifest as manifests
from kendra_ingest.models import Wire


def utcnow() -> datetime:
    return datetime.now(UTC)


class Job(Wire):
    """Who, what and where of one ingestion run."""

    job_id: str
    source: str
    bucket: str
    prefix: str
    manifest_key: str
    run_id: str
    started_at: str
    force: bool = False
    expected_documents: int | None = None
    #: The manifest's ETag from the event: later steps read and archive that version only, never a
    #: manifest uploaded to the same prefix meanwhile (the next job).
    manifest_etag: str | None = None
    #: Why the job cannot run (invalid manifest, ...). A job with an error is reported as FAILED.
    error: str | None = None

    @property
    def batches_prefix(self) -> str:
        return f"{self.prefix}/batches/" if self.prefix else "batches/"

    def work_key(self, name: str) -> str:
        """Key of an intermediate object of this run of the job in the reports bucket.

        Per run, not per job id: a re-upload of the same manifest is a new run and must not find the
        previous run's plan, part results or verification state.
        """
        return f"_work/{self.job_id}/{self.run_id}/{name}"

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ManifestEvent(BaseModel):
    """The S3 ``Object Created`` event (EventBridge shape) that announces a manifest."""

    model_config = ConfigDict(extra="ignore")

    bucket: str
    key: str
    #: Identifies this upload of the manifest: the same for every delivery of the same event,
    #: different for a later re-upload (a legitimate re-run of the same jobId).
    upload: str
    etag: str | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> ManifestEvent:
        """Accept the EventBridge event, or the S3-notification ``Records`` shape."""
        if "Records" in event:
            record = event["Records"][0]["s3"]
            obj = record["object"]
            return cls(
                bucket=record["bucket"]["name"], key=unquote_plus(obj["key"]),
                upload=str(obj.get("sequencer") or obj.get("eTag") or ""), etag=obj.get("eTag"),
            )
        detail = event["detail"]
        obj = detail["object"]
        upload = obj.get("sequencer") or obj.get("etag") or event.get("id") or ""
        return cls(bucket=detail["bucket"]["name"], key=obj["key"], upload=str(upload),
                   etag=obj.get("etag") or obj.get("eTag"))

    @property
    def run_id(self) -> str:
        digest = hashlib.sha256(f"{self.bucket}\0{self.key}\0{self.upload}".encode()).hexdigest()
        return digest[:24]


def load(event: dict[str, Any], read: Any, *, sources: Mapping[str, str] | None = None) -> Job:
    """Read and validate the manifest announced by ``event``; never raises for a bad manifest.

    ``read(bucket, key) -> bytes | None`` returns None when the object does not exist. A manifest
    that is missing, not JSON or invalid gives a Job whose ``error`` says what is wrong and whose
    id is derived from the manifest, so the failure is still reported under ``_reports/<id>/``.
    With ``sources`` (the stack's registered sources), a manifest outside its source's prefix, or
    naming an unregistered source, gives such a Job too (:mod:`kendra_ingest.tenancy`).
    """
    announced = ManifestEvent.parse(event)
    key = announced.key
    started = utcnow().isoformat()
    try:
        prefix = manifests.job_prefix(key)
    except manifests.ManifestError as exc:
        prefix, error = key.rsplit("/", 1)[0] if "/" in key else "", exc.message
        job_id = manifests.derive_job_id(key, b"")
        return Job(job_id=job_id, source=job_id, bucket=announced.bucket, prefix=prefix, manifest_key=key,
                   run_id=announced.run_id, started_at=started, error=error)
    raw = read(announced.bucket, key)
    if raw is None and unquote_plus(key) != key:
        key = unquote_plus(key)
        prefix = manifests.job_prefix(key)
        raw = read(announced.bucket, key)
    if raw is None:
        job_id = manifests.derive_job_id(key, b"")
        return Job(job_id=job_id, source=job_id, bucket=announced.bucket, prefix=prefix, manifest_key=key,
                   run_id=announced.run_id, started_at=started,
                   error=f"manifest s3://{announced.bucket}/{key} does not exist (already archived?)")
    try:
        manifest = manifests.parse_manifest(raw)
    except manifests.ManifestError as exc:
        job_id = manifests.derive_job_id(key, raw)
        return Job(job_id=job_id, source=job_id, bucket=announced.bucket, prefix=prefix, manifest_key=key,
                   run_id=announced.run_id, started_at=started, error=exc.message)
    from kendra_ingest.tenancy import check_job

    return check_job(Job(
        job_id=manifest.job_id, source=manifest.source, bucket=announced.bucket, prefix=prefix,
        manifest_key=key, run_id=announced.run_id, started_at=started, force=manifest.force,
        expected_documents=manifest.expected_documents, manifest_etag=announced.etag,
    ), sources)


def failed(event: dict[str, Any], error: str | None) -> Job:
    """A Job for an execution that broke before its manifest was loaded (the report still gets written)."""
    try:
        announced = ManifestEvent.parse(event)
    except (KeyError, IndexError, TypeError):
        announced = ManifestEvent(bucket="", key="unknown/_control/manifest.json", upload="")
    job_id = manifests.derive_job_id(announced.key, b"")
    prefix = announced.key.rsplit("/_control/", 1)[0] if "/_control/" in announced.key else ""
    return Job(job_id=job_id, source=job_id, bucket=announced.bucket, prefix=prefix,
               manifest_key=announced.key, run_id=announced.run_id, started_at=utcnow().isoformat(),
               error=error or "the job could not be loaded")
