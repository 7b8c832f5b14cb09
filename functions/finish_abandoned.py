"""Option sfn: the "Execution Status Change" rule (FAILED, TIMED_OUT, ABORTED) ends the job of an
execution that stopped without finishing it: report, notification, source lock."""

from kendra_ingest import aws
from kendra_ingest.abandon import end_execution
from kendra_ingest.runtime import lambda_handler, lock, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("finish_abandoned")

    def publish(subject: str, message: str) -> None:
        aws.client("sns").publish(TopicArn=s.topic_arn, Subject=subject, Message=message)

    result = end_execution(event, settings=s, lock=lock(s), publish=publish)
    logger.info("abandoned execution ended", extra=result)
    return result
