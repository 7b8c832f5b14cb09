"""The shared vocabulary: job, manifest, source, document, pair, part, outcome, failure.

Every external shape is a pydantic model. Models that travel between states or queue messages
serialise with camelCase aliases (``model_dump(by_alias=True)``) and accept extra fields.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ErrorCode(StrEnum):
    """Failure codes produced by the pipeline itself (README, "How a job works").

    Kendra's own per-document codes (``InvalidRequest``, ``InternalError``) and exception names are
    passed through verbatim as plain strings.
    """

    MISSING_METADATA = "MissingMetadata"
    MISSING_DOCUMENT = "MissingDocument"
    INVALID_METADATA = "InvalidMetadata"
    DOCUMENT_TOO_LARGE = "DocumentTooLarge"
    DUPLICATE_DOCUMENT_ID = "DuplicateDocumentId"
    CONFLICTING_OPERATION = "ConflictingOperation"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    INDEXING_FAILED = "IndexingFailed"
    INDEXING_UNCONFIRMED = "IndexingUnconfirmed"
    #: A put or delete of a document another registered source owns.
    FOREIGN_DOCUMENT = "ForeignDocument"
    DEAD_LETTERED = "DeadLettered"
    JOB_ABORTED = "JobAborted"


class Wire(BaseModel):
    """Base for shapes that cross a process boundary: camelCase on the wire, extra fields allowed."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SourceObject(Wire):
    """One S3 object as listed: key, ETag (quotes stripped) and size in bytes."""

    key: str
    etag: str
    size: int


class Pair(Wire):
    """A document object and its ``.metadata.json`` object, matched by key.

    ``metadata`` is None for a document ingested without metadata (``metadataRequired: false``).
    """

    document: SourceObject
    metadata: SourceObject | None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the document or its metadata changes; computed without reading either."""
        return f"{self.document.etag}:{self.metadata.etag if self.metadata is not None else '-'}"


class Failure(Wire):
    """One failed document or delete: becomes exactly one row of failures.csv."""

    document_id: str
    error_code: str
    error_message: str


Operation = Literal["put", "delete"]


class Outcome(Wire):
    """What happened to one document or delete. ``status`` ``failed`` carries the error."""

    document_id: str
    operation: Operation
    status: Literal["put", "skipped", "deleted", "failed"]
    error_code: str | None = None
    error_message: str | None = None
    fingerprint: str | None = None

    @classmethod
    def failed(cls, document_id: str, operation: Operation, code: str, message: str) -> Outcome:
        return cls(
            document_id=document_id, operation=operation, status="failed", error_code=code,
            error_message=message,
        )

    def failure(self) -> Failure | None:
        if self.status != "failed":
            return None
        return Failure(
            document_id=self.document_id, error_code=self.error_code or "Unknown",
            error_message=self.error_message or "",
        )


class PartDoc(Wire):
    """One document of a put part; the seed's message shape plus size and fingerprint.

    ``meta_key`` is empty for a document without metadata. ``language_code`` is the job's default
    ``_language_code`` (used when the metadata sets none); ``acl`` is the index of the access control
    file rule whose entries the document gets (the part names the file: ``PutPart.access_key``).
    """

    document_id: str
    s3_bucket: str
    s3_key: str
    meta_key: str
    size: int = 0
    fingerprint: str = ""
    language_code: str | None = None
    acl: int | None = None
    #: The metadata file as the planner read it (when small): the sender does not read it again.
    metadata: str | None = None


class PutPart(Wire):
    """One BatchPutDocument request's worth of documents (the sqs ``put`` message body)."""

    action: Literal["put"] = "put"
    job_id: str
    part: int = 0
    docs: list[PartDoc] = Field(min_length=1, max_length=10)
    #: The job's access control file (ingestion bucket key) and the SHA-256 of the bytes the planner
    #: checked, when a document of the part gets entries from it.
    access_key: str | None = None
    access_digest: str | None = None
    #: The job's root (``P/``): the ledger records each document's key relative to it, so a re-run of
    #: the job under another prefix still recognises its unchanged documents from the listing.
    root: str | None = None

    def relative_key(self, key: str) -> str:
        return key[len(self.root):] if self.root and key.startswith(self.root) else key


class DeletePart(Wire):
    """One BatchDeleteDocument request's worth of ids (the sqs ``delete`` message body)."""

    action: Literal["delete"] = "delete"
    job_id: str
    part: int = 0
    document_ids: list[str] = Field(min_length=1, max_length=10)


class KendraCounts(BaseModel):
    """Kendra API requests of a job or part: the ``kendra`` block of summary.json.

    Mutable (a :class:`kendra_ingest.kendra.KendraIndex` increments it); parts add up with ``+``.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    batch_put_calls: int = 0
    batch_delete_calls: int = 0
    status_calls: int = 0
    throttled: int = 0

    def __add__(self, other: KendraCounts) -> KendraCounts:
        fields = type(self).model_fields
        return KendraCounts(**{name: getattr(self, name) + getattr(other, name) for name in fields})
