"""The optional CUSTOM data-source sync job around a job (``kendraDataSourceId``).

Kendra shows sync history and metrics for a data source only for documents sent inside one of its
sync jobs: the job starts one after planning (when there is something to send), every put carries
its execution id, and the job's end stops it (also after a crash, or the next job would find the data
source busy). The execution id is kept in ``_work/<jobId>/sync.json`` so the end can find it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from kendra_ingest import store
from kendra_ingest.job import Job

logger = Logger(service="kendra-ingestion", child=True)


def _key(job: Job) -> str:
    return job.work_key("sync.json")


def start(settings: Any, job: Job) -> str | None:
    """Start the data source's sync job; None when no data source is configured.

    Raises :class:`kendra_ingest.kendra.SyncJobBusy` while another sync job runs (the caller retries).
    """
    if not settings.kendra_data_source_id:
        return None
    saved = store.read_json(settings.reports_bucket, _key(job))
    if saved and not saved.get("stopped"):
        return saved["executionId"]  # a retried step: the job already has its sync job
    from kendra_ingest.runtime import kendra_index

    execution_id = kendra_index(settings).start_sync_job()
    store.write_json(settings.reports_bucket, _key(job), {"executionId": execution_id})
    return execution_id


def stop(settings: Any, job: Job) -> bool:
    """Stop the job's sync job if it started one and has not stopped it yet."""
    if not settings.kendra_data_source_id:
        return False
    saved = store.read_json(settings.reports_bucket, _key(job))
    if not saved or saved.get("stopped"):
        return False
    from kendra_ingest.kendra import KendraError
    from kendra_ingest.runtime import kendra_index

    try:
        kendra_index(settings, sync_job_id=saved["executionId"]).stop_sync_job()
    except KendraError as exc:
        if exc.code != "ValidationException":
            raise
        # No sync job runs on the data source any more (stopped outside the pipeline): nothing to stop,
        # and failing here would keep the job from ever finishing.
        logger.warning("sync job already stopped", extra={"jobId": job.job_id, "error": exc.message})
    store.write_json(settings.reports_bucket, _key(job), {**saved, "stopped": True})
    return True
