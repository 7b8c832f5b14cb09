"""Indexing verification: Kendra indexes asynchronously, so a put is only final once
``BatchGetDocumentStatus`` says INDEXED/UPDATED (or FAILED, which becomes an ``IndexingFailed`` row).

Each call checks the documents still pending and keeps its state in ``_work/<jobId>/<runId>/verify.json``,
so the caller (a Step Functions Wait loop, or the sqs summarizer's polling loop) can poll without carrying
ids. When the verification window (``verifyTimeoutSeconds``) has passed, or the caller has no time left
to poll again, the documents Kendra has still not confirmed become ``IndexingUnconfirmed`` failures and
are forgotten by the ledger: the next job sends them again instead of skipping them as unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from kendra_ingest import store
from kendra_ingest.deadline import Deadline
from kendra_ingest.job import Job
from kendra_ingest.models import ErrorCode, Failure, KendraCounts, Wire

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
    for result in store.read_json_many(reports_bucket, store.keys(reports_bucket, job.work_key("results/put-"))):
        ids.extend(o["documentId"] for o in (result or {}).get("outcomes", ()) if o.get("status") == "put")
    return ids


def unconfirmed(document_id: str, status: str | None, waited: float) -> Failure:
    """The failure of a document Kendra had not confirmed when verification stopped waiting."""
    if status is None:
        seen = "had not confirmed it"
    elif status == "NOT_FOUND":
        seen = "did not know it yet"
    else:
        seen = f"still reported it {status}"
    return Failure(
        document_id=document_id, error_code=ErrorCode.INDEXING_UNCONFIRMED,
        error_message=f"Kendra accepted the document but {seen} after {waited:.0f} s of verification; "
                      "it may still be indexed, and the next job sends it again (raise verifyTimeoutSeconds "
                      "if indexing is routinely slower)",
    )


def verify(job: Job, *, reports_bucket: str, index: Any, ledger: Any, deadline: Deadline,
           timeout: float, now: float | None = None, last: bool = False) -> VerifyState:
    """One verification round; returns the state with ``done`` when nothing is left to wait for.

    After ``timeout`` seconds since the first round, or when the caller says this is its ``last``
    round, documents not yet confirmed become ``IndexingUnconfirmed``.
    """
    now = time.time() if now is None else now
    key = job.work_key("verify.json")
    saved = store.read_json(reports_bucket, key)
    state = VerifyState.model_validate(saved) if saved else VerifyState(
        started=now, pending=put_ids(reports_bucket, job))
    if state.done:
        return state
    statuses = index.status(state.pending, deadline=deadline) if state.pending else {}
    still: list[tuple[str, str | None]] = []
    failures = list(state.failures)
    verified = state.verified
    for document_id in state.pending:
        # Absent: Kendra did not answer for it this round (retries ran out); ask again.
        status, code, reason = statuses.get(document_id, (None, None, None))
        if status in FINAL_OK:
            verified += 1
        elif status in FINAL_FAILED:
            message = f"Kendra could not index the document: {code or 'unknown'}: {reason or 'no reason given'}"
            failures.append(Failure(document_id=document_id, error_code=ErrorCode.INDEXING_FAILED,
                                    error_message=message))
        else:
            still.append((document_id, status))
    waited = now - state.started
    if still and (last or waited > timeout):
        failures.extend(unconfirmed(document_id, status, waited) for document_id, status in still)
        still = []
    failed = [f.document_id for f in failures[len(state.failures):]]
    # A document that failed (or was never confirmed) must be re-sent next time, even if unchanged.
    ledger.forget(failed)
    state = state.model_copy(update={
        "pending": [document_id for document_id, _ in still], "verified": verified, "failures": failures,
        "kendra": state.kendra + index.counts, "done": not still,
    })
    store.write_json(reports_bucket, key, state.model_dump(by_alias=True))
    return state
