"""Planning a job: list and pair its objects, resolve document ids, skip unchanged documents,
and pack the rest into parts (one Kendra request each).

Nothing is sent to Kendra here. The parts go to S3 (``_work/<jobId>/parts.json``, read by the
Distributed Map or turned into queue messages) and every document that cannot be sent is already
a failure in the plan (``_work/<jobId>/plan.json``), so the final report accounts for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import ConfigDict

from kendra_ingest import manifest as manifests
from kendra_ingest import metadata, packing, pairing, store, tenancy
from kendra_ingest.job import Job
from kendra_ingest.models import DeletePart, ErrorCode, Failure, Pair, PartDoc, PutPart, Wire
from kendra_ingest.settings import MAX_DOCUMENTS_PER_CALL

#: Kendra's per-file limit for documents it reads from S3 (documentMode s3).
S3_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
#: Metadata files are small: read this many at once (S3 GETs are latency-bound).
METADATA_READERS = 16
#: Pairs resolved per chunk: bounds memory while keeping the readers busy.
RESOLVE_CHUNK = 512
#: An empty job names at most this many of the objects it found elsewhere under its prefix.
ELSEWHERE_EXAMPLES = 3


class PlanCounts(Wire):
    """What the plan decided; the part results and the verification add the rest."""

    model_config = ConfigDict(frozen=False)

    documents_found: int = 0
    documents_requested: int = 0
    skipped_unchanged: int = 0
    deletes_requested: int = 0
    put_parts: int = 0
    delete_parts: int = 0


class Plan(Wire):
    """The small result handed to the next step; details live in S3."""

    parts: int
    items_key: str
    counts: PlanCounts
    error: str | None = None


@dataclass
class Planner:
    """Turns a job's objects into parts and failures. I/O is injected so the logic is testable.

    ``read(bucket, key) -> bytes | None`` reads metadata; ``unchanged({id: fingerprint}) -> {ids}``
    is the ledger lookup (None disables skipping).
    """

    job: Job
    read: Callable[[str, str], bytes | None]
    unchanged: Callable[[dict[str, str]], set[str]] | None
    max_document_bytes: int
    max_request_bytes: int
    failures: list[Failure] = field(default_factory=list)
    counts: PlanCounts = field(default_factory=PlanCounts)

    def fail(self, document_id: str, code: str, message: str) -> None:
        self.failures.append(Failure(document_id=document_id, error_code=code, error_message=message))

    # -- documents -------------------------------------------------------------------------------
    def _resolve(self, pairs: list[Pair], pool: ThreadPoolExecutor) -> Iterator[tuple[Pair, str]]:
        """(pair, document id) for pairs whose metadata parses; failures for the others."""
        prefix = self.job.batches_prefix
        raws = pool.map(lambda p: self.read(self.job.bucket, p.metadata.key), pairs)
        for pair, raw in zip(pairs, raws, strict=True):
            hint = pairing.default_document_id(pair.document.key, prefix)
            if raw is None:
                self.fail(hint, ErrorCode.MISSING_METADATA, f"metadata {pair.metadata.key} vanished during listing")
                continue
            meta = metadata.parse_metadata(raw, document_id_hint=hint)
            if isinstance(meta, Failure):
                self.failures.append(meta)
                continue
            document_id = metadata.resolve_document_id(meta, pair.document.key, prefix)
            if not 1 <= len(document_id) <= metadata.MAX_DOCUMENT_ID_LENGTH:
                self.fail(hint, ErrorCode.INVALID_METADATA,
                          f"DocumentId: must be 1-{metadata.MAX_DOCUMENT_ID_LENGTH} characters "
                          f"(got {len(document_id)})")
                continue
            yield pair, document_id

    def documents(self, objects: Iterable) -> Iterator[PartDoc]:
        """Pair, resolve and de-duplicate; yields the documents that should be put."""
        claims = pairing.DocumentIdClaims()
        paired = pairing.pair_objects(objects, self.job.batches_prefix)

        def pairs_only() -> Iterator[Pair]:
            for item in paired:
                # Every pairing output is a requested document (a lone metadata file too: its
                # document is missing), but only document objects count as "found".
                self.counts.documents_requested += 1
                if isinstance(item, Failure):
                    if item.error_code == ErrorCode.MISSING_METADATA:
                        self.counts.documents_found += 1
                    self.failures.append(item)
                else:
                    self.counts.documents_found += 1
                    yield item

        stream = pairs_only()
        with ThreadPoolExecutor(METADATA_READERS) as pool:
            while chunk := list(islice(stream, RESOLVE_CHUNK)):
                for pair, document_id in self._resolve(chunk, pool):
                    duplicate = claims.claim(document_id, pair.document.key)
                    if duplicate is not None:
                        self.failures.append(duplicate)
                        continue
                    yield PartDoc(
                        document_id=document_id, s3_bucket=self.job.bucket, s3_key=pair.document.key,
                        meta_key=pair.metadata.key, size=pair.document.size, fingerprint=pair.fingerprint,
                    )

    def skip_unchanged(self, docs: list[PartDoc]) -> list[PartDoc]:
        if self.unchanged is None or self.job.force or not docs:
            return docs
        skip = self.unchanged({d.document_id: d.fingerprint for d in docs})
        changed = [d for d in docs if d.document_id not in skip]
        self.counts.skipped_unchanged += len(docs) - len(changed)
        return changed

    def put_parts(self, docs: list[PartDoc]) -> list[PutPart]:
        parts: list[PutPart] = []
        packed = packing.pack(
            docs, size=lambda d: d.size, max_docs=MAX_DOCUMENTS_PER_CALL,
            max_document_bytes=self.max_document_bytes, max_request_bytes=self.max_request_bytes,
        )
        for item in packed:
            if isinstance(item, packing.TooLarge):
                doc = item.item
                self.fail(doc.document_id, ErrorCode.DOCUMENT_TOO_LARGE, item.reason)
                continue
            parts.append(PutPart(job_id=self.job.job_id, part=len(parts) + 1, docs=item))
        return parts

    def delete_parts(self, ids: list[str], first: int) -> list[DeletePart]:
        return [
            DeletePart(job_id=self.job.job_id, part=first + n, document_ids=ids[i : i + MAX_DOCUMENTS_PER_CALL])
            for n, i in enumerate(range(0, len(ids), MAX_DOCUMENTS_PER_CALL))
        ]


def make_plan(
    job: Job,
    manifest: manifests.Manifest,
    objects: Iterable,
    *,
    read: Callable[[str, str], bytes | None],
    unchanged: Callable[[dict[str, str]], set[str]] | None,
    max_document_bytes: int,
    max_request_bytes: int,
    elsewhere: Callable[[], list[str]] = list,
    owners: tenancy.Owners | None = None,
) -> tuple[list[PutPart | DeletePart], list[Failure], list[Failure], PlanCounts, str | None]:
    """The pure core of planning: parts, document failures, delete failures, counts, job error.

    ``elsewhere()`` lists a few keys under the job's prefix but outside its documents, to explain a
    job that found nothing. ``owners`` (registered sources only) looks up who owns documents: another
    source's fail ForeignDocument.
    """
    planner = Planner(job, read, unchanged, max_document_bytes, max_request_bytes)
    deletes = list(manifest.deletes)
    key = manifests.deletes_object_key(job.prefix, manifest)
    if key is not None:
        body = read(job.bucket, key)
        if body is None:
            return [], [], [], planner.counts, f"deletesKey {key} does not exist"
        deletes = manifests.unique([*deletes, *manifests.read_deletes(body)])
    planner.counts.deletes_requested = len(deletes)

    docs = list(planner.documents(objects))
    if job.expected_documents is not None and planner.counts.documents_found != job.expected_documents:
        error = (
            f"expectedDocuments is {job.expected_documents} but {planner.counts.documents_found} documents "
            "were found; nothing was sent to Kendra (was the manifest written before the last upload?)"
        )
        # The job fails as a whole: nothing was requested of Kendra, so nothing is counted as failed.
        planner.counts.documents_requested = planner.counts.deletes_requested = 0
        return [], [], [], planner.counts, error

    if planner.counts.documents_requested == 0 and not deletes:
        return [], [], [], planner.counts, empty_job_error(job, elsewhere())

    conflicts = pairing.DeleteConflicts(deletes)
    kept = []
    for doc in docs:
        failure = conflicts.check_put(doc.document_id)
        if failure is None:
            kept.append(doc)
        else:
            planner.failures.append(failure)
    delete_failures = conflicts.delete_failures()
    docs = kept
    deletes = [i for i in deletes if i not in conflicts.conflicting]

    if owners is not None:
        docs, deletes, foreign_puts, foreign_deletes = tenancy.screen(docs, deletes, owners, source=job.source)
        planner.failures.extend(foreign_puts)
        delete_failures = [*delete_failures, *foreign_deletes]
    docs = planner.skip_unchanged(docs)
    put = planner.put_parts(docs)
    delete = planner.delete_parts(deletes, len(put) + 1)
    planner.counts.put_parts, planner.counts.delete_parts = len(put), len(delete)
    return [*put, *delete], planner.failures, delete_failures, planner.counts, None


def empty_job_error(job: Job, elsewhere: list[str]) -> str:
    """Why a job with no documents and no deletes fails: where it looked and what it saw instead."""
    looked = f"s3://{job.bucket}/{job.batches_prefix}"
    if not elsewhere:
        return (f"the job has nothing to do: no documents under {looked} and no deletes; "
                "upload the documents before the manifest")
    shown = ", ".join(elsewhere[:ELSEWHERE_EXAMPLES])
    more = " and more" if len(elsewhere) > ELSEWHERE_EXAMPLES else ""
    return (f"the job has nothing to do: no documents under {looked} and no deletes, but objects elsewhere "
            f"under the job's prefix ({shown}{more}); documents belong under {job.batches_prefix}")


def plan_job(job: Job, settings: Any) -> tuple[Plan, list[PutPart | DeletePart]]:
    """List, pair and pack ``job`` with the handler's ``settings`` and save the plan; also returns the parts.

    The one planning step of both options (sfn ListBatches, the sqs producer).
    """
    from kendra_ingest import aws, listing
    from kendra_ingest.runtime import ledger

    try:
        # The version LoadManifest validated: a job waiting for its source may see the next manifest
        # uploaded to the same prefix meanwhile, which is the next job's, not this one's.
        raw = store.read(job.bucket, job.manifest_key, if_match=job.manifest_etag)
    except store.Replaced as exc:
        return save(job, settings.reports_bucket, [], [], [], PlanCounts(), f"{exc}; the job was not run"), []
    if raw is None:
        error = f"manifest s3://{job.bucket}/{job.manifest_key} disappeared before the job ran"
        return save(job, settings.reports_bucket, [], [], [], PlanCounts(), error), []
    manifest = manifests.parse_manifest(raw)
    objects = listing.list_objects(aws.client("s3"), job.bucket, job.batches_prefix)
    unchanged = owners = None
    book = ledger(settings)
    # With registered sources every put and delete is checked against its owner first; the entries read
    # for that also answer the unchanged lookup (one read per document).
    known: dict[str, Any] | None = {} if settings.sources else None
    if known is not None:

        def owners(ids: list[str]) -> dict[str, str | None]:
            known.update(book.entries(ids))
            return tenancy.owned(known, ids)

    if settings.skip_unchanged:

        def unchanged(candidates: dict[str, str]) -> set[str]:
            # Unchanged only within the same source: a document moving to this source is re-sent, so
            # the per-source inventory follows it.
            return book.unchanged(candidates, source=job.source, known=known)

    if settings.document_mode == "s3":
        # Kendra reads S3Path documents itself: no request-size bound, only its per-file limit.
        max_document, max_request = S3_MAX_DOCUMENT_BYTES, S3_MAX_DOCUMENT_BYTES * MAX_DOCUMENTS_PER_CALL
    else:
        max_document, max_request = settings.max_document_bytes, settings.max_request_bytes
    def elsewhere() -> list[str]:
        # One listing page at most: enough to show what the team uploaded instead.
        found = listing.list_objects(aws.client("s3"), job.bucket, f"{job.prefix}/" if job.prefix else "",
                                     page_size=100)
        control = f"{job.prefix}/_control/" if job.prefix else "_control/"
        return list(islice((o.key for o in found if not o.key.startswith(control)), ELSEWHERE_EXAMPLES + 1))

    made = make_plan(job, manifest, objects, read=store.read, unchanged=unchanged,
                     max_document_bytes=max_document, max_request_bytes=max_request, elsewhere=elsewhere,
                     owners=owners)
    return save(job, settings.reports_bucket, *made), made[0]


def load_parts(reports_bucket: str, job: Job) -> list[PutPart | DeletePart] | None:
    """The parts a saved plan of ``job`` holds (None when none was saved)."""
    from kendra_ingest.parts import parse

    items = store.read_json(reports_bucket, job.work_key("parts.json"))
    return None if items is None else [parse(item) for item in items]


def save(job: Job, reports_bucket: str, parts: list, failures: list[Failure],
         delete_failures: list[Failure], counts: PlanCounts, error: str | None) -> Plan:
    """Write the parts and the plan to S3 and return the small :class:`Plan`."""
    items_key = job.work_key("parts.json")
    store.write_json(reports_bucket, items_key, [p.model_dump(by_alias=True) for p in parts])
    store.write_json(reports_bucket, job.work_key("plan.json"), {
        "counts": counts.model_dump(by_alias=True),
        "failures": [f.model_dump(by_alias=True) for f in failures],
        "deleteFailures": [f.model_dump(by_alias=True) for f in delete_failures],
        "error": error,
    })
    return Plan(parts=len(parts), items_key=items_key, counts=counts, error=error)
