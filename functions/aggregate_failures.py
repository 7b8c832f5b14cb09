"""Option sfn: write failures.csv and summary.json, archive the manifest; also on the catch-all path."""

from kendra_ingest import finish, job, sync
from kendra_ingest.runtime import for_job, lambda_handler, ledger, logger, settings


@lambda_handler
def handler(event: dict, context: object) -> dict:
    s = settings("aggregate_failures")
    crash = finish.crash_message(event.get("crash"))
    the_job = job.Job.model_validate(event["job"]) if "job" in event else job.failed(event.get("event", event), crash)
    for_job(the_job)
    sync.stop(s, the_job)
    report, _ = finish.finish(the_job, option=s.option, reports_bucket=s.reports_bucket, error=crash,
                              ledger=ledger(s))
    logger.info("job finished", extra={"jobId": report.job_id, "status": report.status})
    return report.model_dump(by_alias=True)
