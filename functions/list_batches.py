"""Option sfn, step 3: list, pair and pack the job into parts in S3 (the Distributed Map's items)."""

from kendra_ingest import aws, listing, plan, store
from kendra_ingest.job import Job
from kendra_ingest.manifest import parse_manifest
from kendra_ingest.runtime import ledger, logger, settings


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    s = settings("list_batches")
    job = Job.model_validate(event["job"])
    manifest = parse_manifest(store.read(job.bucket, job.manifest_key) or b"")
    objects = listing.list_objects(aws.client("s3"), job.bucket, job.batches_prefix)
    made = plan.make_plan(
        job, manifest, objects, read=store.read,
        fingerprints=ledger(s).fingerprints if s.skip_unchanged else None,
        max_document_bytes=s.max_document_bytes, max_request_bytes=s.max_request_bytes,
    )
    result = plan.save(job, s.reports_bucket, *made)
    logger.info("planned", extra={"jobId": job.job_id, "parts": result.parts, "error": result.error})
    return result.model_dump(by_alias=True, exclude_none=True)
