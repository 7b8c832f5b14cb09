"""Pairing listed objects into documents + metadata, and the per-job DocumentId rules.

S3 lists keys in ascending order of their UTF-8 bytes, which is the same order as Python's ``str``
comparison (UTF-8 preserves code point order), so keys are compared as ``str`` throughout.

A document ``D`` always lists before its metadata ``D.metadata.json`` (a key sorts before every key it
is a prefix of), but other keys may list between them (``D-2.pdf``, ``D 2.pdf``, ...). So a document
waits until its metadata arrives or the listing passes the key where it would have been; only those
waiting documents are held in memory, never the job.

Example::

    for item in pair_objects(list_objects(s3, bucket, "P/batches/"), "P/batches/"):
        ...   # Pair(document, metadata) or Failure(MissingMetadata | MissingDocument)
"""

from __future__ import annotations

import heapq
import posixpath
from collections.abc import Callable, Iterable, Iterator

from kendra_ingest.models import ErrorCode, Failure, Pair, SourceObject

METADATA_SUFFIX = ".metadata.json"


class LoneMetadata(Failure):
    """``MissingDocument`` for a metadata object whose document is missing; ``metadata_key`` lets the
    planner read the ``DocumentId`` the file names, which is the id the ingester knows."""

    metadata_key: str


def default_document_id(key: str, batches_prefix: str) -> str:
    """The key under ``P/batches/`` (the documents prefix) without its last extension:
    ``P/batches/a/b.pdf`` -> ``a/b``."""
    return posixpath.splitext(relative_key(key, batches_prefix))[0]


def relative_key(key: str, batches_prefix: str) -> str:
    """``key`` without ``batches_prefix``; a key outside it is a programming error (ValueError)."""
    if not key.startswith(batches_prefix):
        raise ValueError(f"key {key!r} is not under {batches_prefix!r}")
    return key[len(batches_prefix):]


def pair_objects(
    objects: Iterable[SourceObject], batches_prefix: str, *, metadata_required: bool = True,
    real_key: Callable[[str], str] | None = None,
) -> Iterator[Pair | Failure]:
    """Match each document with its ``.metadata.json`` as the listing streams by.

    ``metadata_required=False`` turns a document without metadata into a ``Pair`` whose ``metadata``
    is None (the S3 connector's optional metadata). ``real_key`` maps the key a metadata object is
    listed under to its object key (see :mod:`kendra_ingest.layout`: metadata kept under a prefix of
    its own is fed to pairing under the key it would have beside its document).

    Every document and every metadata object ends in exactly one yielded item: a :class:`Pair`, a
    ``MissingMetadata`` failure (a document whose metadata never came) or a ``MissingDocument``
    failure (metadata whose document did not list before it). Keys ending in ``/`` (folders) are
    ignored; a key ending in ``.metadata.json`` is always metadata, never a document. The output
    order is a function of the input alone. See :class:`Pairing` for the memory bound.
    """
    pairing = Pairing(batches_prefix, metadata_required=metadata_required, real_key=real_key)
    for obj in objects:
        yield from pairing.feed(obj)
    yield from pairing.finish()


class Pairing:
    """The state behind :func:`pair_objects`: documents waiting for their metadata.

    ``pending`` is the number of waiting documents. It is bounded by the documents whose metadata
    key sorts after the current key, not by the size of the job: a document is released as a
    ``MissingMetadata`` failure as soon as a key after its metadata key has been listed.

    Example::

        pairing = Pairing("P/batches/")
        items = [item for obj in objects for item in pairing.feed(obj)] + pairing.finish()
    """

    def __init__(self, batches_prefix: str, *, metadata_required: bool = True,
                 real_key: Callable[[str], str] | None = None) -> None:
        self.batches_prefix = batches_prefix
        self.metadata_required = metadata_required
        self._real = real_key or (lambda key: key)
        self._waiting: dict[str, SourceObject] = {}  # metadata key -> its document
        self._due: list[str] = []  # heap of the waiting metadata keys
        self._last_key: str | None = None

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def feed(self, obj: SourceObject) -> list[Pair | Failure]:
        """Take the next listed object (keys strictly ascending); return what it settles."""
        key = obj.key
        if self._last_key is not None and key <= self._last_key:
            raise ValueError(f"listing out of order: {key!r} after {self._last_key!r}")
        self._last_key = key
        relative_key(key, self.batches_prefix)
        settled: list[Pair | Failure] = list(self._release(before=key))
        if key.endswith("/"):
            pass
        elif not key.endswith(METADATA_SUFFIX):
            meta_key = key + METADATA_SUFFIX
            self._waiting[meta_key] = obj
            heapq.heappush(self._due, meta_key)
        elif (document := self._waiting.pop(key, None)) is None:
            settled.append(self._missing_document(key))
        else:
            # Every waiting key below `key` was just released, so `key` is the heap's smallest.
            smallest = heapq.heappop(self._due)
            assert smallest == key, (smallest, key)
            real = self._real(key)
            metadata = obj if real == key else obj.model_copy(update={"key": real})
            settled.append(Pair(document=document, metadata=metadata))
        return settled

    def finish(self) -> list[Pair | Failure]:
        """The listing has ended: every document still waiting is missing its metadata."""
        return self._release(before=None)

    def _release(self, before: str | None) -> list[Pair | Failure]:
        # Metadata keys below `before` can no longer be listed: their documents lack metadata.
        released: list[Pair | Failure] = []
        while self._due and (before is None or self._due[0] < before):
            meta_key = heapq.heappop(self._due)
            document = self._waiting.pop(meta_key)
            if not self.metadata_required:
                released.append(Pair(document=document, metadata=None))
                continue
            released.append(Failure(
                document_id=default_document_id(document.key, self.batches_prefix),
                error_code=ErrorCode.MISSING_METADATA,
                error_message=f"document {document.key!r} has no metadata object {self._real(meta_key)!r}",
            ))
        return released

    def _missing_document(self, meta_key: str) -> Failure:
        document_key = meta_key[: -len(METADATA_SUFFIX)]
        real = self._real(meta_key)
        return LoneMetadata(
            document_id=default_document_id(document_key, self.batches_prefix),
            error_code=ErrorCode.MISSING_DOCUMENT,
            error_message=f"metadata object {real!r} has no document object {document_key!r}",
            metadata_key=real,
        )


class DocumentIdClaims:
    """Enforces "the first document by S3 key to claim a DocumentId wins" within one job.

    Feed documents in listing order; every later claim of an id fails with ``DuplicateDocumentId``.
    Memory: one set of the ids claimed so far.

    Example::

        claims = DocumentIdClaims()
        claims.claim("emp-1", "P/batches/a.json")   # None: ingest it
        claims.claim("emp-1", "P/batches/b.json")   # Failure(DuplicateDocumentId)
    """

    def __init__(self) -> None:
        self._claimed: set[str] = set()

    def claim(self, document_id: str, key: str) -> Failure | None:
        """``None`` if ``key`` is the first to claim ``document_id``, else its failure."""
        if document_id in self._claimed:
            return Failure(
                document_id=document_id,
                error_code=ErrorCode.DUPLICATE_DOCUMENT_ID,
                error_message=(
                    f"document {key!r} claims DocumentId {document_id!r}, already claimed by a document "
                    "earlier by S3 key in this job; only the first is ingested"
                ),
            )
        self._claimed.add(document_id)
        return None


class DeleteConflicts:
    """Ids one job both puts and deletes: neither operation is sent, each fails ``ConflictingOperation``.

    Which one the ingester meant cannot be known, and sending both would leave the index depending
    on which call Kendra applied last. So the put fails (one row, operation ``put``) and the delete
    fails (one row, operation ``delete``), keeping ``requested = done + failed`` on both sides.
    Check puts after :class:`DocumentIdClaims`, so a duplicate fails only as ``DuplicateDocumentId``.

    Example::

        conflicts = DeleteConflicts(["emp-9"])
        conflicts.check_put("emp-9")       # Failure(ConflictingOperation, put)
        conflicts.delete_failures()        # [Failure(ConflictingOperation, delete)]
        conflicts.conflicting              # {"emp-9"}: do not send this delete
    """

    def __init__(self, delete_ids: Iterable[str]) -> None:
        self._deletes = dict.fromkeys(delete_ids)
        self._conflicting: set[str] = set()

    @property
    def conflicting(self) -> frozenset[str]:
        return frozenset(self._conflicting)

    def check_put(self, document_id: str) -> Failure | None:
        """``None`` if the id is not also deleted by this job, else the put's failure."""
        if document_id not in self._deletes:
            return None
        self._conflicting.add(document_id)
        return _conflict(document_id, "put")

    def delete_failures(self) -> list[Failure]:
        """One failure per conflicting delete, in the order the deletes were requested."""
        return [_conflict(d, "delete") for d in self._deletes if d in self._conflicting]


def conflicting_operations(put_ids: Iterable[str], delete_ids: Iterable[str]) -> list[Failure]:
    """Failures for ids both put and deleted: the puts (in ``put_ids`` order), then the deletes."""
    conflicts = DeleteConflicts(delete_ids)
    put_failures = [failure for d in put_ids if (failure := conflicts.check_put(d))]
    return put_failures + conflicts.delete_failures()


def _conflict(document_id: str, operation: str) -> Failure:
    return Failure(
        document_id=document_id,
        error_code=ErrorCode.CONFLICTING_OPERATION,
        error_message=(
            f"operation {operation}: DocumentId {document_id!r} is both put and deleted in this job; "
            "neither is sent"
        ),
    )
