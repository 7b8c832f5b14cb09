"""Option sqs: messages of either dead-letter queue; each lost part becomes DeadLettered rows and completes."""

from kendra_ingest import fanin
from kendra_ingest.runtime import lambda_handler


@lambda_handler
def handler(event: dict, context: object) -> dict:
    return fanin.handle_batch(event, context, handler="dead_letter", operation=None)
