"""Release the source lock: at the end of every execution, and from the EventBridge rule on
FAILED / TIMED_OUT / ABORTED executions (a Catch never runs on abort or timeout)."""

from kendra_ingest import locking
from kendra_ingest.runtime import lock, logger, settings


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    released = locking.release(lock(settings("release_lock")), event)
    logger.info("lock released" if released else "no lock to release", extra={"event": event.get("owner")})
    return {"released": released}
