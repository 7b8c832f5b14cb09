"""Planning a job: list and pair its objects, resolve document ids, skip unchanged documents,
and pack the rest into parts (one Kendra request each).

Nothing is sent to Kendra here. The parts go to S3 (``_work/<jobId>/parts.json``, read by the
Distributed Map or turned into queue messages) and every document that cannot be sent is already
a failure in the plan (``_work/<jobId>/plan.json``), so the final report accounts for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import ConfigDict

from kendra_ingest import manifest as manifests
from kendra_ingest import metadata, packing, pairing, store, tenancy
from kendra_ingest.job import Job
from kendra_ingest.layout import AccessControl, AccessControlError, Layout, parse_access_control
from kendra_ingest.models import DeletePart, ErrorCode, Failure, Pair, PartDoc, PutPart, Wire
from kendra_ingest.settings import MAX_DOCUMENTS_PER_CALL

#: Kendra's per-file limit for documents it reads from S3 (documentMode s3).
S3_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
#: Metadata files are small: read this many at once (S3 GETs are latency-bound).
METADATA_READERS = 16
#: Pairs resolved per chunk: bounds memory while keeping the readers busy.
RESOLVE_CHUNK = 512
#: Metadata files up to this size travel in the part (the sender does not read them again); a part of
#: 10 such documents stays far below SQS's 256 KiB message limit.
EMBED_METADATA_BYTES = 8 * 1024
#: Parts per Distributed Map item (option sfn): a child execution sends this many Kendra requests.
PARTS_PER_ITEM = 10
#: An empty job names at most this many of the objects it found elsewhere under its prefix.
ELSEWHERE_EXAMPLES = 3


class PlanCounts(Wire):
    """What the plan decided; the part results and the verification add the rest."""

    model_config = ConfigDict(frozen=False)

    documents_found: int = 0
    documents_requested: int = 0
    skipped_unchanged: int = 0
    #: Document objects the manifest's include/exclude patterns left out (neither sent nor failed).
    documents_excluded: int = 0
    deletes_requested: int = 0
    #: Of ``deletes_requested``: the source's documents a ``mode: "full"`` job found absent.
    full_sync_deletes: int = 0
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
    is the ledger lookup (None disables skipping). ``layout`` says where documents and metadata are
    (default: ``P/batches/``, metadata beside each document); ``access`` is the job's access control
    file and ``language_code`` its default ``_language_code``, both recorded on each document.
    """

    job: Job
    read: Callable[[str, str], bytes | None]
    unchanged: Callable[[dict[str, str]], set[str]] | None
    max_document_bytes: int
    max_request_bytes: int
    layout: Layout | None = None
    access: AccessControl | None = None
    #: (key, SHA-256) of the access control file, recorded on the parts whose documents use it.
    access_file: tuple[str, str] | None = None
    language_code: str | None = None
    failures: list[Failure] = field(default_factory=list)
    counts: PlanCounts = field(default_factory=PlanCounts)
    #: Every DocumentId this job names (put, failed or duplicate): what a full sync keeps.
    seen: set[str] = field(default_factory=set)
    #: ``{s3Key: (documentId, fingerprint)}`` the source put before (:meth:`Ledger.keys`): a pair whose
    #: listing fingerprint is unchanged is skipped without reading its metadata.
    known: dict[str, tuple[str, str]] | None = None
    #: Document ids skipped from the listing alone (no ledger lookup needed in :meth:`skip_unchanged`).
    unchanged_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.layout is None:
            self.layout = Layout(root=manifests.job_root(self.job.prefix), documents=self.job.batches_prefix)

    def fail(self, document_id: str, code: str, message: str) -> None:
        self.failures.append(Failure(document_id=document_id, error_code=code, error_message=message))

    # -- documents -------------------------------------------------------------------------------
    def _read_metadata(self, pair: Pair) -> bytes | None:
        return self.read(self.job.bucket, pair.metadata.key) if pair.metadata is not None else b"{}"

    def _resolve(self, pairs: list[Pair], pool: ThreadPoolExecutor) -> Iterator[tuple[Pair, str, bytes]]:
        """(pair, document id) for pairs whose metadata parses; failures for the others.

        A document without metadata (``metadataRequired: false``) is read as empty metadata: the
        default DocumentId and the ContentType of its extension, as the S3 connector does.
        """
        prefix = self.layout.documents
        raws = pool.map(self._read_metadata, pairs)
        for pair, raw in zip(pairs, raws, strict=True):
            hint = pairing.default_document_id(pair.document.key, prefix)
            if raw is None:
                meta_key = pair.metadata.key if pair.metadata is not None else ""
                self.fail(hint, ErrorCode.MISSING_METADATA, f"metadata {meta_key} vanished during listing")
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
            yield pair, document_id, raw

    def documents(self, objects: Iterable) -> Iterator[PartDoc]:
        """Pair, resolve and de-duplicate; yields the documents that should be put.

        ``objects`` is the layout's merged stream (:meth:`Layout.merge`), or for the default layout
        the listing of ``P/batches/`` as it is.
        """
        claims = pairing.DocumentIdClaims()
        layout = self.layout
        paired = pairing.pair_objects(objects, layout.documents, metadata_required=layout.metadata_required,
                                      real_key=layout.real_metadata_key if layout.metadata else None)

        def pairs_only() -> Iterator[Pair]:
            for item in paired:
                # Every pairing output is a requested document (a lone metadata file too: its
                # document is missing), but only document objects count as "found".
                self.counts.documents_requested += 1
                if isinstance(item, Failure):
                    if item.error_code == ErrorCode.MISSING_METADATA:
                        self.counts.documents_found += 1
                    item = self._named(item)
                    self.seen.add(item.document_id)
                    self.failures.append(item)
                else:
                    self.counts.documents_found += 1
                    yield item

        stream = pairs_only()
        with ThreadPoolExecutor(METADATA_READERS) as pool:
            while chunk := list(islice(stream, RESOLVE_CHUNK)):
                resolved: list[tuple[Pair, str, bytes | None]] = []
                to_read: list[Pair] = []
                for pair in chunk:
                    seen = self._unchanged_id(pair)
                    if seen is None:
                        to_read.append(pair)
                    else:
                        resolved.append((pair, seen, None))
                resolved.extend(self._resolve(to_read, pool))
                # Claims go in listing order, whether or not the metadata was read.
                resolved.sort(key=lambda item: item[0].document.key)
                for pair, document_id, raw in resolved:
                    self.seen.add(document_id)
                    duplicate = claims.claim(document_id, pair.document.key)
                    if duplicate is not None:
                        self.failures.append(duplicate)
                        continue
                    if raw is None:
                        self.unchanged_ids.add(document_id)
                    yield self._part_doc(pair, document_id, raw)

    def _unchanged_id(self, pair: Pair) -> str | None:
        """The DocumentId of a pair the source put before with the same fingerprint, else None."""
        if self.known is None or self.job.force:
            return None
        entry = self.known.get(pair.document.key[len(self.layout.root):])
        return entry[0] if entry is not None and entry[1] == self._fingerprint(pair) else None

    def _named(self, failure: Failure) -> Failure:
        """A lone metadata file's row carries the DocumentId the file names, when it can be read."""
        if not isinstance(failure, pairing.LoneMetadata):
            return failure
        raw = self.read(self.job.bucket, failure.metadata_key)
        declared = metadata.declared_document_id(raw) if raw is not None else None
        return Failure(document_id=declared or failure.document_id, error_code=failure.error_code,
                       error_message=failure.error_message)

    def _acl(self, pair: Pair) -> int | None:
        return self.access.rule_for(pair.document.key[len(self.layout.root):]) if self.access is not None else None

    def _fingerprint(self, pair: Pair) -> str:
        """The listing's ETags, plus what the job adds to the metadata: a changed access control file or
        language is part of what Kendra holds, so it must re-send the document, not skip it."""
        acl = self._acl(pair)
        fingerprint = pair.fingerprint
        if acl is not None or self.language_code is not None:
            added = json.dumps([self.language_code, self.access.entries[acl] if acl is not None else None],
                               sort_keys=True)
            fingerprint += ":" + hashlib.sha256(added.encode()).hexdigest()[:16]
        return fingerprint

    def _part_doc(self, pair: Pair, document_id: str, raw: bytes | None = None) -> PartDoc:
        embedded = None
        if raw is not None and pair.metadata is not None and len(raw) <= EMBED_METADATA_BYTES:
            embedded = raw.decode("utf-8")  # it parsed, so it is UTF-8
        return PartDoc(
            document_id=document_id, s3_bucket=self.job.bucket, s3_key=pair.document.key,
            meta_key=pair.metadata.key if pair.metadata is not None else "", size=pair.document.size,
            fingerprint=self._fingerprint(pair), language_code=self.language_code, acl=self._acl(pair),
            metadata=embedded,
        )

    def skip_unchanged(self, docs: list[PartDoc]) -> list[PartDoc]:
        if self.unchanged is None or self.job.force or not docs:
            return docs
        # Known unchanged from the listing already; the others are asked of the ledger by DocumentId.
        asked = {d.document_id: d.fingerprint for d in docs if d.document_id not in self.unchanged_ids}
        skip = self.unchanged_ids | (self.unchanged(asked) if asked else set())
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
            uses_access = self.access_file is not None and any(d.acl is not None for d in item)
            key, digest = self.access_file if uses_access else (None, None)
            parts.append(PutPart(job_id=self.job.job_id, part=len(parts) + 1, docs=item, access_key=key,
                                 access_digest=digest, root=self.layout.root))
        return parts

    def delete_parts(self, ids: list[str], first: int) -> list[DeletePart]:
        return [
            DeletePart(job_id=self.job.job_id, part=first + n, document_ids=ids[i : i + MAX_DOCUMENTS_PER_CALL])
            for n, i in enumerate(range(0, len(ids), MAX_DOCUMENTS_PER_CALL))
        ]


@dataclass
class Made:
    """What :func:`make_plan` decided: the parts, the failures, the counts, and a job error if any."""

    parts: list[PutPart | DeletePart]
    failures: list[Failure]
    delete_failures: list[Failure]
    counts: PlanCounts
    error: str | None = None
    #: Things the report should say that are neither failures nor errors.
    notes: list[str] = field(default_factory=list)


def make_plan(
    job: Job,
    manifest: manifests.Manifest,
    objects: Iterable,
    *,
    read: Callable[[str, str], bytes | None],
    unchanged: Callable[[dict[str, str]], set[str]] | None,
    max_document_bytes: int,
    max_request_bytes: int,
    metadata_objects: Iterable = (),
    inventory: Callable[[str], Iterable[str]] | None = None,
    default_language_code: str | None = None,
    elsewhere: Callable[[], list[str]] = list,
    owners: tenancy.Owners | None = None,
    known_keys: dict[str, tuple[str, str]] | None = None,
) -> Made:
    """The pure core of planning.

    ``objects`` is the listing of ``P/<documentsPrefix>`` and ``metadata_objects`` that of the
    metadata prefix (when the manifest sets one). ``inventory(source)`` streams the ids the documents
    table holds for the source (needed by ``mode: "full"``). ``default_language_code`` is the stack's.
    ``elsewhere()`` lists a few keys under the job's prefix but outside its documents, to explain a job
    that found nothing. ``owners`` (registered sources only) looks up who owns documents: another
    source's fail ForeignDocument. ``known_keys`` (:meth:`Ledger.keys` of the source) lets unchanged
    documents be skipped from the listing, their metadata unread.
    """
    layout = Layout.of(job.prefix, manifest)
    counts = PlanCounts()

    def refused(error: str) -> Made:
        # The job fails as a whole: nothing was requested of Kendra, so nothing is counted as failed.
        counts.documents_requested = counts.deletes_requested = counts.full_sync_deletes = 0
        return Made([], [], [], counts, error)

    deletes = list(manifest.deletes)
    key = manifests.deletes_object_key(job.prefix, manifest)
    if key is not None:
        body = read(job.bucket, key)
        if body is None:
            return Made([], [], [], counts, f"deletesKey {key} does not exist")
        try:
            deletes = manifests.unique([*deletes, *manifests.read_deletes(body)])
        except manifests.ManifestError as exc:
            return refused(f"{exc.message}; nothing was sent to Kendra")

    access = access_file = None
    acl_key = manifests.access_control_object_key(job.prefix, manifest)
    if acl_key is not None:
        raw = read(job.bucket, acl_key)
        try:
            if raw is None:
                raise AccessControlError(f"access control file {acl_key} (accessControlKey) does not exist")
            access = parse_access_control(raw, key=acl_key)
            access_file = (acl_key, hashlib.sha256(raw).hexdigest())
        except AccessControlError as exc:
            # Sending without the file would publish restricted documents: the whole job stops here.
            return refused(f"{exc.message}; nothing was sent to Kendra")

    planner = Planner(job, read, unchanged, max_document_bytes, max_request_bytes, layout=layout, access=access,
                      access_file=access_file, language_code=manifest.language_code or default_language_code,
                      counts=counts, known=known_keys if unchanged is not None else None)
    counts.deletes_requested = len(deletes)

    docs = list(planner.documents(layout.merge(objects, metadata_objects)))
    counts.documents_excluded = layout.excluded
    # Excluded documents are documents found (an ingester counting its upload counts them too).
    counts.documents_found += layout.excluded
    if job.expected_documents is not None and counts.documents_found != job.expected_documents:
        return refused(
            f"expectedDocuments is {job.expected_documents} but {counts.documents_found} documents "
            "were found; nothing was sent to Kendra (was the manifest written before the last upload?)"
        )

    notes: list[str] = []
    if manifest.mode == "full":
        named = planner.seen | {f.document_id for f in planner.failures}
        full, error = full_sync_deletes(job.source, named, deletes, inventory,
                                        allow_mass_delete=manifest.allow_mass_delete, notes=notes)
        if error is not None:
            return refused(error)
        deletes = [*deletes, *full]
        counts.deletes_requested += len(full)
        counts.full_sync_deletes = len(full)

    if counts.documents_requested == 0 and not deletes:
        return refused(empty_job_error(job, layout.documents, elsewhere(), excluded=layout.excluded))

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
    counts.put_parts, counts.delete_parts = len(put), len(delete)
    return Made([*put, *delete], planner.failures, delete_failures, counts, None, notes)


def full_sync_deletes(
    source: str, seen: set[str], deletes: list[str], inventory: Callable[[str], Iterable[str]] | None, *,
    allow_mass_delete: bool, notes: list[str],
) -> tuple[list[str], str | None]:
    """``mode: "full"``: the source's indexed documents that this job does not name, or the guard's error.

    The inventory is streamed (one DynamoDB page at a time); only the ids to delete are kept, as the
    job's delete parts need them anyway. A document the job names but fails (invalid metadata, ...)
    is kept: it is still in the source, and the failure row says what to fix.
    """
    explicit = set(deletes)
    indexed, absent = 0, []
    for document_id in inventory(source) if inventory is not None else ():
        indexed += 1
        if document_id not in seen and document_id not in explicit:
            absent.append(document_id)
    if indexed == 0:
        notes.append(f'mode "full": source {source!r} has no documents in the documents table, so nothing '
                     "was deleted (full sync removes only documents earlier jobs of the source put)")
        return [], None
    if 2 * len(absent) > indexed and not allow_mass_delete:
        return [], (
            f'mode "full" would delete {len(absent)} of the {indexed} documents source {source!r} has in '
            "the index (more than half); nothing was sent to Kendra. Check that the job's prefix holds "
            'every document of the source, or set "allowMassDelete": true to delete them'
        )
    return absent, None


def empty_job_error(job: Job, documents_prefix: str, elsewhere: list[str], *, excluded: int = 0) -> str:
    """Why a job with no documents and no deletes fails: where it looked and what it saw instead."""
    looked = f"s3://{job.bucket}/{documents_prefix}"
    if excluded:
        return (f"the job has nothing to do: include/exclude excluded all {excluded} documents under {looked} "
                "and there are no deletes")
    if not elsewhere:
        return (f"the job has nothing to do: no documents under {looked} and no deletes; "
                "upload the documents before the manifest")
    shown = ", ".join(elsewhere[:ELSEWHERE_EXAMPLES])
    more = " and more" if len(elsewhere) > ELSEWHERE_EXAMPLES else ""
    return (f"the job has nothing to do: no documents under {looked} and no deletes, but objects elsewhere "
            f"under the job's prefix ({shown}{more}); documents belong under {documents_prefix} "
            "(or set the manifest's documentsPrefix)")


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
    layout = Layout.of(job.prefix, manifest)
    s3 = aws.client("s3")
    objects = listing.list_objects(s3, job.bucket, layout.documents)
    metadata_objects = listing.list_objects(s3, job.bucket, layout.metadata_listing) if layout.metadata else ()
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
                     max_document_bytes=max_document, max_request_bytes=max_request,
                     metadata_objects=metadata_objects, inventory=book.inventory,
                     default_language_code=settings.default_language_code, elsewhere=elsewhere, owners=owners,
                     known_keys=book.keys(job.source) if unchanged is not None and not job.force else None)
    return save(job, settings.reports_bucket, made.parts, made.failures, made.delete_failures, made.counts,
                made.error, made.notes), made.parts


def load_parts(reports_bucket: str, job: Job) -> list[PutPart | DeletePart] | None:
    """The parts a saved plan of ``job`` holds (None when none was saved)."""
    from kendra_ingest.parts import parse

    items = store.read_json(reports_bucket, job.work_key("parts.json"))
    return None if items is None else [parse(item) for item in items]


def save(job: Job, reports_bucket: str, parts: list, failures: list[Failure],
         delete_failures: list[Failure], counts: PlanCounts, error: str | None, notes: list[str] = ()) -> Plan:
    """Write the parts, the Map's items and the plan to S3 and return the small :class:`Plan`.

    ``parts.json`` lists every part (the report and the dead letters read it); ``items.json`` groups them
    :data:`PARTS_PER_ITEM` to a Distributed Map item, because each item is a child execution billed by
    its state transitions: one child per part would cost more than the rest of the job.
    """
    dumped = [p.model_dump(by_alias=True, exclude_none=True) for p in parts]
    store.write_json(reports_bucket, job.work_key("parts.json"), dumped)
    items_key = job.work_key("items.json")
    store.write_json(reports_bucket, items_key, [
        {"parts": dumped[i:i + PARTS_PER_ITEM]} for i in range(0, len(dumped), PARTS_PER_ITEM)])
    store.write_json(reports_bucket, job.work_key("plan.json"), {
        "counts": counts.model_dump(by_alias=True),
        "failures": [f.model_dump(by_alias=True) for f in failures],
        "deleteFailures": [f.model_dump(by_alias=True) for f in delete_failures],
        "error": error,
        "notes": list(notes),
    })
    return Plan(parts=len(parts), items_key=items_key, counts=counts, error=error)
