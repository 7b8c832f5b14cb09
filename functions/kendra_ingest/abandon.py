"""Ending an execution that stopped without finishing its job (option sfn).

A Catch never runs when an execution is aborted or times out, so the "Execution Status Change" rule
(FAILED, TIMED_OUT, ABORTED) invokes this. When the run's report was not written yet, it is written
now: parts without a result become ``JobAborted`` rows, so no document is lost. Then the job's
data-source sync job is stopped, the notification sent and the source lock released.
"""

from __future__ import annotations

import json
from typing import Any

from kendra_ingest import finish, locking, store, sync
from kendra_ingest.job import Job, ManifestEvent
from kendra_ingest.lock import Lock, source_lock_key
from kendra_ingest.runtime import for_job


def end_execution(event: dict[str, Any], *, settings: Any, lock: Lock, publish: Any) -> dict[str, Any]:
    """Finish the run of the execution in ``event`` (an EventBridge status-change event) if it owns one.

    ``publish(subject, message)`` sends the notification. Returns what was done.
    """
    detail = event["detail"]
    owner, status = detail["executionArn"], detail.get("status", "FAILED")
    run_id = ManifestEvent.parse(json.loads(detail.get("input") or "{}")).run_id
    record = lock.get_job(locking.run_record(run_id))
    if record is None or record.attributes.get("owner") != owner or "job" not in record.attributes:
        # A duplicate trigger's execution (it never owned the run) or one that broke before claiming it.
        return {"reported": False, "released": False}
    job = Job.model_validate(record.attributes["job"])
    for_job(job)
    reported = False
    if store.read_json(settings.reports_bucket, finish.finished_key(job)) is None:
        sync.stop(settings, job)
        error = f"the execution ended {status} before the job finished ({owner})"
        from kendra_ingest.runtime import ledger

        report, _ = finish.finish(job, option="sfn", reports_bucket=settings.reports_bucket, error=error,
                                  ledger=ledger(settings))
        publish(report.subject, report.message)
        reported = True
    released = bool(job.source) and lock.release(source_lock_key(job.source), owner)
    return {"reported": reported, "released": released, "jobId": job.job_id}
