"""Option sqs: once every part completed (or the watchdog aborts), write the report exactly once and notify.

Event: ``{"jobId", "runId"}`` or ``{"runId", "abort": reason}``.
"""

from kendra_ingest import fanin
from kendra_ingest.runtime import deadline, lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("summarizer")
    request = fanin.SummaryRequest.model_validate(event)
    result = fanin.summarize(request, settings=s, lock=lock(s), owner=fanin.request_id(context),
                             deadline=deadline(context))
    logger.info("summarize", extra={"runId": request.run_id, "summarized": result["summarized"]})
    return result
