"""Option sfn, Map item: send the item's parts to Kendra (or, from the Catch, settle them)."""

from kendra_ingest.job import Job
from kendra_ingest.runtime import deadline, lambda_handler, settings
from kendra_ingest.send import send_item


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("process_batch")
    job = Job.model_validate(event["job"])
    done = send_item(job, event["parts"], settings=s, deadline=deadline(context),
                     attempt=int(event.get("attempt") or 0), sync_job_id=event.get("syncJobId"),
                     error=event.get("error"))
    return {"parts": done}
