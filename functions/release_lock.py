"""Option sfn, last step: release the source lock (finish_abandoned does it for executions that die)."""

from kendra_ingest import locking
from kendra_ingest.runtime import lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    released = locking.release(lock(settings("release_lock")), event)
    logger.info("lock released" if released else "no lock to release", extra={"event": event.get("owner")})
    return {"released": released}
