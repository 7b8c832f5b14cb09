"""Option sqs: a manifest arrived (EventBridge S3 "Object Created"): claim the run, plan, send the parts, seal."""

from kendra_ingest import fanin
from kendra_ingest.runtime import lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("producer")
    produced = fanin.produce(event, settings=s, lock=lock(s), request_id=fanin.request_id(context))
    logger.info("produced", extra=produced.model_dump(by_alias=True, exclude_none=True))
    return produced.model_dump(by_alias=True, exclude_none=True)
