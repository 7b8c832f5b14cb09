"""Option sqs: a batch of put parts from the put FIFO queue (partial batch response)."""

from kendra_ingest import fanin
from kendra_ingest.runtime import lambda_handler


@lambda_handler
def handler(event: dict, context: object) -> dict:
    return fanin.handle_batch(event, context, handler="put_worker", operation="put")
