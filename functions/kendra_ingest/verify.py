"""Indexing verification: Kendra indexes asynchronously, so a put is only final once
``BatchGetDocumentStatus`` says INDEXED/UPDATED (or FAILED, which becomes an ``IndexingFailed`` row).

Each call checks the documents still pending and keeps its state in ``_work/<jobId>/<runId>/verify.json``,
so the caller (a Step Functions Wait loop, or a delayed queue message) can poll without carrying ids.
"""

from __future__ import annotations

import time
from typing import Any

from kendra_ingest import store
from kendra_ingest.deadline import Deadline
from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, Failure, KendraCounts, Wire

#: Give up waiting after this long; documents still processing are reported as ``pending``.
VERIFY_TIMEOUT_SECONDS = 15 * 60
FINAL_OK = frozenset({"INDEXED", "UPDATED"})
FINAL_FAILED = frozenset({"FAILED", "UPDATE_FAILED"})


class VerifyState(Wire):
    started: float
    pending: list[str]
    verified: int = 0
    failures: list[Failure] = []
    kendra: KendraCounts = KendraCounts()
    done: bool = False


def put_ids(reports_bucket: str, job: Job) -> list[str]:
    """Ids of the documents this job put, from the part results."""
    ids: list[str] = []
    for key in store.keys(reports_bucket, job.work_key("results/put-")):
        result = store.read_json(reports_bucket, key) or {}
        ids.extend(o["documentId"] for o in result.get("outcomes", ()) if o.get("status") == "put")
    return ids


def verify(job: Job, *, reports_bucket: str, index: Any, ledger: Any, deadline: Deadline,
           now: float | None = None) -> VerifyState:
    """One verification round; returns the state with ``done`` when nothing is left to wait for."""
    now = time.time() if now is None else now
    key = job.work_key("verify.json")
    saved = store.read_json(reports_bucket, key)
    state = VerifyState.model_validate(saved) if saved else VerifyState(
        started=now, pending=put_ids(reports_bucket, job))
    if state.done:
        return state
    statuses = index.status(state.pending, deadline=deadline) if state.pending else {}
    still: list[str] = []
    failures = list(state.failures)
    verified = state.verified
    for document_id in state.pending:
        status, code, reason = statuses.get(document_id, ("PROCESSING", None, None))
        if status in FINAL_OK:
            verified += 1
        elif status in FINAL_FAILED:
            message = f"Kendra could not index the document: {code or 'unknown'}: {reason or 'no reason given'}"
            failures.append(Failure(document_id=document_id, error_code=ErrorCode.INDEXING_FAILED,
                                    error_message=message))
        else:
            still.append(document_id)
    failed = [f.document_id for f in failures[len(state.failures):]]
    # A document that failed indexing must be re-sent next time, even if unchanged.
    ledger.forget(failed)
    state = state.model_copy(update={
        "pending": still, "verified": verified, "failures": failures, "kendra": state.kendra + index.counts,
        "done": not still or now - state.started > VERIFY_TIMEOUT_SECONDS,
    })
    store.write_json(reports_bucket, key, state.model_dump(by_alias=True))
    return state
