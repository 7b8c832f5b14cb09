"""The two claims a job makes before it runs, and their release.

1. The *run*: one record per upload of a manifest (``job#run-<runId>``). S3 and EventBridge deliver at
   least once, so the same event can start several executions; only the first owner proceeds and the
   others end quietly. A re-upload of the same manifest is a new run (a legitimate re-run).
2. The *source* lock (``source#<source>``): jobs of one source never run concurrently; a later job
   waits. The lease covers the longest possible execution, so a lost release cannot block forever.
"""

from __future__ import annotations

from typing import Any

from kendra_ingest.job import Job
from kendra_ingest.lock import Lock, source_lock_key

#: The state machine's TimeoutSeconds: no execution can hold the source longer than this.
SOURCE_LEASE_SECONDS = 24 * 3600


def run_record(run_id: str) -> str:
    return f"run-{run_id}"


def claim(lock: Lock, job: Job, *, owner: str) -> dict[str, Any]:
    """``{"duplicate", "acquired", "heldBy"}`` for this execution (``owner``)."""
    # The run record keeps the job, so an execution that dies can still be reported (abandon.py).
    if not lock.register_job(run_record(job.run_id), job.source, {"owner": owner, "job": job.dump()}):
        record = lock.get_job(run_record(job.run_id))
        if record is None or record.attributes.get("owner") != owner:
            return {"duplicate": True, "acquired": False}
    if job.error:
        return {"duplicate": False, "acquired": False}
    got = lock.acquire(source_lock_key(job.source), owner, SOURCE_LEASE_SECONDS)
    return {"duplicate": False, "acquired": got.acquired, "heldBy": got.held_by}


def release(lock: Lock, event: dict[str, Any]) -> bool:
    """Release the source lock held by the execution; False when it holds none.

    ``event`` is the state machine's ``{"state": ..., "owner": executionArn}``. An execution that dies
    without reaching ReleaseLock is ended by :mod:`kendra_ingest.abandon` instead.
    """
    job = (event.get("state") or {}).get("job")
    source = job.get("source") if job else None
    return bool(source) and lock.release(source_lock_key(source), event["owner"])
