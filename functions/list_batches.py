"""Option sfn, step 3: list, pair and pack the job into parts in S3 (the Distributed Map's items)."""

from kendra_ingest import plan, sync
from kendra_ingest.job import Job
from kendra_ingest.runtime import lambda_handler, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("list_batches")
    job = Job.model_validate(event["job"])
    result, _ = plan.plan_job(job, s)
    # Raises SyncJobBusy while another sync job of the data source runs: the state machine retries.
    sync_job_id = sync.start(s, job) if result.parts and not result.error else None
    logger.info("planned", extra={"jobId": job.job_id, "parts": result.parts, "error": result.error})
    # syncJobId is always present (null without a data source): the Map's ItemSelector reads it.
    return {**result.model_dump(by_alias=True, exclude_none=True), "syncJobId": sync_job_id}
