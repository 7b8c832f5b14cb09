"""Option sfn, last step: release the source lock (finish_abandoned does it for executions that die)."""

from kendra_ingest import locking
from kendra_ingest.runtime import lock, logger, settings


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    released = locking.release(lock(settings("release_lock")), event)
    logger.info("lock released" if released else "no lock to release", extra={"event": event.get("owner")})
    return {"released": released}
