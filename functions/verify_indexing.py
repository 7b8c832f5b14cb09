"""Option sfn: one round of BatchGetDocumentStatus over the documents still being indexed."""

from kendra_ingest.job import Job
from kendra_ingest.runtime import deadline, kendra_index, lambda_handler, ledger, settings
from kendra_ingest.verify import verify


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("verify_indexing")
    if not s.verify_indexing:
        return {"done": True}
    job = Job.model_validate(event["job"])
    state = verify(job, reports_bucket=s.reports_bucket, index=kendra_index(s), ledger=ledger(s),
                   deadline=deadline(context), timeout=s.verify_timeout_seconds)
    return {"done": state.done, "pending": len(state.pending), "verified": state.verified}
