"""Processing one part: read its documents, build Kendra documents, send one request, record outcomes.

The same functions serve option sfn (ProcessBatch) and option sqs (the workers). A part's result is
written twice: ``_reports/<jobId>/<put|delete>/part-NNNNN.csv`` (its failure rows, the contract)
and ``_work/<jobId>/<runId>/results/<op>-NNNNN.json`` (outcomes and Kendra counts, for the summary).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kendra_ingest import metadata, reports, store, tenancy
from kendra_ingest.deadline import Deadline
from kendra_ingest.models import DeletePart, Failure, KendraCounts, Operation, Outcome, PutPart, Wire

#: Documents of one part are read concurrently (at most 10 per part).
READERS = 10


class PartResult(Wire):
    """Every document of a part with its outcome, plus the Kendra calls it took."""

    job_id: str
    operation: Operation
    part: int
    outcomes: list[Outcome]
    kendra: KendraCounts = KendraCounts()


def result_key(job_id: str, run_id: str, operation: Operation, part: int) -> str:
    """Where a part's result of one run of a job is kept (see :meth:`kendra_ingest.job.Job.work_key`)."""
    return f"_work/{job_id}/{run_id}/results/{operation}-{part:05d}.json"


def process_put(
    part: PutPart,
    *,
    source: str,
    index: Any,
    ledger: Any,
    deadline: Deadline,
    document_mode: str,
    date_fields: frozenset[str],
    read: Callable[[str, str], bytes | None] = store.read,
    owners: tenancy.Owners | None = None,
) -> PartResult:
    """Put one part. Every document of the part ends with exactly one outcome.

    ``owners`` (registered sources): a document another source owns by now is ``ForeignDocument``, unread.
    """
    outcomes: dict[str, Outcome] = {}
    documents: list[dict] = []
    docs = part.docs
    if owners is not None:
        foreign = tenancy.foreign_owners([d.document_id for d in docs], owners, source=source)
        for document_id, owner in foreign.items():
            failure = tenancy.foreign_failure(document_id, owner, source, "put")
            outcomes[document_id] = Outcome.failed(document_id, "put", failure.error_code, failure.error_message)
        docs = [d for d in docs if d.document_id not in foreign]
    for doc, built in zip(docs, _build(docs, document_mode, date_fields, read), strict=True):
        if isinstance(built, Failure):
            outcomes[doc.document_id] = Outcome.failed(doc.document_id, "put", built.error_code,
                                                       built.error_message)
        else:
            documents.append(built)
    if documents:
        for outcome in index.put(documents, deadline=deadline):
            outcomes[outcome.document_id] = outcome
    by_id = {d.document_id: d for d in part.docs}
    done = [o for o in outcomes.values() if o.status == "put"]
    ledger.record_put([
        (o.document_id, source, by_id[o.document_id].fingerprint, by_id[o.document_id].s3_key, part.job_id)
        for o in done
    ])
    ordered = [outcomes[d.document_id].model_copy(update={"fingerprint": d.fingerprint}) for d in part.docs]
    return PartResult(job_id=part.job_id, operation="put", part=part.part, outcomes=ordered,
                      kendra=index.counts.model_copy())


def _build(docs: list[Any], document_mode: str, date_fields: frozenset[str],
           read: Callable[[str, str], bytes | None]) -> list[dict | Failure]:
    """Kendra documents (or the failure that prevents one) for each of ``docs``, in order."""
    if not docs:
        return []

    def build(doc: Any) -> dict | Failure:
        raw = read(doc.s3_bucket, doc.meta_key)
        if raw is None:
            return Failure(document_id=doc.document_id, error_code="MissingMetadata",
                           error_message=f"metadata {doc.meta_key} was deleted before the job sent it")
        meta = metadata.parse_metadata(raw, document_id_hint=doc.document_id)
        if isinstance(meta, Failure):
            return meta
        if document_mode == "s3":
            return metadata.to_document(meta, document_id=doc.document_id, key=doc.s3_key,
                                        s3_path=(doc.s3_bucket, doc.s3_key), size=doc.size, date_fields=date_fields)
        body = read(doc.s3_bucket, doc.s3_key)
        if body is None:
            return Failure(document_id=doc.document_id, error_code="MissingDocument",
                           error_message=f"document {doc.s3_key} was deleted before the job sent it")
        return metadata.to_document(meta, document_id=doc.document_id, key=doc.s3_key, body=body,
                                    date_fields=date_fields)

    with ThreadPoolExecutor(min(READERS, len(docs))) as pool:
        return list(pool.map(build, docs))


def process_delete(
    part: DeletePart, *, index: Any, ledger: Any, deadline: Deadline,
    source: str | None = None, owners: tenancy.Owners | None = None,
) -> PartResult:
    """Delete one part's ids; an id Kendra does not have counts as deleted.

    ``owners`` with ``source`` (registered sources): an id another source owns by now is ``ForeignDocument``.
    """
    ids, refused = list(part.document_ids), {}
    if owners is not None and source is not None:
        foreign = tenancy.foreign_owners(ids, owners, source=source)
        refused = {i: tenancy.foreign_failure(i, owner, source, "delete") for i, owner in foreign.items()}
        ids = [i for i in ids if i not in refused]
    sent = {o.document_id: o for o in (index.delete(ids, deadline=deadline) if ids else [])}
    ledger.record_delete([i for i, o in sent.items() if o.status == "deleted"])
    outcomes = [
        sent[i] if i in sent else Outcome.failed(i, "delete", refused[i].error_code, refused[i].error_message)
        for i in part.document_ids
    ]
    return PartResult(job_id=part.job_id, operation="delete", part=part.part, outcomes=outcomes,
                      kendra=index.counts.model_copy())


def settle_lost(part: PutPart | DeletePart, *, source: str, index: Any, ledger: Any, deadline: Deadline,
                code: str, lost: str) -> PartResult:
    """The outcomes of a part whose processing kept failing, from what Kendra holds now.

    Its worker may have died after Kendra accepted its call but before recording it, so the documents
    are not simply failures: ``BatchGetDocumentStatus`` tells, per document,

    - put part: a document Kendra holds that the ledger does not know was new, so only this part can
      have sent it: it is put (and recorded; verification then confirms its indexing). A document
      Kendra does not have was not sent: ``code``. A document the ledger knows is ambiguous (Kendra may
      hold an earlier job's version): ``code``, saying so.
    - delete part: an id Kendra does not have is deleted (deletes are idempotent); any other is ``code``.

    ``lost`` says why the part is being settled (it starts every failure message).
    """
    operation: Operation = part.action
    ids = [d.document_id for d in part.docs] if isinstance(part, PutPart) else part.document_ids
    statuses = index.status(ids, deadline=deadline)
    outcomes: list[Outcome] = []
    if isinstance(part, DeletePart):
        for document_id in ids:
            status = statuses.get(document_id, (None,))[0]
            if status == "NOT_FOUND":
                outcomes.append(Outcome(document_id=document_id, operation="delete", status="deleted"))
            else:
                outcomes.append(Outcome.failed(document_id, "delete", code, f"{lost}; Kendra still holds the "
                                               "document (or did not answer): run the job again to delete it"))
        ledger.record_delete([o.document_id for o in outcomes if o.status == "deleted"])
    else:
        known = ledger.entries(ids)
        put: list[Any] = []
        for doc in part.docs:
            status = statuses.get(doc.document_id, (None,))[0]
            if status == "NOT_FOUND" or status is None:
                seen = "Kendra does not have it" if status else "Kendra did not answer for it"
                outcomes.append(Outcome.failed(doc.document_id, "put", code,
                                               f"{lost}; {seen}: run the job again to send it"))
            elif doc.document_id in known:
                outcomes.append(Outcome.failed(doc.document_id, "put", code, (
                    f"{lost}; Kendra holds a document with this id ({status}) but it may be an earlier "
                    "version: run the job again with force to be sure")))
            else:
                put.append(doc)
                outcomes.append(Outcome(document_id=doc.document_id, operation="put", status="put",
                                        fingerprint=doc.fingerprint))
        ledger.record_put([(d.document_id, source, d.fingerprint, d.s3_key, part.job_id) for d in put])
    return PartResult(job_id=part.job_id, operation=operation, part=part.part, outcomes=outcomes,
                      kendra=index.counts.model_copy())


def fail(part: PutPart | DeletePart, code: str, message: str) -> PartResult:
    """A part that could not be processed at all: every one of its documents is a failure row."""
    operation: Operation = part.action
    ids = [d.document_id for d in part.docs] if isinstance(part, PutPart) else part.document_ids
    return PartResult(job_id=part.job_id, operation=operation, part=part.part,
                      outcomes=[Outcome.failed(i, operation, code, message) for i in ids])


def save(reports_bucket: str, result: PartResult, run_id: str) -> None:
    """Write the part's failure rows (contract CSV) and its result (for the summary)."""
    rows = reports.failure_rows(result.job_id, result.outcomes)
    store.write(reports_bucket, reports.part_key(result.job_id, result.operation, result.part),
                reports.write_failures_csv(rows), "text/csv")
    store.write_json(reports_bucket, result_key(result.job_id, run_id, result.operation, result.part),
                     result.model_dump(by_alias=True, exclude_none=True))


def parse(item: dict[str, Any]) -> PutPart | DeletePart:
    """A part from its wire shape (Map item or queue message body)."""
    return DeletePart.model_validate(item) if item.get("action") == "delete" else PutPart.model_validate(item)
