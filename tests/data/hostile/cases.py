"""The hostile-input corpus: malformed manifests, metadata files, deletes files and odd keys, as data.

Each case lists the files of a job (keys relative to the job prefix ``P``, bytes exactly as uploaded) and
what the pipeline must make of them:

- :data:`DOCUMENT_CASES` are documents of one job (``P/batches/<case>...``). Each names, per document it
  requests, the expected outcome: put (in the index), or one failure row with its ``errorCode`` and a
  fragment of its ``errorMessage``. ``sent`` says whether Kendra may see the document (its own refusals
  and indexing failures); a failure the pipeline finds itself must never reach Kendra.
- :data:`JOB_CASES` are whole jobs: a broken manifest, layout keys or deletes file. Most must end
  ``FAILED`` with an error naming the problem and nothing sent; some must succeed as written.

``tests/functions/test_hostile_corpus.py`` checks the cases against the pure functions (manifest,
metadata and pairing); ``tests/sandbox/test_hostile.py`` runs them end to end through both options, with
the stack config :data:`STACK_CONFIG` and the index fields :data:`INDEX_FIELDS`.
"""

from __future__ import annotations

import codecs
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Small per-document limit so the size cases stay small (``--config maxDocumentBytes=1000``).
MAX_DOCUMENT_BYTES = 1000
STACK_CONFIG: dict[str, Any] = {"maxDocumentBytes": MAX_DOCUMENT_BYTES}
#: The index's custom fields (``--index-fields``): an undeclared attribute is Kendra's InvalidRequest.
INDEX_FIELDS = {"department": "STRING_VALUE", "level": "LONG_VALUE", "tags": "STRING_LIST_VALUE",
                "reviewed_at": "DATE_VALUE"}
DATE_FIELDS = frozenset(name for name, kind in INDEX_FIELDS.items() if kind == "DATE_VALUE")
BATCHES = "batches/"
BODY = b"hostile corpus document\n"


@dataclass(frozen=True)
class Outcome:
    """One requested document: put when ``code`` is None, else its failure row."""

    document_id: str
    code: str | None = None
    message: str = ""
    #: Kendra may receive it (its own InvalidRequest, an indexing failure, or a put).
    sent: bool = False
    #: Where the outcome is decided, for the unit tests: "metadata" (parse_metadata / to_document),
    #: "pairing", or "pipeline" (packing, duplicates, Kendra: end to end only).
    stage: str = "metadata"


@dataclass(frozen=True)
class DocumentCase:
    name: str
    files: dict[str, bytes]
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True)
class JobCase:
    """A job of its own. ``error`` is a fragment of the job's error (status FAILED); None: it runs."""

    name: str
    files: dict[str, bytes]
    error: str | None = None
    status: str = "FAILED"
    #: The job id the report is written under; None: the sandbox derives it (invalid jobId).
    job_id: str | None = None
    #: "manifest": parse_manifest refuses it; "deletes": read_deletes refuses it; "plan": planning does.
    stage: str = "manifest"
    documents: dict[str, int] = field(default_factory=dict)
    deletes: dict[str, int] = field(default_factory=dict)
    #: (documentId, errorCode, message fragment) of every expected failure row.
    rows: tuple[tuple[str, str, str], ...] = ()
    #: Upload under this prefix instead of a generated one.
    prefix: str | None = None
    #: A job that runs: its document ``<name>-doc`` ends in the index.
    indexed: bool = True


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _meta_key(document_key: str) -> str:
    return document_key + ".metadata.json"


def _doc(name: str, meta: Any, *, body: bytes = BODY, ext: str = ".txt",
         code: str | None = None, message: str = "", sent: bool | None = None,
         document_id: str | None = None, stage: str = "metadata") -> DocumentCase:
    """A document ``batches/<name><ext>`` with metadata ``meta`` (bytes as they are, else JSON)."""
    key = f"{BATCHES}{name}{ext}"
    raw = meta if isinstance(meta, bytes) else dumps(meta)
    outcome = Outcome(document_id or name, code, message, sent=code is None if sent is None else sent,
                      stage=stage)
    return DocumentCase(name, {key: body, _meta_key(key): raw}, (outcome,))


def _attr(name: str, attributes: Any, code: str | None = "InvalidMetadata", message: str = "",
          **kwargs: Any) -> DocumentCase:
    return _doc(name, {"Title": name, "Attributes": attributes}, code=code, message=message, **kwargs)


def _acl(name: str, acl: Any, message: str, code: str | None = "InvalidMetadata") -> DocumentCase:
    return _doc(name, {"AccessControlList": acl}, code=code, message=message)


PRINCIPAL = {"Name": "hr-team", "Type": "GROUP", "Access": "ALLOW"}
LEVEL = {"PrincipalList": [PRINCIPAL]}
NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")
#: A key of about 1,000 characters under ``P/batches/``, in segments a file system accepts.
#: S3 keys are at most 1,024 bytes, so the metadata key (``jobs/NNN-documents/batches/<id>.txt.metadata.json``)
#: must fit too.
LONG_PARTS = ["k" * 199] * 4 + ["k" * 150]
LONG_ID = "/".join(LONG_PARTS)
DEEP_ID = "/".join(f"level{n:02d}" for n in range(1, 21)) + "/deep"

DOCUMENT_CASES: tuple[DocumentCase, ...] = (
    # -- metadata: wrong types, nulls, nested objects --------------------------------------------------
    _doc("m-title-number", {"Title": 5}, code="InvalidMetadata",
         message="metadata field 'Title': input should be a valid string (got 5)"),
    _doc("m-attributes-null", {"Attributes": None}, code="InvalidMetadata",
         message="metadata field 'Attributes': input should be a valid dictionary (got null)"),
    _doc("m-attributes-array", {"Attributes": [{"department": "hr"}]}, code="InvalidMetadata",
         message="metadata field 'Attributes': input should be a valid dictionary (got [{\"department\""),
    _attr("m-attribute-null", {"department": None},
          message="metadata field 'Attributes.department': must be a string, an integer or a list of strings "
                  "(got null)"),
    _attr("m-attribute-nested", {"department": {"name": "hr"}},
          message="'Attributes.department': must be a string, an integer or a list of strings "
                  "(got {\"name\": \"hr\"})"),
    _attr("m-attribute-float", {"level": 1.5}, message="'Attributes.level': must be a string, an integer or a "
                                                       "list of strings (got 1.5)"),
    _attr("m-attribute-boolean", {"department": True}, message="'Attributes.department': must be a string, an "
                                                               "integer or a list of strings (got true)"),
    _attr("m-attribute-list-of-numbers", {"tags": [1, 2]},
          message="'Attributes.tags': must be a string, an integer or a list of strings (got [1, 2])"),
    _attr("m-attribute-key-space", {"bad key": "x"},
          message="'Attributes.bad key': key must be 1-200 characters matching [a-zA-Z0-9_][a-zA-Z0-9_-]*"),
    _attr("m-attribute-integer-64-bit", {"level": 2**63}, message="'Attributes.level': integer out of the 64-bit "
                                                                  "range (got 9223372036854775808)"),
    _attr("m-reserved-type", {"_view_count": "5"},
          message="reserved attribute _view_count must be an integer (LONG_VALUE) (got '5')"),
    _doc("m-document-id-number", {"DocumentId": 7}, code="InvalidMetadata",
         message="metadata field 'DocumentId': input should be a valid string (got 7)"),
    _doc("m-document-id-empty", {"DocumentId": ""}, code="InvalidMetadata",
         message="metadata field 'DocumentId': string should have at least 1 character (got 0 characters)"),
    _doc("m-document-id-2049", {"DocumentId": "i" * 2049}, code="InvalidMetadata",
         message="metadata field 'DocumentId': string should have at most 2048 characters (got 2049 characters)"),
    _doc("m-document-id-1024-bytes", {"DocumentId": "m-1024-" + "b" * 1017}, document_id="m-1024-" + "b" * 1017),
    _doc("m-document-id-1025-bytes", {"DocumentId": "b" * 1025}, code="InvalidMetadata",
         message="metadata field 'DocumentId': must be at most 1024 bytes in UTF-8, the documents table's key limit "
                 "(got 1025 bytes in 1025 characters)"),
    _doc("m-document-id-multibyte", {"DocumentId": "\u00e9" * 513}, code="InvalidMetadata",
         message="must be at most 1024 bytes in UTF-8, the documents table's key limit (got 1026 bytes in 513 "
                 "characters)"),
    _doc("m-document-id-2048", {"DocumentId": "i" * 2048}, code="InvalidMetadata",
         message="must be at most 1024 bytes in UTF-8"),
    _doc("m-nulls-mean-absent", {"DocumentId": None, "Title": None, "ContentType": None, "AccessControlList": None}),
    _doc("m-access-control-configuration-id-bad", {"AccessControlConfigurationId": "not an id!"},
         code="InvalidMetadata", message="metadata field 'AccessControlConfigurationId': string should match pattern"),
    _doc("m-unknown-key", {"Atributes": {"department": "hr"}}, code="InvalidMetadata",
         message="metadata field 'Atributes': unknown key (allowed: DocumentId, Title, ContentType, Attributes"),
    # -- metadata: string and list limits -----------------------------------------------------------
    _attr("m-string-2049", {"department": "s" * 2049},
          message="'Attributes.department': strings must be 1-2048 characters (got 2049)"),
    _attr("m-string-2048", {"department": "s" * 2048}, code=None),
    _attr("m-string-empty", {"department": ""},
          message="'Attributes.department': strings must be 1-2048 characters (got 0)"),
    _attr("m-list-11", {"tags": [f"t{n}" for n in range(11)]},
          message="'Attributes.tags': a list of strings holds at most 10 strings, the Kendra model's "
                  "StringListValue limit (got 11)"),
    _attr("m-list-10", {"tags": [f"t{n}" for n in range(10)]}, code=None),
    _attr("m-list-empty-string", {"tags": ["a", ""]},
          message="'Attributes.tags': strings must be 1-2048 characters (got 0)"),
    # -- metadata: dates ---------------------------------------------------------------------------
    _attr("m-date-utc", {"reviewed_at": "2025-10-05T12:00:00Z", "_created_at": "2025-10-05T12:00:00Z"},
          code=None),
    _attr("m-date-offset", {"reviewed_at": "2025-10-05T12:00:00+02:00"}, code=None),
    _attr("m-date-space-separator", {"reviewed_at": "2025-10-05 12:00:00+00:00"}, code=None),
    _attr("m-date-basic-format", {"reviewed_at": "20251005T120000Z"}, code=None),
    _attr("m-date-nanoseconds", {"_last_updated_at": "2025-10-05T12:00:00.123456789Z"}, code=None),
    _attr("m-date-no-timezone", {"reviewed_at": "2025-10-05T12:00:00"},
          message="'Attributes.reviewed_at': date '2025-10-05T12:00:00' has no timezone; add one"),
    _attr("m-date-only", {"_created_at": "2025-10-05"},
          message="'Attributes._created_at': date '2025-10-05' has no timezone; add one"),
    _attr("m-date-epoch-number", {"reviewed_at": 1759665600},
          message="'Attributes.reviewed_at': a date must be an ISO-8601 string with a timezone (got 1759665600)"),
    _attr("m-date-epoch-string", {"reviewed_at": "1759665600"},
          message="'Attributes.reviewed_at': not an ISO-8601 date-time (got '1759665600')"),
    _attr("m-date-us-format", {"reviewed_at": "10/05/2025"},
          message="'Attributes.reviewed_at': not an ISO-8601 date-time (got '10/05/2025')"),
    _attr("m-date-rfc-2822", {"_created_at": "Sun, 05 Oct 2025 12:00:00 GMT"},
          message="'Attributes._created_at': not an ISO-8601 date-time (got 'Sun, 05 Oct 2025 12:00:00 GMT')"),
    _attr("m-date-month-13", {"reviewed_at": "2025-13-05T12:00:00Z"},
          message="'Attributes.reviewed_at': not an ISO-8601 date-time (got '2025-13-05T12:00:00Z')"),
    _attr("m-date-overflows-utc-low", {"_created_at": "0001-01-01T00:00:00+14:00"},
          message="'Attributes._created_at': date '0001-01-01T00:00:00+14:00' is out of range in UTC"),
    _attr("m-date-overflows-utc-high", {"reviewed_at": "9999-12-31T23:59:59-14:00"},
          message="'Attributes.reviewed_at': date '9999-12-31T23:59:59-14:00' is out of range in UTC"),
    _attr("m-date-year-1-utc", {"reviewed_at": "0001-01-01T00:00:00Z"}, code=None),
    # -- metadata: access control -----------------------------------------------------------------------
    _acl("m-acl-type-lowercase", [{**PRINCIPAL, "Type": "group"}],
         "metadata field 'AccessControlList[0].Type': input should be 'USER' or 'GROUP' (got 'group')"),
    _acl("m-acl-type-unknown", [{**PRINCIPAL, "Type": "ROLE"}],
         "metadata field 'AccessControlList[0].Type': input should be 'USER' or 'GROUP' (got 'ROLE')"),
    _acl("m-acl-access-typo", [{**PRINCIPAL, "Access": "ALOW"}],
         "metadata field 'AccessControlList[0].Access': input should be 'ALLOW' or 'DENY' (got 'ALOW')"),
    _acl("m-acl-name-missing", [{"Type": "USER", "Access": "DENY"}],
         "metadata field 'AccessControlList[0].Name': required"),
    _acl("m-acl-name-lowercase-key", [{"name": "ana", "Type": "USER", "Access": "ALLOW"}],
         "metadata field 'AccessControlList[0].name': unknown key"),
    _acl("m-acl-name-201", [{**PRINCIPAL, "Name": "n" * 201}],
         "metadata field 'AccessControlList[0].Name': string should have at most 200 characters"),
    _acl("m-acl-not-a-list", PRINCIPAL, "metadata field 'AccessControlList': input should be a valid list"),
    _acl("m-acl-201", [{**PRINCIPAL, "Name": f"g{n}"} for n in range(201)],
         "metadata field 'AccessControlList': list should have at most 200 items after validation, not 201"),
    _acl("m-acl-200", [{**PRINCIPAL, "Name": f"g{n}"} for n in range(200)], "", code=None),
    _doc("m-hierarchy-31", {"HierarchicalAccessControlList": [LEVEL] * 31}, code="InvalidMetadata",
         message="metadata field 'HierarchicalAccessControlList': list should have at most 30 items after "
                 "validation, not 31"),
    _doc("m-hierarchy-30", {"HierarchicalAccessControlList": [LEVEL] * 30}),
    _doc("m-hierarchy-principals-misnamed", {"HierarchicalAccessControlList": [{"Principals": [PRINCIPAL]}]},
         code="InvalidMetadata", message="metadata field 'HierarchicalAccessControlList[0].PrincipalList': required"),
    _doc("m-hierarchy-empty", {"HierarchicalAccessControlList": []}, code="InvalidMetadata",
         message="'HierarchicalAccessControlList': list should have at least 1 item after validation, not 0"),
    # -- metadata: content types -----------------------------------------------------------------------
    _doc("m-content-type-lowercase", {"ContentType": "pdf"}, code="InvalidMetadata",
         message="metadata field 'ContentType': input should be 'PDF', 'HTML', 'MS_WORD'"),
    _doc("m-content-type-unknown", {"ContentType": "DOCX"}, code="InvalidMetadata",
         message="(got 'DOCX')"),
    _doc("m-content-type-none-unknown-extension", {"Title": "x"}, ext=".xyz", code="InvalidMetadata",
         message="metadata field 'ContentType': missing, and the extension of "),
    _doc("m-content-type-from-metadata", {"ContentType": "PLAIN_TEXT"}, ext=".xyz"),
    # -- metadata: the file itself ---------------------------------------------------------------------
    _doc("m-duplicate-json-key", b'{"Title": "a", "Title": "b"}', code="InvalidMetadata",
         message="metadata field 'Title': appears more than once"),
    _doc("m-bom", codecs.BOM_UTF8 + b'{"Title": "bom"}', code="InvalidMetadata",
         message="metadata starts with a UTF-8 byte order mark; save it as UTF-8 without BOM"),
    _doc("m-invalid-utf8", b'{"Title": "caf\xe9"}', code="InvalidMetadata",
         message="metadata is not valid UTF-8: byte 0xe9 at offset 14"),
    _doc("m-surrogate-document-id", b'{"DocumentId": "emp-\\ud800", "ContentType": "CSV!"}', code="InvalidMetadata",
         message="metadata field 'DocumentId': holds the escape \\ud800, half of a UTF-16 surrogate pair, which is "
                 "not a character"),
    _doc("m-surrogate-title", b'{"Title": "caf\\udce9"}', code="InvalidMetadata",
         message="metadata field 'Title': holds the escape \\udce9, half of a UTF-16 surrogate pair"),
    _doc("m-surrogate-attribute-key", b'{"Attributes": {"dept\\udfff": "hr"}}', code="InvalidMetadata",
         message="metadata field 'Attributes': a key holds the escape \\udfff"),
    _doc("m-surrogate-pair-is-fine", b'{"Title": "\\ud83d\\ude00 an emoji, escaped"}'),
    _doc("m-json-array", b'[{"Title": "a"}]', code="InvalidMetadata",
         message="metadata must be a JSON object (got array)"),
    _doc("m-empty-file", b"", code="InvalidMetadata", message="metadata is empty (0 bytes); it must be a JSON object"),
    _doc("m-not-json", b"Title: yaml?", code="InvalidMetadata",
         message="metadata is not valid JSON: line 1 column 1: Expecting value"),
    _doc("m-nan", b'{"Attributes": {"level": NaN}}', code="InvalidMetadata",
         message="metadata is not valid JSON: NaN is not a JSON number"),
    # -- Kendra's own refusals pass through verbatim (sent, never indexed) ------------------------------
    _attr("k-field-type-mismatch", {"level": "12"}, code="InvalidRequest", sent=True, stage="pipeline",
          message="index field level is of type LONG_VALUE"),
    _attr("k-undeclared-field", {"colour": "red"}, code="InvalidRequest", sent=True, stage="pipeline",
          message="Attribute colour is not defined at the index level"),
    _doc("k-text-not-utf8", {"Title": "latin-1"}, body="café".encode("latin-1"), code="IndexingFailed",
         sent=True, stage="pipeline", message="not valid UTF-8"),
    # -- documents: sizes ------------------------------------------------------------------------------
    _doc("s-empty-document", {"Title": "empty"}, body=b"", code="InvalidRequest",
         message="document is empty (0 bytes); Kendra rejects empty documents"),
    _doc("s-exact-limit", {"Title": "exact"}, body=b"e" * MAX_DOCUMENT_BYTES, stage="pipeline"),
    _doc("s-one-over-limit", {"Title": "over"}, body=b"o" * (MAX_DOCUMENT_BYTES + 1), code="DocumentTooLarge",
         stage="pipeline", message=f"document is {MAX_DOCUMENT_BYTES + 1:,} bytes, over the limit of "
                                   f"{MAX_DOCUMENT_BYTES:,} bytes per document"),
    # -- odd keys ----------------------------------------------------------------------------------------
    _doc("o-spaces in the name", {"Title": "spaces"}),
    _doc("o-tab\tin-the-name", {"Title": "a tab"}),
    _doc("o-upper-extension", {"Title": "TXT"}, ext=".TXT"),
    _doc("o-no-extension", {"Title": "no extension"}, ext="", code="InvalidMetadata",
         message="metadata field 'ContentType': missing, and the extension of "),
    _doc("o-backslash\\and-dots..", {"Title": "backslash"}),
    _doc(f"o-norm-{NFC}", {"Title": "NFC"}),
    _doc(f"o-norm-{NFD}", {"Title": "NFD: another key, so another document"}),
    _doc("o-percent-100%-%41", {"Title": "percent"}),
    _doc("o-plus-a+b", {"Title": "plus"}),
    _doc("o-hash-a#b", {"Title": "hash"}),
    _doc("o-mixed ?&=;,:@!$'()*[]", {"Title": "punctuation"}),
    _doc(LONG_ID, {"Title": "a key of 1,000 characters"}),
    _doc(DEEP_ID, {"Title": "20 levels deep"}),
    # -- pairing and DocumentId rules ---------------------------------------------------------------------
    DocumentCase("p-nfd-document-nfc-metadata", {
        f"{BATCHES}p-{NFD}.txt": BODY, _meta_key(f"{BATCHES}p-{NFC}.txt"): dumps({"DocumentId": "p-nfc-meta"}),
    }, (Outcome(f"p-{NFD}", "MissingMetadata", "has no metadata object", stage="pairing"),
        Outcome("p-nfc-meta", "MissingDocument", "has no document object", stage="pairing"))),
    DocumentCase("p-missing-metadata", {f"{BATCHES}p-missing-metadata.txt": BODY},
                 (Outcome("p-missing-metadata", "MissingMetadata", "has no metadata object", stage="pairing"),)),
    DocumentCase("p-missing-document", {_meta_key(f"{BATCHES}p-missing-document.txt"): dumps({"Title": "lone"})},
                 (Outcome("p-missing-document", "MissingDocument", "has no document object", stage="pairing"),)),
    DocumentCase("p-document-named-like-metadata", {f"{BATCHES}p-notes.metadata.json": b"{}"},
                 (Outcome("p-notes", "MissingDocument", "has no document object", stage="pairing"),)),
    DocumentCase("p-metadata-suffix-uppercase", {
        f"{BATCHES}p-upper.txt": BODY, f"{BATCHES}p-upper.txt.METADATA.JSON": dumps({"Title": "not metadata"}),
    }, (Outcome("p-upper", "MissingMetadata", "has no metadata object", stage="pairing"),
        Outcome("p-upper.txt.METADATA", "MissingMetadata", "has no metadata object", stage="pairing"))),
    DocumentCase("p-duplicate-document-id", {
        f"{BATCHES}p-dup-a.txt": BODY, _meta_key(f"{BATCHES}p-dup-a.txt"): dumps({"DocumentId": "p-dup"}),
        f"{BATCHES}p-dup-b.txt": BODY, _meta_key(f"{BATCHES}p-dup-b.txt"): dumps({"DocumentId": "p-dup"}),
    }, (Outcome("p-dup", None, sent=True, stage="pipeline"),
        Outcome("p-dup", "DuplicateDocumentId", "already claimed by a document earlier by S3 key", stage="pipeline"))),
)


# -- whole jobs -------------------------------------------------------------------------------------------------

MANIFEST = "_control/manifest.json"


def _job(name: str, manifest: Any, error: str | None, *, job_id: str | None = "", extra: dict[str, bytes] | None = None,
         stage: str = "manifest", **kwargs: Any) -> JobCase:
    """A job with one document (``batches/<name>-doc.txt``) and ``manifest`` (bytes as they are, else JSON
    with ``schemaVersion`` and ``jobId`` = ``name`` unless given)."""
    # A source of its own per job, so the jobs of the corpus never wait for one another's lock.
    raw = manifest if isinstance(manifest, bytes) else dumps({"schemaVersion": 1, "jobId": name, "source": name,
                                                               **manifest})
    doc = f"{BATCHES}{name}-doc.txt"
    files = {doc: BODY, _meta_key(doc): dumps({"Title": name}), **(extra or {}), MANIFEST: raw}
    return JobCase(name, files, error, job_id=name if job_id == "" else job_id, stage=stage, **kwargs)


def _bad_manifest(name: str, fields: dict[str, Any], error: str, **kwargs: Any) -> JobCase:
    return _job(name, fields, error, **kwargs)


SUCCEEDED = {"status": "SUCCEEDED", "documents": {"requested": 1, "put": 1, "failed": 0}}

JOB_CASES: tuple[JobCase, ...] = (
    # -- the manifest file itself --------------------------------------------------------------------
    _job("j-empty", b"", "manifest is empty (0 bytes); it must be a JSON object", job_id=None),
    _job("j-whitespace", b" \r\n\t", "manifest is empty (4 bytes of whitespace)", job_id=None),
    _job("j-not-json", b"jobId: j-not-json", "manifest is not valid JSON: line 1 column 1", job_id=None),
    _job("j-truncated", b'{"schemaVersion": 1, "jobId": "j-truncated"', "manifest is not valid JSON: line 1 column 44",
         job_id=None),
    _job("j-array", b'[{"schemaVersion": 1, "jobId": "j-array"}]', "manifest must be a JSON object (got array)",
         job_id=None),
    _job("j-invalid-utf8", b'{"schemaVersion": 1, "jobId": "j-invalid-utf8", "source": "\xff"}',
         "manifest is not valid UTF-8: byte 0xff at offset", job_id=None),
    _job("j-bom", codecs.BOM_UTF8 + dumps({"schemaVersion": 1, "jobId": "j-bom"}), None, **SUCCEEDED),
    _job("j-duplicate-key", b'{"schemaVersion": 1, "jobId": "j-duplicate-key", "force": true, "force": false}',
         "manifest field 'force': appears more than once", job_id=None),
    _job("j-huge", b'{"schemaVersion": 1, "jobId": "j-huge"' + b" " * (4 * 1024 * 1024) + b"}",
         "bytes, more than the 4194304 allowed; list many deletes in a deletesKey file"),
    _bad_manifest("j-unknown-key", {"expectedDocs": 1},
                  "manifest field 'expectedDocs': unknown key (allowed: schemaVersion, jobId, source"),
    _bad_manifest("j-schema-version-string", {"schemaVersion": "1"},
                  "manifest field 'schemaVersion': must be 1 (the only schema version) (got '1')"),
    _job("j-schema-version-missing", b'{"jobId": "j-schema-version-missing"}',
         "manifest field 'schemaVersion': required"),
    _bad_manifest("j-expected-documents-string", {"expectedDocuments": "1"},
                  "manifest field 'expectedDocuments': input should be a valid integer (got '1')"),
    _bad_manifest("j-expected-documents-negative", {"expectedDocuments": -1},
                  "manifest field 'expectedDocuments': input should be greater than or equal to 0 (got -1)"),
    _bad_manifest("j-force-string", {"force": "true"}, "manifest field 'force': input should be a valid boolean "
                                                       "(got 'true')"),
    _bad_manifest("j-deletes-string", {"deletes": "a,b"}, "manifest field 'deletes': input should be a valid list"),
    _bad_manifest("j-deletes-null-item", {"deletes": ["a", None]},
                  "manifest field 'deletes[1]': input should be a valid string (got null)"),
    _bad_manifest("j-deletes-2049", {"deletes": ["d" * 2049]},
                  "manifest field 'deletes[0]': string should have at most 2048 characters (got 2049 characters)"),
    _bad_manifest("j-deletes-multibyte", {"deletes": ["\u00e9" * 600]},
                  "manifest field 'deletes[0]': must be at most 1024 bytes in UTF-8, the documents table's key limit "
                  "(got 1200 bytes in 600 characters)"),
    _job("j-surrogate-in-deletes", b'{"schemaVersion": 1, "jobId": "j-surrogate-in-deletes", "deletes": ["x\\ud800"]}',
         "manifest field 'deletes[0]': holds the escape \\ud800, half of a UTF-16 surrogate pair", job_id=None),
    _bad_manifest("j-source-empty", {"source": ""}, "manifest field 'source': string should have at least 1 character"),
    _bad_manifest("j-mode-uppercase", {"mode": "FULL"}, "manifest field 'mode': input should be 'incremental' or "
                                                        "'full' (got 'FULL')"),
    # -- bad job ids -------------------------------------------------------------------------------------
    _bad_manifest("j-id-dot", {"jobId": "."}, "manifest field 'jobId': must be 1-80 characters of [A-Za-z0-9._-], "
                                             "starting with a letter or digit (got '.')", job_id=None),
    _bad_manifest("j-id-dotdot", {"jobId": ".."}, "starting with a letter or digit (got '..')", job_id=None),
    _bad_manifest("j-id-81", {"jobId": "j" * 81}, "manifest field 'jobId': must be 1-80 characters", job_id=None),
    _bad_manifest("j-id-leading-dash", {"jobId": "-j"}, "starting with a letter or digit (got '-j')", job_id=None),
    _bad_manifest("j-id-slash", {"jobId": "teams/j"}, "(got 'teams/j')", job_id=None),
    _bad_manifest("j-id-unicode", {"jobId": "jöb-1"}, "(got 'jöb-1')", job_id=None),
    _bad_manifest("j-id-number", {"jobId": 11}, "manifest field 'jobId': input should be a valid string (got 11)",
                  job_id=None),
    _job("j-id-missing", b'{"schemaVersion": 1}', "manifest field 'jobId': required", job_id=None),
    # -- deletesKey ---------------------------------------------------------------------------------------
    _bad_manifest("j-deletes-key-missing", {"deletesKey": "deletes.txt"}, "deletes.txt does not exist",
                  stage="plan"),
    _bad_manifest("j-deletes-key-parent", {"deletesKey": "../other/deletes.txt"},
                  "manifest field 'deletesKey': must be a relative path under the job prefix (got '../other/"),
    _bad_manifest("j-deletes-key-absolute", {"deletesKey": "/deletes.txt"},
                  "manifest field 'deletesKey': must be a relative path under the job prefix (got '/deletes.txt')"),
    _bad_manifest("j-deletes-key-manifest", {"deletesKey": MANIFEST},
                  "manifest field 'deletesKey': must not be the manifest"),
    _bad_manifest("j-deletes-key-document", {"deletesKey": "batches/j-deletes-key-document-doc.txt"},
                  "manifest field 'deletesKey': must not be under documentsPrefix 'batches/', where it would be a "
                  "document of the job"),
    _bad_manifest("j-deletes-key-metadata", {"deletesKey": "batches/j-deletes-key-metadata-doc.txt.metadata.json"},
                  "manifest field 'deletesKey': must not be a metadata file (*.metadata.json)"),
    _bad_manifest("j-deletes-key-empty", {"deletesKey": ""},
                  "manifest field 'deletesKey': string should have at least 1 character"),
    # -- deletes files ---------------------------------------------------------------------------------------
    _job("j-deletes-file-crlf-bom-blank-duplicates", {"deletesKey": "deletes.txt", "deletes": ["gone-3"]}, None,
         extra={"deletes.txt": codecs.BOM_UTF8 + b"gone-1\r\n\r\n  gone-2  \r\ngone-1\n\n\ngone-3\r\n"},
         status="SUCCEEDED", documents={"requested": 1, "put": 1, "failed": 0},
         deletes={"requested": 3, "deleted": 3, "failed": 0}),
    _job("j-deletes-file-not-utf8", {"deletesKey": "deletes.txt"}, "deletes file is not valid UTF-8: byte at offset 4",
         extra={"deletes.txt": b"gone\xff\n"}, stage="deletes"),
    _job("j-deletes-file-id-2049", {"deletesKey": "deletes.txt"},
         "deletes file line 2: the id is 2049 characters; a DocumentId has at most 2048",
         extra={"deletes.txt": b"ok-1\n" + b"d" * 2049 + b"\n"}, stage="deletes"),
    _job("j-deletes-file-id-1025-bytes", {"deletesKey": "deletes.txt"},
         "deletes file line 3: the id must be at most 1024 bytes in UTF-8, the documents table's key limit",
         extra={"deletes.txt": b"ok-1\n\n" + b"d" * 1025 + b"\n"}, stage="deletes"),
    # -- layout keys ------------------------------------------------------------------------------------------
    _bad_manifest("j-documents-prefix-parent", {"documentsPrefix": "../elsewhere/"},
                  "manifest field 'documentsPrefix': must stay under the job prefix: no '.', '..' or empty path "
                  "segments"),
    _bad_manifest("j-documents-prefix-absolute", {"documentsPrefix": "/batches/"},
                  "manifest field 'documentsPrefix': must be relative to the job prefix (no leading '/')"),
    _bad_manifest("j-documents-prefix-control", {"documentsPrefix": "_control/"},
                  "manifest field 'documentsPrefix': must not be under _control/"),
    _bad_manifest("j-metadata-prefix-overlap", {"metadataPrefix": "batches/meta/"},
                  "manifest field 'metadataPrefix': overlaps documentsPrefix 'batches/' (one folder is inside the "
                  "other)"),
    _bad_manifest("j-documents-inside-metadata-prefix", {"documentsPrefix": "meta/docs/", "metadataPrefix": "meta/"},
                  "manifest field 'metadataPrefix': overlaps documentsPrefix 'meta/docs/'"),
    _bad_manifest("j-metadata-prefix-absolute", {"metadataPrefix": "/meta/"},
                  "manifest field 'metadataPrefix': must be relative to the job prefix (no leading '/')"),
    _bad_manifest("j-metadata-prefix-parent", {"metadataPrefix": "a/../../b/"},
                  "manifest field 'metadataPrefix': must stay under the job prefix"),
    _bad_manifest("j-include-unclosed-bracket", {"include": ["**/*.[tx"]},
                  "manifest field 'include': pattern 0 '**/*.[tx' does not parse: unclosed '['"),
    _bad_manifest("j-exclude-bad-double-star", {"exclude": ["drafts/**x"]},
                  "manifest field 'exclude': pattern 0 'drafts/**x' does not parse: '**' must be a whole path segment"),
    _bad_manifest("j-include-101", {"include": [f"p{n}/**" for n in range(101)]},
                  "manifest field 'include': list should have at most 100 items after validation, not 101"),
    _bad_manifest("j-include-not-a-list", {"include": "**/*.txt"},
                  "manifest field 'include': input should be a valid list"),
    _bad_manifest("j-language-code-bad", {"languageCode": "english!"},
                  "manifest field 'languageCode': string should match pattern"),
    _bad_manifest("j-language-code-number", {"languageCode": 7},
                  "manifest field 'languageCode': input should be a valid string (got 7)"),
    _bad_manifest("j-access-control-key-missing", {"accessControlKey": "acl.json"},
                  "acl.json (accessControlKey) does not exist; nothing was sent to Kendra", stage="plan"),
    _job("j-access-control-file-broken", {"accessControlKey": "acl.json"}, "field 'aclEntries': required",
         extra={"acl.json": dumps([{"keyPrefix": "s3://bucket/"}])}, stage="plan"),
    _job("j-access-control-file-empty", {"accessControlKey": "acl.json"},
         "is empty (0 bytes); it must be a JSON array of {keyPrefix, aclEntries}; nothing was sent to Kendra",
         extra={"acl.json": b""}, stage="plan"),
    _job("j-access-control-file-object", {"accessControlKey": "acl.json"},
         "acl.json must be a JSON array of {keyPrefix, aclEntries} (got object)",
         extra={"acl.json": dumps({"keyPrefix": "s3://bucket/", "aclEntries": [PRINCIPAL]})}, stage="plan"),
    _job("j-access-control-entry-not-object", {"accessControlKey": "acl.json"},
         "acl.json entry 1: must be an object {keyPrefix, aclEntries} (got string)",
         extra={"acl.json": dumps([{"keyPrefix": "s3://bucket/", "aclEntries": [PRINCIPAL]}, "s3://bucket/hr/"])},
         stage="plan"),
    _job("j-access-control-no-scheme", {"accessControlKey": "acl.json"},
         "acl.json entry 0 field 'keyPrefix': must start with s3:// (got 'hr/')",
         extra={"acl.json": dumps([{"keyPrefix": "hr/", "aclEntries": [PRINCIPAL]}])}, stage="plan"),
    _job("j-access-control-type-typo", {"accessControlKey": "acl.json"},
         "acl.json entry 0 field 'aclEntries[0].Type': input should be 'USER' or 'GROUP' (got 'Group')",
         extra={"acl.json": dumps([{"keyPrefix": "s3://bucket/", "aclEntries": [{**PRINCIPAL, "Type": "Group"}]}])},
         stage="plan"),
    _job("j-access-control-201", {"accessControlKey": "acl.json"},
         "acl.json entry 0 field 'aclEntries': list should have at most 200 items after validation, not 201",
         extra={"acl.json": dumps([{"keyPrefix": "s3://bucket/",
                                    "aclEntries": [{**PRINCIPAL, "Name": f"g{n}"} for n in range(201)]}])},
         stage="plan"),
    _job("j-access-control-bom", {"accessControlKey": "acl.json"}, None,
         extra={"acl.json": codecs.BOM_UTF8 + dumps([{"keyPrefix": "s3://bucket/", "aclEntries": [PRINCIPAL]}])},
         **SUCCEEDED),
    # -- what the job finds -------------------------------------------------------------------------------
    _bad_manifest("j-expected-documents-wrong", {"expectedDocuments": 2},
                  "expectedDocuments is 2 but 1 documents were found; nothing was sent to Kendra", stage="plan"),
    _bad_manifest("j-documents-elsewhere", {"documentsPrefix": "docs/"},
                  "no documents under s3://", stage="plan"),
    _job("j-put-and-delete", {"deletes": ["j-put-and-delete-doc"]}, None, status="COMPLETED_WITH_FAILURES",
         indexed=False, documents={"requested": 1, "put": 0, "failed": 1},
         deletes={"requested": 1, "deleted": 0, "failed": 1},
         rows=(("j-put-and-delete-doc", "ConflictingOperation", "operation put: DocumentId 'j-put-and-delete-doc' "
                                                                "is both put and deleted in this job; neither is sent"),
               ("j-put-and-delete-doc", "ConflictingOperation", "operation delete: "))),
    _job("j-metadata-not-required", {"metadataRequired": False}, None, status="COMPLETED_WITH_FAILURES",
         # Without metadata, bare.txt and bare.xyz both get the DocumentId "bare": the first by key wins.
         extra={"batches/bare.txt": BODY, "batches/bare.xyz": BODY, "batches/odd.xyz": BODY},
         documents={"requested": 4, "put": 2, "failed": 2},
         rows=(("bare", "DuplicateDocumentId", "/batches/bare.xyz' claims DocumentId 'bare', already claimed"),
               ("odd", "InvalidMetadata", "metadata field 'ContentType': missing, and the extension of "))),
    _job("j-id-80-" + "x" * 72, {}, None, **SUCCEEDED),
    # -- odd job prefixes ---------------------------------------------------------------------------------
    _job("j-prefix-odd-characters", {}, None, prefix="jobs/odd prefix+%2B#é", **SUCCEEDED),
)


def document_outcomes() -> list[Outcome]:
    """Every requested document of the document job, in case order."""
    return [outcome for case in DOCUMENT_CASES for outcome in case.outcomes]


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (keys relative to ``P``) under ``folder`` (which mirrors ``P``)."""
    for key, body in files.items():
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return folder


def document_job(folder: Path, job_id: str = "hostile-documents") -> Path:
    """One job holding every document case, with its manifest."""
    for case in DOCUMENT_CASES:
        write_files(folder, case.files)
    write_files(folder, {MANIFEST: dumps({"schemaVersion": 1, "jobId": job_id})})
    return folder
