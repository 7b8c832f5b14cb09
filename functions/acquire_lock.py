"""Option sfn, step 2: claim this run (duplicate triggers end quietly), then the source lock."""

from kendra_ingest import locking
from kendra_ingest.job import Job
from kendra_ingest.runtime import lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    job = Job.model_validate(event["job"])
    claim = locking.claim(lock(settings("acquire_lock")), job, owner=event["owner"])
    logger.info("lock", extra={"jobId": job.job_id, **claim})
    return claim
