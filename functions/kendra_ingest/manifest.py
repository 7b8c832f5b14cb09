"""The job manifest: where a job lives, what it asks for, and how to read it (docs/migration.md has
the layout keys a team coming from the Kendra S3 connector uses).

A job is everything under a prefix ``P`` of the ingestion bucket: documents under ``P/batches/`` (or
``P/<documentsPrefix>``), an optional deletes file, and ``P/_control/manifest.json``, whose creation
starts the job.

Example::

    manifest = parse_manifest(b'{"schemaVersion": 1, "jobId": "phonebook-2025-10-05"}')
    manifest.source                       # "phonebook"
    job_prefix("teams/hr/_control/manifest.json")   # "teams/hr"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kendra_ingest.globs import GlobError, compile_glob
from kendra_ingest.metadata import MAX_DOCUMENT_ID_LENGTH, document_id_bytes_problem
from kendra_ingest.pairing import METADATA_SUFFIX
from kendra_ingest.settings import LANGUAGE_CODE_PATTERN
from kendra_ingest.validation import JsonInputError, describe_errors, load_json_object

MANIFEST_NAME = "_control/manifest.json"
CONTROL_DIR = "_control/"
BATCHES_DIR = "batches/"
#: The connector allows 100 inclusion and 100 exclusion patterns per data source.
MAX_PATTERNS = 100
#: A manifest larger than this is refused before it is parsed (long delete lists belong in a deletesKey
#: file, which is read line by line).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

JOB_ID_MAX_LENGTH = 80
JOB_ID_RULE = f"must be 1-{JOB_ID_MAX_LENGTH} characters of [A-Za-z0-9._-], starting with a letter or digit"
# The first character is a letter or digit: a job id is a path segment of report keys and of the
# sandbox's output folders, so "." and ".." (and option-like "-x") must never be one.
_JOB_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{JOB_ID_MAX_LENGTH - 1}}}")
_NOT_JOB_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _fits_the_documents_table(value: str) -> str:
    if problem := document_id_bytes_problem(value):
        raise PydanticCustomError("document_id_bytes", problem)
    return value


DocumentIdText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DOCUMENT_ID_LENGTH),
                           AfterValidator(_fits_the_documents_table)]


class ManifestError(ValueError):
    """The manifest cannot start a job; ``message`` is one line naming the field and the rule broken."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Manifest(BaseModel):
    """``P/_control/manifest.json``. JSON keys are camelCase; unknown keys are rejected.

    Types are strict: ``"expectedDocuments": "5"`` or ``"force": "true"`` is an error, not a guess.
    ``source`` defaults to ``jobId`` up to its first ``-`` (the whole ``jobId`` when that is empty).

    Example::

        Manifest.model_validate({"schemaVersion": 1, "jobId": "hr-1", "deletes": ["emp-9"]})
    """

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True)

    schema_version: Literal[1]
    job_id: str
    source: str = Field(min_length=1, max_length=256)
    deletes: list[DocumentIdText] = []
    deletes_key: str | None = Field(None, min_length=1, max_length=1024)
    expected_documents: int | None = Field(None, ge=0)
    force: bool = False
    # Source layout: the keys that let a team point a job at its S3-connector bucket as it is.
    documents_prefix: str = Field(BATCHES_DIR, max_length=1024)
    metadata_prefix: str | None = Field(None, min_length=1, max_length=1024)
    metadata_required: bool = True
    access_control_key: str | None = Field(None, min_length=1, max_length=1024)
    include: list[str] = Field([], max_length=MAX_PATTERNS)
    exclude: list[str] = Field([], max_length=MAX_PATTERNS)
    language_code: str | None = Field(None, max_length=35, pattern=LANGUAGE_CODE_PATTERN)
    mode: Literal["incremental", "full"] = "incremental"
    allow_mass_delete: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_source(cls, data: Any) -> Any:
        # Filled before validation so `source` is a plain str; an invalid jobId is reported on its own.
        if isinstance(data, dict) and data.get("source") is None:
            data = {**data, "source": default_source(str(data.get("jobId")))}
        return data

    @field_validator("schema_version", mode="before")
    @classmethod
    def _only_version_one(cls, value: Any) -> Any:
        # Literal[1] alone would accept true and 1.0.
        if type(value) is not int or value != 1:
            raise PydanticCustomError("schema_version", "must be 1 (the only schema version)")
        return value

    @field_validator("job_id")
    @classmethod
    def _job_id_rule(cls, value: str) -> str:
        if not is_valid_job_id(value):
            raise PydanticCustomError("job_id", JOB_ID_RULE)
        return value

    @field_validator("deletes_key", "access_control_key")
    @classmethod
    def _key_under_prefix(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise PydanticCustomError("key_under_prefix", "must be a relative path under the job prefix")
        if value == MANIFEST_NAME:
            raise PydanticCustomError("key_under_prefix", "must not be the manifest")
        return value

    @field_validator("documents_prefix", "metadata_prefix")
    @classmethod
    def _prefix_under_job(cls, value: str | None) -> str | None:
        # A folder under P. The trailing "/" is added when missing: "metadata" means the folder, never
        # every key starting with "metadata" (the connector's S3Prefix is written either way).
        if not value:
            return value
        if value.startswith("/"):
            raise PydanticCustomError("prefix_under_job", "must be relative to the job prefix (no leading '/')")
        folder = value if value.endswith("/") else value + "/"
        if any(segment in ("", ".", "..") for segment in folder[:-1].split("/")):
            raise PydanticCustomError(
                "prefix_under_job", "must stay under the job prefix: no '.', '..' or empty path segments"
            )
        if folder.startswith(CONTROL_DIR):
            raise PydanticCustomError("prefix_under_job", f"must not be under {CONTROL_DIR} (the job's control files)")
        return folder

    @field_validator("include", "exclude")
    @classmethod
    def _globs_parse(cls, patterns: list[str]) -> list[str]:
        for position, pattern in enumerate(patterns):
            try:
                compile_glob(pattern)
            except GlobError as exc:
                message = f"pattern {position} {pattern!r} does not parse: {exc}"
                raise PydanticCustomError("glob", message.replace("{", "{{").replace("}", "}}")) from None
        return patterns

    @field_validator("metadata_prefix", mode="after")
    @classmethod
    def _prefixes_apart(cls, meta: str | None, info: ValidationInfo) -> str | None:
        # "" (every object under P) may contain the metadata folder, which is then reserved; otherwise
        # one folder inside the other would make an object both a document and a metadata file.
        documents = info.data.get("documents_prefix")
        if meta is not None and documents and (meta.startswith(documents) or documents.startswith(meta)):
            message = (
                f"overlaps documentsPrefix {documents!r} (one folder is inside the other); keep them apart, "
                'or set documentsPrefix to "" (every object under the job prefix except the metadata folder)'
            )
            raise PydanticCustomError("prefixes_overlap", message.replace("{", "{{").replace("}", "}}"))
        return meta

    def requested_deletes(self, file_ids: Iterable[str] = ()) -> list[str]:
        """Every id this job deletes: ``deletes``, then the ``deletesKey`` file's ids, duplicates once."""
        return unique([*self.deletes, *file_ids])


def parse_manifest(raw: bytes) -> Manifest:
    """Validate the manifest's bytes, or raise :class:`ManifestError` with a one-line message.

    The manifest must be UTF-8 JSON. A leading UTF-8 byte order mark is accepted and stripped, because
    editors on Windows add one and the manifest's meaning is unaffected (metadata files, read by Kendra's
    rules, reject it instead). Every field problem is reported, separated by ``; ``.
    """
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"manifest is {len(raw)} bytes, more than the {MAX_MANIFEST_BYTES} allowed; "
            "list many deletes in a deletesKey file (one id per line) instead"
        )
    try:
        obj = load_json_object(raw, what="manifest", strip_bom=True)
    except JsonInputError as exc:
        raise ManifestError(exc.message) from None
    try:
        manifest = Manifest.model_validate(obj)
    except ValidationError as exc:
        allowed = (field.alias or name for name, field in Manifest.model_fields.items())
        raise ManifestError(describe_errors(exc, what="manifest", allowed=allowed)) from None
    if (problem := deletes_key_problem(manifest)) is not None:
        raise ManifestError(f"manifest field 'deletesKey': {problem} (got {manifest.deletes_key!r})")
    return manifest


def deletes_key_problem(manifest: Manifest) -> str | None:
    """Why the ``deletesKey`` cannot be the deletes file, given the layout keys (None: it can).

    A deletes file inside the documents would take a document out of the job and read its bytes as ids;
    the job fails instead, before anything is sent.
    """
    key = manifest.deletes_key
    if key is None:
        return None
    if key.endswith(METADATA_SUFFIX):
        return "must not be a metadata file (*.metadata.json)"
    if manifest.documents_prefix and key.startswith(manifest.documents_prefix):
        return (f"must not be under documentsPrefix {manifest.documents_prefix!r}, where it would be a document "
                "of the job; put it beside _control/, e.g. deletes.txt")
    if manifest.metadata_prefix and key.startswith(manifest.metadata_prefix):
        return f"must not be under metadataPrefix {manifest.metadata_prefix!r}, where the metadata files are"
    if key.startswith(CONTROL_DIR):
        return f"must not be under {CONTROL_DIR} (the job's control files)"
    if key == manifest.access_control_key:
        return "must not be the accessControlKey file"
    return None


def is_valid_job_id(value: str) -> bool:
    """True when ``value`` is 1-80 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit."""
    return _JOB_ID.fullmatch(value) is not None


def default_source(job_id: str) -> str:
    """``jobId`` up to its first ``-``; the whole ``jobId`` when it starts with ``-``."""
    return job_id.split("-", 1)[0] or job_id


def derive_job_id(manifest_key: str, raw: bytes) -> str:
    """The job id for the report of a manifest that may be invalid.

    The manifest's own ``jobId`` when it can be read and is valid (so the report lands where the
    ingester looks); otherwise ``invalid-<prefix slug>-<first 8 hex of sha256(raw)>``, itself a valid
    job id, stable for the same bytes at the same prefix.
    """
    try:
        job_id = load_json_object(raw, what="manifest", strip_bom=True).get("jobId")
    except JsonInputError:
        job_id = None
    if isinstance(job_id, str) and is_valid_job_id(job_id):
        return job_id
    digest = hashlib.sha256(raw).hexdigest()[:8]
    try:
        prefix = job_prefix(manifest_key)
    except ManifestError:
        prefix = manifest_key
    budget = JOB_ID_MAX_LENGTH - len("invalid--") - len(digest)
    slug = _NOT_JOB_ID_CHARS.sub("-", prefix).strip("-")[:budget].strip("-")
    return f"invalid-{slug}-{digest}" if slug else f"invalid-{digest}"


def job_prefix(manifest_key: str) -> str:
    """``P`` of ``P/_control/manifest.json`` (empty for ``_control/manifest.json``).

    ``P`` may contain slashes. Raises :class:`ManifestError` for any other key, including
    ``/_control/manifest.json``, whose prefix would be ambiguous with the empty one.
    """
    if manifest_key == MANIFEST_NAME:
        return ""
    suffix = "/" + MANIFEST_NAME
    if manifest_key.endswith(suffix) and len(manifest_key) > len(suffix):
        return manifest_key[: -len(suffix)]
    raise ManifestError(f"manifest key {manifest_key!r} does not match <prefix>/{MANIFEST_NAME}")


def job_root(prefix: str) -> str:
    """The key prefix every object of the job starts with: ``P/``, or empty when ``P`` is empty."""
    return f"{prefix}/" if prefix else ""


def batches_prefix(prefix: str, manifest: Manifest | None = None) -> str:
    """Where the job's documents live: ``P/batches/``, or ``P/<documentsPrefix>``."""
    return job_root(prefix) + (manifest.documents_prefix if manifest is not None else BATCHES_DIR)


def access_control_object_key(prefix: str, manifest: Manifest) -> str | None:
    """The key of the manifest's ``accessControlKey`` file (relative to ``P``), if it names one."""
    return job_root(prefix) + manifest.access_control_key if manifest.access_control_key else None


def deletes_object_key(prefix: str, manifest: Manifest) -> str | None:
    """The key of the manifest's ``deletesKey`` file (relative to ``P``), if it names one."""
    return job_root(prefix) + manifest.deletes_key if manifest.deletes_key else None


def read_deletes(body: bytes) -> list[str]:
    """Ids from a ``deletesKey`` file: one per line, whitespace and ``\\r`` stripped, blanks skipped.

    A duplicate id is kept once, at its first position. A leading BOM is dropped; bytes that are not
    UTF-8, or an id longer than a DocumentId can be, raise :class:`ManifestError` (the file is part of the
    job's request, so the job fails before anything is sent).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"deletes file is not valid UTF-8: byte at offset {exc.start}") from None
    # split("\n") rather than splitlines(): ids may legitimately contain other Unicode separators.
    ids = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not (stripped := line.strip()):
            continue
        if len(stripped) > MAX_DOCUMENT_ID_LENGTH:
            # Sent on, it would make Kendra refuse the whole call, failing the ids sent with it.
            raise ManifestError(f"deletes file line {number}: the id is {len(stripped)} characters; a DocumentId "
                                f"has at most {MAX_DOCUMENT_ID_LENGTH}")
        if problem := document_id_bytes_problem(stripped):
            raise ManifestError(f"deletes file line {number}: the id {problem}")
        ids.append(stripped)
    return unique(ids)


def unique(ids: Iterable[str]) -> list[str]:
    """``ids`` with duplicates removed, first occurrence kept."""
    return list(dict.fromkeys(ids))
