"""Option sfn, step 1: read and validate the manifest announced by the S3 event."""

from kendra_ingest import job, store
from kendra_ingest.runtime import logger, settings


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    s = settings("load_manifest")
    loaded = job.load(event.get("event", event), store.read, sources=s.sources)
    logger.info("manifest loaded", extra={"jobId": loaded.job_id, "error": loaded.error})
    return {"job": loaded.dump(), "runId": loaded.run_id}
