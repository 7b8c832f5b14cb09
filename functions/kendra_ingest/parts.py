"""Processing one part: read its documents, build Kendra documents, send one request, record outcomes.

The same functions serve option sfn (ProcessBatch) and option sqs (the workers). A part's result is
written twice: ``_reports/<jobId>/<put|delete>/part-NNNNN.csv`` (its failure rows, the contract)
and ``_work/<jobId>/<runId>/results/<op>-NNNNN.json`` (outcomes and Kendra counts, for the summary).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kendra_ingest import layout, metadata, reports, store, tenancy
from kendra_ingest.deadline import Deadline
from kendra_ingest.models import DeletePart, Failure, KendraCounts, Operation, Outcome, PutPart, Wire

#: Documents of one part are read concurrently (at most 10 per part).
READERS = 10
#: What Kendra raises for a put into an index that holds as many documents as its capacity allows.
INDEX_FULL = "ServiceQuotaExceededException"


class IndexFull:
    """A run's record (in the lock table) that Kendra refused a put because the index is full, so later
    parts send nothing: one small read per put part instead of one refused, paced Kendra call per part
    for the rest of the job."""

    def __init__(self, lock: Any, run_id: str) -> None:
        self.lock = lock
        self.run_id = run_id

    def reason(self) -> str | None:
        """Kendra's message when an earlier part found the index full, else None."""
        return self.lock.index_full(self.run_id)

    def mark(self, message: str) -> None:
        self.lock.mark_index_full(self.run_id, message)


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
    index_full: IndexFull | None = None,
    access: Sequence[list[dict[str, Any]]] = (),
    owners: tenancy.Owners | None = None,
) -> PartResult:
    """Put one part. Every document of the part ends with exactly one outcome.

    ``access`` holds the access control file's entry lists that the documents' ``acl`` index (see
    :func:`access_rules`). With ``index_full``, a part of a run that already found the index full sends
    nothing, and the part that finds it full records it: each of their documents fails
    ``ServiceQuotaExceededException``, saying it was not sent and what to do. ``owners`` (registered
    sources): a document another source owns by now is ``ForeignDocument``, unread.
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
    for doc, built in zip(docs, _build(docs, document_mode, date_fields, read, access), strict=True):
        if isinstance(built, Failure):
            outcomes[doc.document_id] = Outcome.failed(doc.document_id, "put", built.error_code,
                                                       built.error_message)
        else:
            documents.append(built)
    full = index_full.reason() if index_full is not None and documents else None
    if full is not None:
        outcomes.update(_put_into_full_index(documents, index, deadline, full, earlier=True))
    elif documents:
        refused: list[dict] = []
        for outcome in index.put(documents, deadline=deadline):
            if outcome.error_code == INDEX_FULL:
                refused.append(next(d for d in documents if d["Id"] == outcome.document_id))
                full = outcome.error_message or ""
            else:
                outcomes[outcome.document_id] = outcome
        if refused:
            if index_full is not None:
                index_full.mark(full or "")
            outcomes.update(_put_into_full_index(refused, index, deadline, full or "", earlier=False))
    by_id = {d.document_id: d for d in part.docs}
    done = [o for o in outcomes.values() if o.status == "put"]
    ledger.record_put([
        (o.document_id, source, by_id[o.document_id].fingerprint, by_id[o.document_id].s3_key, part.job_id,
         part.relative_key(by_id[o.document_id].s3_key))
        for o in done
    ])
    ordered = [outcomes[d.document_id].model_copy(update={"fingerprint": d.fingerprint}) for d in part.docs]
    return PartResult(job_id=part.job_id, operation="put", part=part.part, outcomes=ordered,
                      kendra=index.counts.model_copy())


def _put_into_full_index(documents: list[dict], index: Any, deadline: Deadline, message: str, *,
                         earlier: bool) -> dict[str, Outcome]:
    """Outcomes of documents a full index refuses. An earlier attempt of this part may have sent some
    before it died (a redelivery, a retry): Kendra holds those, and a re-put of them adds nothing, so
    it is accepted and they are put. The others are not sent, and say so."""
    try:
        statuses = index.status([d["Id"] for d in documents], deadline=deadline)
    except Exception:
        statuses = {}
    held = [d for d in documents if statuses.get(d["Id"], ("NOT_FOUND",))[0] != "NOT_FOUND"]
    outcomes = {o.document_id: o for o in index.put(held, deadline=deadline)} if held else {}
    for document in documents:
        outcome = outcomes.get(document["Id"])
        if outcome is None or outcome.error_code == INDEX_FULL:
            outcomes[document["Id"]] = Outcome.failed(document["Id"], "put", INDEX_FULL,
                                                      _not_sent(message, earlier=earlier))
    return outcomes


def _not_sent(kendra_message: str, *, earlier: bool) -> str:
    who = "an earlier part of this job found" if earlier else "Kendra refused the put:"
    return (f"not sent: {who} the index full ({kendra_message.rstrip('.')}); the job sends nothing more. "
            "Add storage capacity to the index or delete documents, then run the job again")


def _build(docs: list[Any], document_mode: str, date_fields: frozenset[str],
           read: Callable[[str, str], bytes | None], access: Sequence[list[dict[str, Any]]] = ()
           ) -> list[dict | Failure]:
    """Kendra documents (or the failure that prevents one) for each of ``docs``, in order."""
    if not docs:
        return []

    def build(doc: Any) -> dict | Failure:
        # No meta_key: a document planned without metadata (metadataRequired false).
        if doc.metadata is not None:
            raw: bytes | None = doc.metadata.encode("utf-8")  # read once, by the planner
        else:
            raw = read(doc.s3_bucket, doc.meta_key) if doc.meta_key else b"{}"
        if raw is None:
            return Failure(document_id=doc.document_id, error_code="MissingMetadata",
                           error_message=f"metadata {doc.meta_key} was deleted before the job sent it")
        meta = metadata.parse_metadata(raw, document_id_hint=doc.document_id)
        if isinstance(meta, Failure):
            return meta
        extra: dict[str, Any] = {"date_fields": date_fields, "default_language_code": doc.language_code}
        if doc.acl is not None:
            if doc.acl >= len(access):
                # Never send a document without the entries its plan gave it: it would be public.
                return Failure(document_id=doc.document_id, error_code="JobAborted", error_message=(
                    "the job's access control file was replaced or deleted after the job was planned; "
                    "the document was not sent without its access control list"))
            extra["access_control_list"] = access[doc.acl]
        if document_mode == "s3":
            return metadata.to_document(meta, document_id=doc.document_id, key=doc.s3_key,
                                        s3_path=(doc.s3_bucket, doc.s3_key), size=doc.size, **extra)
        body = read(doc.s3_bucket, doc.s3_key)
        if body is None:
            return Failure(document_id=doc.document_id, error_code="MissingDocument",
                           error_message=f"document {doc.s3_key} was deleted before the job sent it")
        return metadata.to_document(meta, document_id=doc.document_id, key=doc.s3_key, body=body, **extra)

    with ThreadPoolExecutor(min(READERS, len(docs))) as pool:
        return list(pool.map(build, docs))


_ACCESS_CACHE: dict[tuple[str, str, str], list[list[dict[str, Any]]]] = {}
_ACCESS_LOCK = threading.Lock()
_ACCESS_CACHE_SIZE = 8


def access_rules(part: PutPart, read: Callable[[str, str], bytes | None] = store.read
                 ) -> list[list[dict[str, Any]]]:
    """The entry lists of the job's access control file, which the part's documents' ``acl`` index.

    Read from the ingestion bucket, and used only when its bytes are those the planner checked
    (``access_digest``): a file replaced or deleted since gives no entries, so the documents that need
    them fail instead of going out without their ACL. Parsed once per file version and warm Lambda.
    """
    if part.access_key is None or all(doc.acl is None for doc in part.docs):
        return []
    cache_key = (part.docs[0].s3_bucket, part.access_key, part.access_digest or "")
    with _ACCESS_LOCK:
        cached = _ACCESS_CACHE.get(cache_key)
    if cached is not None:
        return cached
    raw = read(cache_key[0], part.access_key)
    if raw is None or hashlib.sha256(raw).hexdigest() != part.access_digest:
        return []
    entries = list(layout.parse_access_control(raw, key=part.access_key).entries)
    with _ACCESS_LOCK:
        if len(_ACCESS_CACHE) >= _ACCESS_CACHE_SIZE:
            _ACCESS_CACHE.clear()
        _ACCESS_CACHE[cache_key] = entries
    return entries


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
        ledger.record_put([(d.document_id, source, d.fingerprint, d.s3_key, part.job_id,
                            part.relative_key(d.s3_key)) for d in put])
    return PartResult(job_id=part.job_id, operation=operation, part=part.part, outcomes=outcomes,
                      kendra=index.counts.model_copy())


def fail(part: PutPart | DeletePart, code: str, message: str) -> PartResult:
    """A part that could not be processed at all: every one of its documents is a failure row."""
    operation: Operation = part.action
    ids = [d.document_id for d in part.docs] if isinstance(part, PutPart) else part.document_ids
    return PartResult(job_id=part.job_id, operation=operation, part=part.part,
                      outcomes=[Outcome.failed(i, operation, code, message) for i in ids])


def save(reports_bucket: str, result: PartResult, run_id: str, *, part_csv: bool = True) -> None:
    """Write the part's result (for the summary) and, with ``part_csv`` (option sqs, whose contract
    keeps them), its failure rows as ``_reports/J/<op>/part-NNNNN.csv``. Option sfn skips the CSV: the
    report is built from the results, and a PUT per part is a fifth of the job's S3 cost."""
    if part_csv:
        rows = reports.failure_rows(result.job_id, result.outcomes)
        store.write(reports_bucket, reports.part_key(result.job_id, result.operation, result.part),
                    reports.write_failures_csv(rows), "text/csv")
    store.write_json(reports_bucket, result_key(result.job_id, run_id, result.operation, result.part),
                     result.model_dump(by_alias=True, exclude_none=True))


def parse(item: dict[str, Any]) -> PutPart | DeletePart:
    """A part from its wire shape (Map item or queue message body)."""
    return DeletePart.model_validate(item) if item.get("action") == "delete" else PutPart.model_validate(item)
