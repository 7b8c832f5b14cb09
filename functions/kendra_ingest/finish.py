"""Finishing a job: account for every document, write failures.csv and summary.json, archive the
manifest, and compose the notification. Runs after success, after a failure and after a crash.

Accounting is rebuilt from what is in S3 (the plan, the parts, each part's result, the verification),
never from counters passed along, so a crashed step cannot make a document disappear: a part without
a result is reported as ``JobAborted`` for each of its documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kendra_ingest import errors, reports, store, telemetry
from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, Failure, KendraCounts, Wire
from kendra_ingest.parts import PartResult, fail, parse, result_key
from kendra_ingest.verify import unconfirmed


class Report(Wire):
    """What the finishing step hands on: where the report is and what to notify."""

    job_id: str
    status: str
    summary_key: str
    failures_key: str
    subject: str
    message: str


def finished_key(job: Job) -> str:
    """Marks a run whose report was written."""
    return job.work_key("finished.json")


def crash_message(crash: dict[str, Any] | None) -> str | None:
    """A short human reason from a Step Functions Catch result (``{"Error", "Cause"}``), or None."""
    if not crash:
        return None
    return (f"a pipeline step failed ({errors.describe(crash)}); documents it had not finished are reported "
            "JobAborted, and the Lambda logs under this jobId have the details: run the job again once it is fixed")


def finish(job: Job, *, option: str, reports_bucket: str, error: str | None = None,
           ledger: Any = None) -> tuple[Report, Any]:
    """Write the job's report from the state in S3; returns the report and the summary.

    When verification was cut short, what it had not confirmed is ``IndexingUnconfirmed`` and is
    forgotten by ``ledger`` (the documents table), so the next job sends it again.
    """
    plan = store.read_json(reports_bucket, job.work_key("plan.json")) or {}
    counts = plan.get("counts", {})
    error = job.error or plan.get("error") or error
    doc_failures = [Failure.model_validate(f) for f in plan.get("failures", ())]
    delete_failures = [Failure.model_validate(f) for f in plan.get("deleteFailures", ())]
    put = deleted = 0
    kendra = KendraCounts()

    listed = store.read_json(reports_bucket, job.work_key("parts.json")) or [] if plan else []
    parts = [parse(item) for item in listed]
    # The results are read in parallel: one small GET per part is the end of a job's critical path.
    results = store.read_json_many(
        reports_bucket, (result_key(job.job_id, job.run_id, p.action, p.part) for p in parts))
    for part, saved in zip(parts, results, strict=True):
        if saved is None:
            # The part never finished: every one of its documents is accounted for as aborted.
            result = fail(part, ErrorCode.JOB_ABORTED, "the job ended before this document was processed"
                          + (f" ({error})" if error else ""))
        else:
            result = PartResult.model_validate(saved)
            kendra = kendra + result.kendra
        for outcome in result.outcomes:
            failure = outcome.failure()
            target = doc_failures if result.operation == "put" else delete_failures
            if failure is not None:
                target.append(failure)
            elif outcome.status == "put":
                put += 1
            elif outcome.status == "deleted":
                deleted += 1

    finished_at = datetime.now(UTC)
    verify = store.read_json(reports_bucket, job.work_key("verify.json")) or {}
    indexing_failures = [Failure.model_validate(f) for f in verify.get("failures", ())]
    if verify and not verify.get("done"):
        # Verification was cut short (a crash, an abort): what it had not confirmed is not reported put.
        waited = finished_at.timestamp() - float(verify.get("started", finished_at.timestamp()))
        indexing_failures.extend(unconfirmed(i, None, waited) for i in verify.get("pending", ()))
        if ledger is not None:
            ledger.forget(verify.get("pending", ()))
    doc_failures.extend(indexing_failures)
    put -= len(indexing_failures)
    if verify:
        kendra = kendra + KendraCounts.model_validate(verify.get("kendra", {}))

    rows = reports.failure_rows(job.job_id, [*doc_failures, *delete_failures])
    failures_key = reports.failures_key(job.job_id)
    store.write(reports_bucket, failures_key, reports.write_failures_csv(rows), "text/csv")
    archived = store.move(job.bucket, job.manifest_key, reports_bucket, reports.archive_key(job.job_id),
                          if_match=job.manifest_etag)

    summary = reports.build_summary(
        job_id=job.job_id, option=option, source=job.source,
        documents={"requested": counts.get("documentsRequested", 0), "put": put,
                   "skippedUnchanged": counts.get("skippedUnchanged", 0), "failed": len(doc_failures),
                   "excluded": counts.get("documentsExcluded", 0)},
        deletes={"requested": counts.get("deletesRequested", 0), "deleted": deleted,
                 "failed": len(delete_failures), "fullSync": counts.get("fullSyncDeletes", 0)},
        kendra=kendra.model_dump(by_alias=True),
        started_at=datetime.fromisoformat(job.started_at), finished_at=finished_at,
        failure_rows=len(rows), error=error,
        indexing={"verified": verify.get("verified", 0),
                  "unconfirmed": sum(f.error_code == ErrorCode.INDEXING_UNCONFIRMED for f in indexing_failures)}
        if verify else None,
        manifest_archived=archived, message=" ".join(plan.get("notes") or ()) or None,
    )
    summary_key = reports.summary_key(job.job_id)
    store.write(reports_bucket, summary_key, summary.to_json(),
                "application/json")
    telemetry.job_finished(summary)
    # Written last: the run's report is complete (an abandoned execution need not write it again).
    store.write_json(reports_bucket, finished_key(job), {"summaryKey": summary_key, "status": summary.status})
    subject, message = reports.notification(summary, rows[:10], reports_bucket=reports_bucket)
    report = Report(job_id=job.job_id, status=summary.status, summary_key=summary_key,
                    failures_key=failures_key, subject=subject, message=message)
    return report, summary
