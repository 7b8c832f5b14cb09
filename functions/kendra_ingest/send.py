"""Option sfn, one Distributed Map item: send its parts to Kendra, one request per part.

An item holds up to :data:`kendra_ingest.plan.PARTS_PER_ITEM` parts (a child execution per part would
be billed more than the rest of the job). Each part's result is saved as soon as it is known, so a
retried item (``attempt`` > 0: the Task's ``$$.State.RetryCount``) skips the parts an earlier attempt
finished, and an item whose Lambda runs short of time raises :class:`PartsRemaining` for the state
machine to retry it rather than fail its last parts.

From the Map's Catch (``error`` set) the parts without a result are settled from what Kendra holds
(:func:`kendra_ingest.parts.settle_lost`): the attempts may have died after Kendra accepted a request.
"""

from __future__ import annotations

from typing import Any

from kendra_ingest import errors, parts, store, tenancy
from kendra_ingest.deadline import Deadline
from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, PutPart
from kendra_ingest.runtime import date_fields, kendra_index, ledger, lock

#: Time kept for one more part: its reads, one paced Kendra request with retries, and saving its result.
PART_RESERVE_SECONDS = 60.0


class PartsRemaining(RuntimeError):
    """The Lambda is running out of time with parts of its item unsent; the state machine retries the item."""


def send_item(job: Job, items: list[dict[str, Any]], *, settings: Any, deadline: Deadline, attempt: int = 0,
              sync_job_id: str | None = None, error: dict[str, Any] | None = None) -> int:
    """Send (or, with ``error``, settle) the parts of one Map item; returns how many were processed."""
    bucket = str(settings.reports_bucket)
    book = ledger(settings)
    # Registered sources: each part checks its documents' owners again right before sending them.
    owners = tenancy.ledger_owners(book) if settings.sources else None
    done = 0
    for n, part in enumerate(parts.parse(item) for item in items):
        # One index client per part: its call counts are the part's (they add up in the report).
        index = kendra_index(settings, sync_job_id=sync_job_id)
        if (attempt or error is not None) and store.read_json(
                bucket, parts.result_key(job.job_id, job.run_id, part.action, part.part)) is not None:
            continue  # an earlier attempt finished this part
        if error is not None:
            lost = (f"the part could not be processed ({errors.describe(error)}); the process_batch log under "
                    "this jobId has the details")
            result = parts.settle_lost(part, source=job.source, index=index, ledger=book, deadline=deadline,
                                       code=str(error.get("Error") or ErrorCode.JOB_ABORTED), lost=lost)
        else:
            if n and not deadline.allows(PART_RESERVE_SECONDS):
                raise PartsRemaining(f"{len(items) - n} part(s) of this item left for a retry")
            if isinstance(part, PutPart):
                result = parts.process_put(
                    part, source=job.source, index=index, ledger=book, deadline=deadline,
                    document_mode=settings.document_mode, date_fields=date_fields(settings), owners=owners,
                    index_full=parts.IndexFull(lock(settings), job.run_id), access=parts.access_rules(part),
                )
            else:
                result = parts.process_delete(part, index=index, ledger=book, deadline=deadline,
                                              source=job.source, owners=owners)
        parts.save(bucket, result, job.run_id, part_csv=False)
        done += 1
    return done
