"""Option sqs: a batch of delete parts from the delete FIFO queue (partial batch response)."""

from kendra_ingest import fanin
from kendra_ingest.runtime import lambda_handler


@lambda_handler
def handler(event: dict, context: object) -> dict:
    return fanin.handle_batch(event, context, handler="del_worker", operation="delete")
