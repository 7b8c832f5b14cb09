"""What every handler shares: the Powertools logger, its settings, and per-container caches.

Handlers stay thin: parse the event, call the library, return.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger

from kendra_ingest.deadline import Deadline
from kendra_ingest.settings import Settings

logger = Logger(service="kendra-ingestion")


def settings(handler: str) -> Settings:
    """The handler's validated environment (read per invocation: the sandbox shares a process)."""
    return Settings.load(handler)


def deadline(context: Any) -> Deadline:
    return Deadline.from_context(context)


def kendra_index(settings: Settings, *, sync_job_id: str | None = None) -> Any:
    """The index client; ``sync_job_id`` makes every put and delete part of that data-source sync job."""
    from kendra_ingest.kendra import KendraIndex

    pacer = None
    if settings.kendra_tps and settings.lock_table:
        from kendra_ingest.pacing import QuotaPacer

        pacer = QuotaPacer(settings.lock_table, settings.kendra_tps)
    return KendraIndex(settings.kendra_index_id, role_arn=settings.kendra_role_arn,
                       data_source_id=settings.kendra_data_source_id, sync_job_id=sync_job_id, pacer=pacer)


@functools.lru_cache(maxsize=8)
def _date_fields(index_id: str) -> frozenset[str]:
    from kendra_ingest.kendra import KendraIndex

    return KendraIndex(index_id).date_fields()


def date_fields(settings: Settings) -> frozenset[str]:
    """Index fields of type DATE_VALUE (DescribeIndex), cached per container."""
    return _date_fields(settings.kendra_index_id)


def reset_caches() -> None:
    """Forget per-container caches (tests and the sandbox start a new container in the same process)."""
    _date_fields.cache_clear()


def ledger(settings: Settings) -> Any:
    from kendra_ingest.ledger import Ledger

    return Ledger(settings.documents_table)


def lock(settings: Settings) -> Any:
    from kendra_ingest.lock import Lock

    return Lock(settings.lock_table)
