"""Kendra S3-connector metadata files, and turning a document + its metadata into a Kendra ``Document``.

Nothing here raises on bad input: every problem becomes a :class:`Failure` whose message names the
field (``InvalidMetadata``), because one bad document must never stop the job.

Example::

    meta = parse_metadata(raw_metadata, document_id_hint="a/b")
    if not isinstance(meta, Failure):
        document_id = resolve_document_id(meta, "P/batches/a/b.pdf", "P/batches/")
        document = to_document(meta, document_id=document_id, key="P/batches/a/b.pdf", body=pdf_bytes)
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_pascal
from pydantic_core import PydanticCustomError

from kendra_ingest.models import ErrorCode, Failure
from kendra_ingest.pairing import default_document_id
from kendra_ingest.validation import JsonInputError, describe_errors, load_json_object, shown

# Limits of the botocore Kendra model (service-2.json), which botocore itself does not check.
MAX_DOCUMENT_ID_LENGTH = 2048
#: The documents table keys each document by its id, and its bySource index sorts by the id: DynamoDB
#: allows a sort key of at most 1024 bytes, so an id longer than that (in UTF-8) could be put into Kendra
#: but never recorded, and its part would be reported failed although indexed. Refused before sending.
MAX_DOCUMENT_ID_BYTES = 1024
MAX_ATTRIBUTE_KEY_LENGTH = 200
MAX_STRING_VALUE_LENGTH = 2048
MAX_PRINCIPAL_NAME_LENGTH = 200
MAX_HIERARCHY_LEVELS = 30
#: The model documents "the default maximum length or number of strings is 10" for StringListValue.
MAX_STRING_LIST_VALUES = 10
#: The Kendra developer guide (user context filtering): at most 200 entries in AccessControlList.
MAX_ACL_ENTRIES = 200
MAX_ACCESS_CONTROL_CONFIGURATION_ID_LENGTH = 36
_LONG_RANGE = range(-(2**63), 2**63)  # LongValue is a Java long
_ATTRIBUTE_KEY = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_-]*")

ContentType = Literal["PDF", "HTML", "MS_WORD", "PLAIN_TEXT", "PPT", "RTF", "XML", "XSLT", "MS_EXCEL", "CSV",
                      "JSON", "MD"]
CONTENT_TYPES: tuple[str, ...] = get_args(ContentType)

#: The ContentType of a document whose metadata names none, by its key's extension (lower-cased).
CONTENT_TYPE_BY_EXTENSION: Mapping[str, str] = {
    ".pdf": "PDF", ".html": "HTML", ".htm": "HTML", ".doc": "MS_WORD", ".docx": "MS_WORD",
    ".txt": "PLAIN_TEXT", ".ppt": "PPT", ".pptx": "PPT", ".rtf": "RTF", ".xml": "XML", ".xslt": "XSLT",
    ".xls": "MS_EXCEL", ".xlsx": "MS_EXCEL", ".csv": "CSV", ".json": "JSON", ".md": "MD",
}

#: The type of each reserved attribute in every index (its DATE fields included); a reserved attribute
#: with a value of another type is refused before sending. Other DATE fields come from the index's schema.
RESERVED_ATTRIBUTE_TYPES: Mapping[str, str] = {
    "_source_uri": "STRING_VALUE", "_created_at": "DATE_VALUE", "_last_updated_at": "DATE_VALUE",
    "_category": "STRING_VALUE", "_version": "STRING_VALUE", "_view_count": "LONG_VALUE",
    "_language_code": "STRING_VALUE", "_authors": "STRING_LIST_VALUE", "_file_type": "STRING_VALUE",
    "_document_title": "STRING_VALUE", "_excerpt_page_number": "LONG_VALUE",
    "_data_source_id": "STRING_VALUE", "_data_source_sync_job_execution_id": "STRING_VALUE",
}
DATE_ATTRIBUTES = frozenset(k for k, v in RESERVED_ATTRIBUTE_TYPES.items() if v == "DATE_VALUE")
LANGUAGE_CODE_ATTRIBUTE = "_language_code"
_TYPE_WORDS = {"STRING_VALUE": "a string", "LONG_VALUE": "an integer", "STRING_LIST_VALUE": "a list of strings",
               "DATE_VALUE": "a date"}

EMPTY_DOCUMENT_MESSAGE = "document is empty (0 bytes); Kendra rejects empty documents"


class _Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", strict=True, frozen=True)


class Principal(_Strict):
    """One ACL entry: ``{"Name", "Type": USER|GROUP, "Access": ALLOW|DENY, "DataSourceId"?}``."""

    name: str = Field(min_length=1, max_length=MAX_PRINCIPAL_NAME_LENGTH)
    type: Literal["USER", "GROUP"]
    access: Literal["ALLOW", "DENY"]
    data_source_id: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        # Kendra's pattern is ^\P{C}*$: no control, format, private-use or unassigned characters.
        if any(unicodedata.category(ch).startswith("C") for ch in value):
            raise PydanticCustomError("principal_name", "must not contain control characters")
        return value


class HierarchicalPrincipal(_Strict):
    """One level of a hierarchical ACL: ``{"PrincipalList": [...]}``."""

    principal_list: list[Principal]


class DocumentMetadata(_Strict):
    """``<document>.metadata.json`` in the Kendra S3-connector format; unknown top-level keys rejected.

    ``Attributes`` values are checked when the document is built (:func:`to_document`), because
    which strings are dates depends on the index's fields.

    Example::

        DocumentMetadata.model_validate({"DocumentId": "emp-1", "Attributes": {"dept": "HR"}})
    """

    document_id: str | None = Field(None, min_length=1, max_length=MAX_DOCUMENT_ID_LENGTH)
    title: str | None = None
    content_type: ContentType | None = None
    attributes: dict[str, Any] = {}
    access_control_list: list[Principal] | None = Field(None, max_length=MAX_ACL_ENTRIES)
    hierarchical_access_control_list: list[HierarchicalPrincipal] | None = Field(
        None, min_length=1, max_length=MAX_HIERARCHY_LEVELS
    )
    #: An access control configuration of the index (CreateAccessControlConfiguration); sent as is.
    access_control_configuration_id: str | None = Field(
        None, min_length=1, max_length=MAX_ACCESS_CONTROL_CONFIGURATION_ID_LENGTH, pattern=r"^[a-zA-Z0-9-]+$"
    )

    @field_validator("document_id")
    @classmethod
    def _id_bytes(cls, value: str | None) -> str | None:
        if value is not None and (problem := document_id_bytes_problem(value)):
            raise PydanticCustomError("document_id_bytes", problem)
        return value


def document_id_bytes_problem(document_id: str) -> str | None:
    """Why ``document_id`` is too long for the documents table (None: it fits)."""
    size = len(document_id.encode("utf-8", "surrogatepass"))
    if size <= MAX_DOCUMENT_ID_BYTES:
        return None
    return (f"must be at most {MAX_DOCUMENT_ID_BYTES} bytes in UTF-8, the documents table's key limit "
            f"(got {size} bytes in {len(document_id)} characters)")


_METADATA_KEYS = tuple(field.alias or name for name, field in DocumentMetadata.model_fields.items())


def parse_metadata(raw: bytes, *, document_id_hint: str) -> DocumentMetadata | Failure:
    """Validate a metadata file's bytes (UTF-8 JSON object, no BOM), or an ``InvalidMetadata`` failure.

    The failure carries the file's own ``DocumentId`` when that much is readable and valid, else
    ``document_id_hint`` (the id derived from the document's key).
    """
    try:
        obj = load_json_object(raw, what="metadata", strip_bom=False)
    except JsonInputError as exc:
        return _invalid(document_id_hint, exc.message)
    try:
        return DocumentMetadata.model_validate(obj)
    except ValidationError as exc:
        declared = obj.get("DocumentId")
        if not (isinstance(declared, str) and _valid_document_id(declared)):
            declared = document_id_hint
        return _invalid(declared, describe_errors(exc, what="metadata", allowed=_METADATA_KEYS))


def declared_document_id(raw: bytes) -> str | None:
    """The ``DocumentId`` a metadata file names, when the file is a JSON object with a valid one.

    For failure rows of a metadata file that cannot be ingested as a whole (its document is missing):
    the row carries the id the ingester wrote, not the one derived from the key.
    """
    try:
        declared = load_json_object(raw, what="metadata", strip_bom=False).get("DocumentId")
    except JsonInputError:
        return None
    return declared if isinstance(declared, str) and _valid_document_id(declared) else None


def resolve_document_id(meta: DocumentMetadata, key: str, batches_prefix: str) -> str:
    """The metadata's ``DocumentId``, else the key under the documents prefix without its extension."""
    return meta.document_id or default_document_id(key, batches_prefix)


def content_type_for(key: str) -> str | None:
    """The ContentType implied by ``key``'s extension, if it has a known one."""
    return CONTENT_TYPE_BY_EXTENSION.get(posixpath.splitext(key)[1].lower())


def to_document(
    meta: DocumentMetadata,
    *,
    document_id: str,
    key: str,
    body: bytes | None = None,
    s3_path: tuple[str, str] | None = None,
    size: int | None = None,
    date_fields: frozenset[str] = frozenset(),
    extra_attributes: Mapping[str, Any] | None = None,
    default_language_code: str | None = None,
    access_control_list: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | Failure:
    """The ``Document`` for ``BatchPutDocument``, or the failure that explains why there is none.

    Give exactly one of ``body`` (inline mode: sent as ``Blob``) or ``s3_path`` (``(bucket, key)``: sent
    as ``S3Path``; pass the listed ``size`` so an empty object is caught too). Passing both or neither
    is a programming error (ValueError); everything else is reported as a failure:

    - ``InvalidMetadata`` naming each bad field: an id outside 1-2048 characters; no ContentType and
      an unknown extension; an attribute with a bad key or value (see :func:`attribute_value`).
    - ``InvalidRequest``, as Kendra would answer, for a 0-byte document.

    Text that is not valid UTF-8 is not checked here: Kendra decides, while indexing.
    ``extra_attributes`` (e.g. the data-source sync attributes) are converted the same way and replace
    metadata attributes of the same name. ``date_fields`` are the index's DATE fields.
    ``default_language_code`` becomes ``_language_code`` when the metadata sets none (the job's
    ``languageCode`` or the stack's ``defaultLanguageCode``). ``access_control_list`` (entries of the
    job's access control file) applies when the metadata sets no access control of its own
    (``AccessControlList``, ``HierarchicalAccessControlList`` or ``AccessControlConfigurationId``): what
    was written for one document is more specific than a rule for its prefix.
    """
    if (body is None) == (s3_path is None):
        raise ValueError("to_document needs exactly one of body (inline) or s3_path (s3 mode)")
    problems = []
    if not 1 <= len(document_id) <= MAX_DOCUMENT_ID_LENGTH:
        problems.append(f"metadata field 'DocumentId': must be 1-{MAX_DOCUMENT_ID_LENGTH} characters "
                        f"(got {len(document_id)})")
    elif problem := document_id_bytes_problem(document_id):
        problems.append(f"metadata field 'DocumentId': {problem}")
    content_type = meta.content_type or content_type_for(key)
    if content_type is None:
        problems.append(
            f"metadata field 'ContentType': missing, and the extension of {key!r} has no default; "
            f"set one of {', '.join(CONTENT_TYPES)}"
        )
    attributes = []
    given = dict(meta.attributes)
    if default_language_code is not None and LANGUAGE_CODE_ATTRIBUTE not in given:
        given[LANGUAGE_CODE_ATTRIBUTE] = default_language_code
    for name, value in {**given, **(extra_attributes or {})}.items():
        try:
            attributes.append({"Key": name, "Value": attribute_value(name, value, date_fields)})
        except InvalidAttribute as exc:
            problems.append(f"metadata field 'Attributes.{name}': {exc}")
    if problems:
        return _invalid(document_id, "; ".join(problems))
    if (len(body) if body is not None else size) == 0:
        return Failure(
            document_id=document_id, error_code="InvalidRequest", error_message=EMPTY_DOCUMENT_MESSAGE
        )

    document: dict[str, Any] = {"Id": document_id}
    if meta.title is not None:
        document["Title"] = meta.title
    if body is not None:
        document["Blob"] = body
    else:
        bucket, object_key = s3_path  # type: ignore[misc]
        document["S3Path"] = {"Bucket": bucket, "Key": object_key}
    document["ContentType"] = content_type
    if attributes:
        document["Attributes"] = attributes
    if meta.access_control_list is not None:
        document["AccessControlList"] = _principals(meta.access_control_list)
    elif access_control_list is not None and not _own_access_control(meta):
        document["AccessControlList"] = list(access_control_list)
    if meta.hierarchical_access_control_list is not None:
        levels = meta.hierarchical_access_control_list
        document["HierarchicalAccessControlList"] = [
            {"PrincipalList": _principals(level.principal_list)} for level in levels
        ]
    if meta.access_control_configuration_id is not None:
        document["AccessControlConfigurationId"] = meta.access_control_configuration_id
    return document


class InvalidAttribute(ValueError):
    """An attribute key or value Kendra would not accept; the message states the rule."""


def attribute_value(name: str, value: Any, date_fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A metadata attribute as a Kendra ``DocumentAttributeValue``; raises :class:`InvalidAttribute`.

    String -> ``StringValue`` (1-2048 characters), except reserved dates and ``date_fields`` ->
    ``DateValue`` (ISO-8601 with a timezone, as an aware ``datetime``); integer -> ``LongValue``;
    list of strings -> ``StringListValue`` (at most 10). Anything else (float, boolean, null, object,
    a list holding a non-string) is rejected rather than guessed at, and so is a reserved attribute
    (``_view_count``, ``_authors``, ...) whose value is not of its fixed type.
    """
    if not (1 <= len(name) <= MAX_ATTRIBUTE_KEY_LENGTH and _ATTRIBUTE_KEY.fullmatch(name)):
        raise InvalidAttribute(
            f"key must be 1-{MAX_ATTRIBUTE_KEY_LENGTH} characters matching [a-zA-Z0-9_][a-zA-Z0-9_-]*"
        )
    if name in DATE_ATTRIBUTES or name in date_fields:
        if not isinstance(value, str):
            raise InvalidAttribute(f"a date must be an ISO-8601 string with a timezone (got {shown(value)})")
        return {"DateValue": _date(value)}
    converted = _converted(value)
    reserved = RESERVED_ATTRIBUTE_TYPES.get(name)
    if reserved is not None and _VALUE_TYPES[next(iter(converted))] != reserved:
        raise InvalidAttribute(
            f"reserved attribute {name} must be {_TYPE_WORDS[reserved]} ({reserved}) (got {shown(value)})"
        )
    return converted


_VALUE_TYPES = {"StringValue": "STRING_VALUE", "LongValue": "LONG_VALUE", "StringListValue": "STRING_LIST_VALUE",
                "DateValue": "DATE_VALUE"}


def _converted(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"StringValue": _string(value)}
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in _LONG_RANGE:
            raise InvalidAttribute(f"integer out of the 64-bit range (got {value})")
        return {"LongValue": value}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if len(value) > MAX_STRING_LIST_VALUES:
            raise InvalidAttribute(
                f"a list of strings holds at most {MAX_STRING_LIST_VALUES} strings, the Kendra model's "
                f"StringListValue limit (got {len(value)})"
            )
        return {"StringListValue": [_string(item) for item in value]}
    raise InvalidAttribute(
        f"must be a string, an integer or a list of strings (got {shown(value)})"
    )


def _string(value: str) -> str:
    if not 1 <= len(value) <= MAX_STRING_VALUE_LENGTH:
        raise InvalidAttribute(f"strings must be 1-{MAX_STRING_VALUE_LENGTH} characters (got {len(value)})")
    return value


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAttribute(f"not an ISO-8601 date-time (got {shown(value)})") from None
    if parsed.tzinfo is None:
        raise InvalidAttribute(f"date {value!r} has no timezone; add one, e.g. 2025-10-05T12:00:00Z")
    try:
        # botocore sends DateValue as epoch seconds, converting to UTC first: a date that leaves the
        # datetime range there (0001-01-01T00:00+14:00) would make the whole call fail to serialize.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidAttribute(f"date {value!r} is out of range in UTC (years 1-9999)") from None


def _own_access_control(meta: DocumentMetadata) -> bool:
    return any(value is not None for value in (meta.access_control_list, meta.hierarchical_access_control_list,
                                               meta.access_control_configuration_id))


def _principals(principals: list[Principal]) -> list[dict[str, Any]]:
    return [principal.model_dump(by_alias=True, exclude_none=True) for principal in principals]


def _valid_document_id(document_id: str) -> bool:
    return 1 <= len(document_id) <= MAX_DOCUMENT_ID_LENGTH and document_id_bytes_problem(document_id) is None


def _invalid(document_id: str, message: str) -> Failure:
    return Failure(document_id=document_id, error_code=ErrorCode.INVALID_METADATA, error_message=message)
