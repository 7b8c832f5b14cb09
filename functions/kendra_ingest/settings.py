"""The Lambdas' environment contract, as one pydantic model.

``infra`` builds every function's environment from :data:`REQUIRED` and :class:`Settings` (see
``infra/function.py``), so the code and the infrastructure cannot drift apart; ``tests/infra`` proves
that each deployed function gets exactly the variables its handler requires here.

Example::

    settings = Settings.load("process_batch")   # raises SettingsError naming any missing variable
    settings.reports_bucket
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError

# Kendra limits: 10 documents per call; 5 MB per inline document; 50 MB per call.
MAX_DOCUMENTS_PER_CALL = 10
DEFAULT_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 50 * 1024 * 1024
#: How long verification waits for Kendra to confirm indexing before a document is ``IndexingUnconfirmed``.
DEFAULT_VERIFY_TIMEOUT_SECONDS = 15 * 60
#: A language code as Kendra lists them ("en", "ja", "zh-TW", "pt-BR"): the stack's defaultLanguageCode
#: and a manifest's languageCode.
LANGUAGE_CODE_PATTERN = r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$"

#: CloudWatch metrics of the pipeline (Powertools Metrics): namespace per stack, dimension ``service``.
METRICS_SERVICE = "kendra-ingestion"
DEFAULT_METRICS_NAMESPACE = "KendraIngestion"
#: The names the stack's dashboard shows (functions emit them under :func:`metrics_namespace`).
DOCUMENTS_PUT = "DocumentsPut"
DOCUMENTS_FAILED = "DocumentsFailed"
DOCUMENTS_SKIPPED = "DocumentsSkipped"
DOCUMENTS_DELETED = "DocumentsDeleted"
JOB_DURATION_SECONDS = "JobDurationSeconds"
JOBS_FAILED = "JobsFailed"
KENDRA_THROTTLES = "KendraThrottles"
KENDRA_CALL_LATENCY = "KendraCallLatency"
UNREADABLE_DEAD_LETTERS = "UnreadableDeadLetters"


def metrics_namespace(stack_prefix: str) -> str:
    """The stack's metric namespace, ``KendraIngestion/<project>-<stack>``: two stacks never mix."""
    return f"{DEFAULT_METRICS_NAMESPACE}/{stack_prefix}"


class SettingsError(RuntimeError):
    """The Lambda's environment does not satisfy the contract (a deployment defect)."""


class Settings(BaseModel):
    """Every environment variable any handler reads. Field alias = variable name."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    option: Literal["sfn", "sqs"] | None = Field(None, alias="OPTION")
    ingestion_bucket: str | None = Field(None, alias="INGESTION_BUCKET")
    reports_bucket: str | None = Field(None, alias="REPORTS_BUCKET")
    lock_table: str | None = Field(None, alias="LOCK_TABLE")
    documents_table: str | None = Field(None, alias="DOCUMENTS_TABLE")
    topic_arn: str | None = Field(None, alias="TOPIC_ARN")
    kendra_index_id: str | None = Field(None, alias="KENDRA_INDEX_ID")
    document_mode: Literal["inline", "s3"] = Field("inline", alias="DOCUMENT_MODE")
    kendra_role_arn: str | None = Field(None, alias="KENDRA_ROLE_ARN")
    kendra_data_source_id: str | None = Field(None, alias="KENDRA_DATA_SOURCE_ID")
    skip_unchanged: bool = Field(True, alias="SKIP_UNCHANGED")
    verify_indexing: bool = Field(True, alias="VERIFY_INDEXING")
    verify_timeout_seconds: float = Field(DEFAULT_VERIFY_TIMEOUT_SECONDS, gt=0, alias="VERIFY_TIMEOUT_SECONDS")
    put_queue_url: str | None = Field(None, alias="PUT_QUEUE_URL")
    delete_queue_url: str | None = Field(None, alias="DELETE_QUEUE_URL")
    summarizer_function: str | None = Field(None, alias="SUMMARIZER_FUNCTION")
    #: The sqs producer: the summarizer and the watchdog re-invoke it for a job that waited for its source.
    producer_function: str | None = Field(None, alias="PRODUCER_FUNCTION")
    kendra_tps: float | None = Field(None, gt=0, alias="KENDRA_TPS")
    put_shards: int = Field(2, ge=1, alias="PUT_SHARDS")
    delete_shards: int = Field(4, ge=1, alias="DELETE_SHARDS")
    max_document_bytes: int = Field(DEFAULT_MAX_DOCUMENT_BYTES, ge=1, alias="MAX_DOCUMENT_BYTES")
    max_request_bytes: int = Field(DEFAULT_MAX_REQUEST_BYTES, ge=1, alias="MAX_REQUEST_BYTES")
    #: The stack's defaultLanguageCode: ``_language_code`` of documents whose metadata and manifest set none.
    default_language_code: str | None = Field(None, pattern=LANGUAGE_CODE_PATTERN, alias="DEFAULT_LANGUAGE_CODE")
    #: Where the functions' metrics go (Powertools reads the same variable); every function gets it.
    metrics_namespace: str = Field(DEFAULT_METRICS_NAMESPACE, alias="POWERTOOLS_METRICS_NAMESPACE")
    #: The stack's registered sources (``sources``), JSON ``{source: prefix}``; unset: no tenancy checks.
    sources: Json[dict[str, str]] | None = Field(None, alias="SOURCES")

    @classmethod
    def load(cls, handler: str, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment of ``handler``; every error names the variable."""
        env = os.environ if environ is None else environ
        missing = sorted(name for name in REQUIRED[handler] if not env.get(name))
        if missing:
            raise SettingsError(f"{handler}: missing environment variable(s) {', '.join(missing)}")
        values = {name: env[name] for name in variables(handler) if name in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SettingsError(f"{handler}: environment variable {first['loc'][0]}: {first['msg']}") from exc


_ALIASES = {field.alias for field in Settings.model_fields.values()}

_JOB = ("OPTION", "INGESTION_BUCKET", "REPORTS_BUCKET")
_LIMITS = ("MAX_DOCUMENT_BYTES", "MAX_REQUEST_BYTES")
_KENDRA = ("KENDRA_INDEX_ID", "DOCUMENT_MODE")

#: Variables each handler requires; infra sets exactly these (plus :data:`OPTIONAL` where configured).
REQUIRED: dict[str, tuple[str, ...]] = {
    # option sfn (Notify is a direct sns:publish task of the state machine)
    "load_manifest": _JOB,
    "acquire_lock": ("LOCK_TABLE",),
    "list_batches": (*_JOB, "DOCUMENTS_TABLE", "SKIP_UNCHANGED", *_LIMITS, *_KENDRA),
    # + kendra:DescribeIndex (date fields); the lock table records a run that found the index full.
    "process_batch": (*_JOB, "DOCUMENTS_TABLE", "LOCK_TABLE", *_LIMITS, *_KENDRA),
    "verify_indexing": (*_JOB, "DOCUMENTS_TABLE", "KENDRA_INDEX_ID", "VERIFY_INDEXING",
                        "VERIFY_TIMEOUT_SECONDS"),
    "aggregate_failures": (*_JOB, *_KENDRA, "DOCUMENTS_TABLE"),  # the index: stopping the job's data-source sync job
    "release_lock": ("LOCK_TABLE",),
    "finish_abandoned": (*_JOB, "LOCK_TABLE", "TOPIC_ARN", *_KENDRA, "DOCUMENTS_TABLE"),
    # option sqs
    "producer": (*_JOB, "LOCK_TABLE", "DOCUMENTS_TABLE", "SKIP_UNCHANGED", *_LIMITS, *_KENDRA,
                 "PUT_QUEUE_URL", "DELETE_QUEUE_URL", "PUT_SHARDS", "DELETE_SHARDS", "SUMMARIZER_FUNCTION"),
    "put_worker": (*_JOB, "LOCK_TABLE", "DOCUMENTS_TABLE", *_LIMITS, *_KENDRA, "SUMMARIZER_FUNCTION"),
    "del_worker": (*_JOB, "LOCK_TABLE", "DOCUMENTS_TABLE", "KENDRA_INDEX_ID", "SUMMARIZER_FUNCTION"),
    # Settles a lost part from what Kendra holds (BatchGetDocumentStatus) and records it in the ledger.
    "dead_letter": (*_JOB, "LOCK_TABLE", "SUMMARIZER_FUNCTION", "KENDRA_INDEX_ID", "DOCUMENTS_TABLE"),
    # The summarizer and the watchdog restart a job that waited for its source (fanin.start_next).
    "summarizer": (*_JOB, "LOCK_TABLE", "TOPIC_ARN", "KENDRA_INDEX_ID", "DOCUMENTS_TABLE", "VERIFY_INDEXING",
                   "VERIFY_TIMEOUT_SECONDS", "PRODUCER_FUNCTION"),
    "watchdog": (*_JOB, "LOCK_TABLE", "SUMMARIZER_FUNCTION", "PRODUCER_FUNCTION"),
}

#: Variables a handler reads when the stack configures them: documentMode s3 (KENDRA_ROLE_ARN),
#: kendraDataSourceId (KENDRA_DATA_SOURCE_ID), kendraTps (KENDRA_TPS, with the lock table that holds
#: the shared quota counters) and defaultLanguageCode (DEFAULT_LANGUAGE_CODE).
OPTIONAL: dict[str, tuple[str, ...]] = {
    name: tuple(v for v in ("KENDRA_ROLE_ARN", "KENDRA_DATA_SOURCE_ID") if "KENDRA_INDEX_ID" in req)
    for name, req in REQUIRED.items()
}
for _writer in ("process_batch", "put_worker", "del_worker"):
    OPTIONAL[_writer] += tuple(v for v in ("KENDRA_TPS", "LOCK_TABLE") if v not in REQUIRED[_writer])
#: The planners record the stack's defaultLanguageCode (when configured) on each document they plan.
for _planner in ("list_batches", "producer"):
    OPTIONAL[_planner] += ("DEFAULT_LANGUAGE_CODE",)
#: Every function gets the stack's metric namespace (infra always sets it; a default keeps tests simple).
for _handler in OPTIONAL:
    OPTIONAL[_handler] += ("POWERTOOLS_METRICS_NAMESPACE",)
#: ``sources`` (SOURCES): where a manifest is loaded (its prefix is checked), where a job is planned and
#: where a part is sent (documents owned by another source fail with ForeignDocument).
for _tenant in ("load_manifest", "list_batches", "producer", "process_batch", "put_worker", "del_worker"):
    OPTIONAL[_tenant] += ("SOURCES",)


def variables(handler: str) -> tuple[str, ...]:
    """Every variable ``handler`` may read: the required ones, then the optional ones."""
    return REQUIRED[handler] + OPTIONAL[handler]


assert all(set(variables(h)) <= _ALIASES for h in REQUIRED), "REQUIRED names an unknown variable"
