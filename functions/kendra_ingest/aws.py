"""boto3 clients: created lazily, cached per (service, thread), with explicit retries and timeouts.

boto3 is imported on first use, not at module import, so importing a handler stays cheap.
boto3 clients are thread-safe once built but building one from a shared session is not, so creation
is serialised and every thread gets its own client (the sandbox runs Lambdas on several threads).

Example::

    from kendra_ingest import aws
    aws.client("dynamodb").get_item(...)
"""

from __future__ import annotations

import threading
from typing import Any

#: botocore attempts (first try included) per service. Kendra gets one: the library retries throttled
#: calls and ``InternalError`` documents itself with jittered backoff that stops before the Lambda's
#: deadline and counts every throttle; botocore's own throttle backoff (up to 20 s) knows no deadline.
MAX_ATTEMPTS: dict[str, int] = {"kendra": 1}
DEFAULT_MAX_ATTEMPTS = 5

CONNECT_TIMEOUT_SECONDS = 5
#: A 50 MB BatchPutDocument takes a while to be accepted; everything else answers quickly.
READ_TIMEOUT_SECONDS: dict[str, int] = {"kendra": 60}
DEFAULT_READ_TIMEOUT_SECONDS = 30

_create_lock = threading.Lock()
_local = threading.local()
_session: Any = None
# Bumped by reset_clients so threads drop clients built before the reset.
_generation = 0


def _config(service: str) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS.get(service, DEFAULT_MAX_ATTEMPTS)},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS.get(service, DEFAULT_READ_TIMEOUT_SECONDS),
    )


def client(service: str) -> Any:
    """The calling thread's boto3 client for ``service`` (built on first use, then reused)."""
    global _session
    cache: dict[str, Any] | None = getattr(_local, "clients", None)
    if cache is None or getattr(_local, "generation", -1) != _generation:
        cache = _local.clients = {}
        _local.generation = _generation
    found = cache.get(service)
    if found is not None:
        return found
    with _create_lock:
        if _session is None:
            import boto3.session

            _session = boto3.session.Session()
        made = _session.client(service, config=_config(service))
    cache[service] = made
    return made


def reset_clients() -> None:
    """Forget every cached client and the session (tests, sandbox: after changing env or mocks)."""
    global _session, _generation
    with _create_lock:
        _session = None
        _generation += 1
    _local.clients = {}
    _local.generation = _generation
