"""Option sfn, step 1: read and validate the manifest announced by the S3 event."""

from kendra_ingest import job, store
from kendra_ingest.runtime import for_job, lambda_handler, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("load_manifest")
    loaded = job.load(event.get("event", event), store.read, sources=s.sources)
    for_job(loaded)
    logger.info("manifest loaded", extra={"jobId": loaded.job_id, "error": loaded.error})
    return {"job": loaded.dump(), "runId": loaded.run_id}
