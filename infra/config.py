"""The stack configuration: one pydantic model, validated before any resource exists.

Every key lives in the project's namespace (``kendra-ingestion:`` unless the project is renamed). A bad or
missing value fails with one line that names the key, what was given and the command that fixes it, for example::

    kendra-ingestion:mapConcurrency must be an integer 1-40 (got 99); fix: pulumi config set mapConcurrency 4
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.contract import settings

NAMESPACE = "kendra-ingestion"
OPTIONS = ("sfn", "sqs")

#: The retention values CloudWatch Logs accepts (0, "never expire", is deliberately not offered).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
#: Kendra's documented per-file limit; an inline document can never be larger.
MAX_KENDRA_FILE_BYTES = 50 * 1024 * 1024
#: A day: verification polls for at most this long (a Step Functions execution may run a year, but a
#: document Kendra has not indexed within a day needs a person, not more polling).
MAX_VERIFY_TIMEOUT_SECONDS = 86400
#: What one worker spends per Kendra call (reading its documents, the call, recording it), measured in
#: the sandbox: the concurrency that ``kendraTps`` derives is the quota times this.
SECONDS_PER_CALL = 1.0
#: Lambda memory limits.
MIN_LAMBDA_MEMORY_MB, MAX_LAMBDA_MEMORY_MB = 128, 10240
#: SQS event source mappings: ``maximum_concurrency`` is 2-1000.
MIN_ESM_CONCURRENCY, MAX_ESM_CONCURRENCY = 2, 1000
#: botocore's IndexId shape: exactly 36 characters.
KENDRA_INDEX_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9-]{35}$"
#: botocore's DataSourceId shape: 1-100 characters.
KENDRA_DATA_SOURCE_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$"
#: A registered source's name (it becomes part of IAM policy names): 1-64 letters, digits, ``.``, ``_``, ``-``.
SOURCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: One segment of a source's key prefix (S3's safe characters; never ``.`` or ``..``).
PREFIX_SEGMENT_PATTERN = r"^[A-Za-z0-9._-]+$"
MAX_SOURCE_PREFIX_LENGTH = 512
# Pragmatic: one "@", no spaces, a dot in the domain. SNS confirms the address by mail anyway.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]


class ConfigError(pulumi.RunError):
    """A stack configuration value is missing or invalid (Pulumi prints a RunError without a traceback)."""


def _key(
    alias: str, rule: str, fix: str, default: Any = ..., *, explain: bool = False, **constraints: Any
) -> Any:
    """A config key: its rule (completes "must be ...") and the ``pulumi config set`` arguments fixing it.

    ``explain`` adds the validator's reason to the message (for rules too long to state in full).
    """
    extra = {"fix": fix, "explain": explain}
    return Field(default, alias=alias, description=rule, json_schema_extra=extra, **constraints)


def normalise_prefix(prefix: str) -> str:
    """A source prefix without surrounding slashes; raises ``ValueError`` naming what is wrong."""
    clean = prefix.strip().strip("/")
    if not clean:
        raise ValueError("a prefix must not be empty (the whole bucket is no source's)")
    if len(clean) > MAX_SOURCE_PREFIX_LENGTH:
        raise ValueError(f"a prefix is at most {MAX_SOURCE_PREFIX_LENGTH} characters")
    for segment in clean.split("/"):
        if segment in ("", ".", "..") or not re.match(PREFIX_SEGMENT_PATTERN, segment):
            raise ValueError(f"prefix {prefix!r}: segments are letters, digits, '.', '_' or '-' (not . or ..)")
    return clean


def nested(outer: str, inner: str) -> bool:
    """True when the (normalised) prefix ``inner`` equals ``outer`` or lies under it, segment-wise."""
    return inner == outer or inner.startswith(outer + "/")


class StackConfig(BaseModel):
    """The validated stack configuration; attribute names are snake_case, config keys camelCase."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    option: Literal["sfn", "sqs"] = _key("option", "sfn or sqs", "option sfn")
    # Required by load() (a stack); optional here so that a program reusing the component can pass the
    # index as an Output instead (KendraIngestionArgs.kendra_index_id).
    kendra_index_id: str | None = _key(
        "kendraIndexId",
        "the 36-character id of an existing Kendra index",
        "kendraIndexId <index-id>",
        None,
        pattern=KENDRA_INDEX_ID_PATTERN,
    )
    document_mode: Literal["inline", "s3"] = _key(
        "documentMode", "inline or s3", "documentMode inline", "inline"
    )
    archive_expiration_days: int = _key(
        "archiveExpirationDays", "an integer 1-3650", "archiveExpirationDays 60", 60, ge=1, le=3650
    )
    map_concurrency: int = _key("mapConcurrency", "an integer 1-40", "mapConcurrency 4", 4, ge=1, le=40)
    put_concurrency: int = _key(
        "putConcurrency",
        f"an integer {MIN_ESM_CONCURRENCY}-{MAX_ESM_CONCURRENCY}, the SQS event source limits",
        "putConcurrency 2",
        2,
        ge=MIN_ESM_CONCURRENCY,
        le=MAX_ESM_CONCURRENCY,
    )
    delete_concurrency: int = _key(
        "deleteConcurrency",
        f"an integer {MIN_ESM_CONCURRENCY}-{MAX_ESM_CONCURRENCY}, the SQS event source limits",
        "deleteConcurrency 4",
        4,
        ge=MIN_ESM_CONCURRENCY,
        le=MAX_ESM_CONCURRENCY,
    )
    encryption: Literal["s3", "kms"] = _key("encryption", "s3 or kms", "encryption s3", "s3")
    notification_emails: tuple[Email, ...] = _key(
        "notificationEmails",
        "a list of email addresses",
        "--path 'notificationEmails[0]' ops@example.com",
        (),
    )
    log_retention_days: int = _key(
        "logRetentionDays",
        "a CloudWatch Logs retention in days: 1, 3, 5, 7, 14, 30, 60, 90, ... 3653",
        "logRetentionDays 30",
        30,
    )
    verify_indexing: bool = _key("verifyIndexing", "true or false", "verifyIndexing true", True)
    skip_unchanged: bool = _key("skipUnchanged", "true or false", "skipUnchanged true", True)
    verify_timeout_seconds: int = _key(
        "verifyTimeoutSeconds",
        f"an integer 1-{MAX_VERIFY_TIMEOUT_SECONDS}: seconds verification waits for Kendra to confirm indexing",
        f"verifyTimeoutSeconds {settings.DEFAULT_VERIFY_TIMEOUT_SECONDS}",
        settings.DEFAULT_VERIFY_TIMEOUT_SECONDS,
        ge=1,
        le=MAX_VERIFY_TIMEOUT_SECONDS,
    )
    kendra_data_source_id: str | None = _key(
        "kendraDataSourceId",
        "the id of a CUSTOM data source of the index: 1-100 letters, digits, _ or -",
        "kendraDataSourceId <data-source-id>",
        None,
        pattern=KENDRA_DATA_SOURCE_ID_PATTERN,
    )
    kendra_tps: float | None = _key(
        "kendraTps",
        "a number > 0: the index's BatchPutDocument/BatchDeleteDocument quota in calls per second",
        "kendraTps 10",
        None,
        gt=0,
        le=1000,
    )
    max_document_bytes: int = _key(
        "maxDocumentBytes",
        f"an integer 1-{MAX_KENDRA_FILE_BYTES}, bytes per inline document",
        f"maxDocumentBytes {settings.DEFAULT_MAX_DOCUMENT_BYTES}",
        settings.DEFAULT_MAX_DOCUMENT_BYTES,
        ge=1,
        le=MAX_KENDRA_FILE_BYTES,
    )
    max_request_bytes: int = _key(
        "maxRequestBytes",
        "an integer of bytes per BatchPutDocument call, at least maxDocumentBytes",
        f"maxRequestBytes {settings.DEFAULT_MAX_REQUEST_BYTES}",
        settings.DEFAULT_MAX_REQUEST_BYTES,
        ge=1,
    )
    default_language_code: str | None = _key(
        "defaultLanguageCode",
        "a language code such as ja, fr or zh-TW: _language_code of documents whose metadata and manifest set "
        "none (the S3 connector's data-source LanguageCode)",
        "defaultLanguageCode ja",
        None,
        pattern=settings.LANGUAGE_CODE_PATTERN,
    )
    sources: dict[str, str] | None = _key(
        "sources",
        "a map of source name (1-64 letters, digits, '.', '_' or '-') to a key prefix of its own "
        "(no prefix inside another)",
        "--path 'sources.<source>' <prefix> (e.g. --path 'sources.hr' teams/hr; "
        "pulumi config rm --path 'sources.<source>' drops one)",
        None,
        explain=True,
    )
    protect_data: bool = _key("protectData", "true or false", "protectData true", True)
    access_logs: bool = _key("accessLogs", "true or false", "accessLogs true", True)
    lambda_memory_mb: int | None = _key(
        "lambdaMemoryMb",
        f"an integer {MIN_LAMBDA_MEMORY_MB}-{MAX_LAMBDA_MEMORY_MB}, the MB of every function",
        "lambdaMemoryMb 1024",
        None,
        ge=MIN_LAMBDA_MEMORY_MB,
        le=MAX_LAMBDA_MEMORY_MB,
    )

    @model_validator(mode="before")
    @classmethod
    def _concurrency_for_the_quota(cls, data: Any) -> Any:
        """With ``kendraTps`` set, the concurrency keys left unset follow the quota: at about
        :data:`SECONDS_PER_CALL` per Kendra call and worker, a quota of R calls/s needs R workers busy."""
        if not isinstance(data, dict) or data.get("kendraTps") in (None, ""):
            return data
        try:
            rate = float(data["kendraTps"])
        except (TypeError, ValueError):
            return data  # the field's own validation reports it
        workers = math.ceil(rate * SECONDS_PER_CALL)
        for key, default, low, high in (("mapConcurrency", 4, 1, 40),
                                        ("putConcurrency", 2, MIN_ESM_CONCURRENCY, MAX_ESM_CONCURRENCY),
                                        ("deleteConcurrency", 4, MIN_ESM_CONCURRENCY, MAX_ESM_CONCURRENCY)):
            if data.get(key) in (None, ""):
                data = {**data, key: min(high, max(low, default, workers))}
        return data

    @field_validator("log_retention_days")
    @classmethod
    def _allowed_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError("not a CloudWatch Logs retention value")
        return value

    @field_validator("sources")
    @classmethod
    def _sources_own_disjoint_prefixes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if not value:
            return None  # an empty map registers nothing: any prefix may hold a job
        clean: dict[str, str] = {}
        for source, prefix in sorted(value.items()):
            if not re.match(SOURCE_NAME_PATTERN, source):
                raise ValueError(f"source name {source!r} is not 1-64 letters, digits, '.', '_' or '-'")
            clean[source] = normalise_prefix(prefix)
        names = list(clean)
        for n, first in enumerate(names):
            for second in names[n + 1 :]:
                a, b = clean[first], clean[second]
                if nested(a, b) or nested(b, a):
                    raise ValueError(f"the prefixes of {first} ({a}) and {second} ({b}) overlap")
        return clean

    @field_validator("max_request_bytes")
    @classmethod
    def _request_holds_a_document(cls, value: int, info: ValidationInfo) -> int:
        document = info.data.get("max_document_bytes")
        if document is not None and value < document:
            raise ValueError("smaller than maxDocumentBytes")
        return value


#: Every key of the namespace, as ``pulumi config set`` spells it.
KEYS: tuple[str, ...] = tuple(field.alias for field in StackConfig.model_fields.values() if field.alias)


#: Keys a stack must set (a program reusing the component may pass them in code instead).
REQUIRED_KEYS = ("kendraIndexId",)


def load(config: pulumi.Config, *, stack: str) -> StackConfig:
    """Read and validate the config namespace (``config.name``: the project's, ``kendra-ingestion``
    unless renamed); raise :class:`ConfigError` on the first bad or missing key. ``option`` defaults to the
    stack name when the stack is called sfn or sqs.
    """
    namespace = getattr(config, "name", NAMESPACE)
    # An empty value is unset: Pulumi.yaml declares optional keys with default "" (a declared key without a
    # default would be required by Pulumi).
    raw: dict[str, Any] = {key: value for key in KEYS if (value := config.get(key)) not in (None, "")}
    if "option" not in raw and stack in OPTIONS:
        raw["option"] = stack
    if "notificationEmails" in raw:
        raw["notificationEmails"] = _as_list(raw["notificationEmails"])
    if "sources" in raw:
        raw["sources"] = _as_json(raw["sources"])
    try:
        validated = StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_message(exc.errors()[0], raw, stack, namespace)) from None
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ConfigError(_message({"loc": (key,), "type": "missing", "msg": ""}, raw, stack, namespace))
    return validated


def _as_list(value: str) -> Any:
    """A JSON list (``--path`` or YAML lists) or, for convenience, one comma-separated string."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return [item.strip() for item in value.split(",") if item.strip()]
    return parsed if isinstance(parsed, list) else value


def _as_json(value: str) -> Any:
    """A structured value (``--path`` keys are stored as JSON); a string that is no JSON stays as is."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _message(error: Any, raw: dict[str, Any], stack: str, namespace: str = NAMESPACE) -> str:
    key = str(error["loc"][0]) if error["loc"] else "option"
    field = next(f for f in StackConfig.model_fields.values() if f.alias == key)
    extra: dict[str, Any] = field.json_schema_extra or {}  # type: ignore[assignment]
    fix = extra["fix"]
    got = raw.get(key)
    if got is None:
        shown = "nothing"
        if key == "option":
            shown += f"; required because stack {stack!r} is not named sfn or sqs"
    else:
        shown = json.dumps(got) if isinstance(got, list | dict) else str(got)
    if extra.get("explain") and error["type"] == "value_error":
        shown += ": " + str(error["msg"]).removeprefix("Value error, ")
    return f"{namespace}:{key} must be {field.description} (got {shown}); fix: pulumi config set {fix}"
