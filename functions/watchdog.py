"""Option sqs, every 5 minutes: summarize, abort or start jobs the event flow left behind.

Event: the EventBridge schedule event; an optional ``stuckAfterSeconds`` (target input) overrides the threshold.
"""

from kendra_ingest import fanin
from kendra_ingest.runtime import lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("watchdog")
    request = fanin.WatchRequest.model_validate(event or {})
    watched = fanin.watch(settings=s, lock=lock(s), stuck_after=request.stuck_after_seconds)
    logger.info("watchdog", extra=watched.model_dump(by_alias=True))
    return watched.model_dump(by_alias=True)
