"""Option sfn, Map item: send one part to Kendra (or, from the Catch, report it as failed)."""

from kendra_ingest import errors, parts, tenancy
from kendra_ingest.job import Job
from kendra_ingest.models import PutPart
from kendra_ingest.runtime import date_fields, deadline, kendra_index, lambda_handler, ledger, lock, settings


@lambda_handler
def handler(event: dict, context: object) -> None:
    s = settings("process_batch")
    job = Job.model_validate(event["job"])
    part = parts.parse(event["part"])
    if "error" in event:  # the Map's Catch: the part failed in a way its own retries could not fix
        error = event["error"] or {}
        result = parts.fail(part, str(error.get("Error") or "States.TaskFailed"), (
            f"the part could not be processed ({errors.describe(error)}); the process_batch log under this "
            "jobId has the details: run the job again"))
    else:
        book = ledger(s)
        # Registered sources: each part checks its documents' owners again right before sending them.
        owners = tenancy.ledger_owners(book) if s.sources else None
        index = kendra_index(s, sync_job_id=event.get("syncJobId"))
        if isinstance(part, PutPart):
            result = parts.process_put(
                part, source=job.source, index=index, ledger=book, deadline=deadline(context),
                document_mode=s.document_mode, date_fields=date_fields(s), owners=owners,
                index_full=parts.IndexFull(lock(s), job.run_id), access=parts.access_rules(part),
            )
        else:
            result = parts.process_delete(part, index=index, ledger=book, deadline=deadline(context),
                                          source=job.source, owners=owners)
    parts.save(s.reports_bucket, result, job.run_id)
